"""`kupe-policy test --gator`: the creation cases through a real gator, when it is installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from conformance import gator
from conformance.runner import SUITE_AS_OF
from conformance.suite import load_cases

REPO = Path(__file__).resolve().parent.parent


def _result(kind: str, name: str, rule: str, action: str) -> dict:
    """One entry of `gator test -o json`, with the fields gator writes that the check reads."""
    return {"enforcementAction": action, "msg": f"{rule}: ...",
            "constraint": {"kind": "Kupe", "metadata": {"name": rule, "labels": {"policy.kupe.cloud/rule": rule}}},
            "violatingObject": {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "apps"}}}


def test_gator_output_becomes_verdicts_per_object() -> None:
    output = json.dumps([_result("Pod", "a", "disallow-privileged", "deny"), _result("Pod", "a", "disallow-privileged", "deny"),
                         _result("Pod", "a", "seccomp-runtime-default", "dryrun"), _result("Pod", "b", "run-as-non-root", "warn")])
    assert gator.verdicts(output) == {
        ("v1", "Pod", "apps", "a"): {"disallow-privileged": "deny", "seccomp-runtime-default": "audit"},
        ("v1", "Pod", "apps", "b"): {"run-as-non-root": "audit"},
    }
    assert gator.verdicts("null") == {}, "gator writes null when nothing is violated"
    with pytest.raises(gator.GatorError, match="no JSON"):
        gator.verdicts("v1/Pod apps/a: [\"disallow-privileged\"] Message: ...")


def test_creations_are_decoded_in_their_namespace_and_batched_by_name() -> None:
    found = gator.creations(load_cases())
    assert found and all(case.request.operation == "CREATE" and not case.request.subresource for case, _ in found)
    assert all(obj["metadata"].get("namespace") for _, obj in found if obj["kind"] != "Namespace")
    batches = gator._batches(found)
    assert sum(map(len, batches)) == len(found), "every creation is asked once"
    assert len(batches) > 1, "the cases reuse names, which one gator run could not tell apart"


def test_without_gator_the_flag_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing here is gator
    result = run_cli("test", "--backend", "compose", "--gator", "--policies", str(REPO / "policies"))
    assert result.exit_code == 1 and "gator is not on PATH" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(shutil.which("gator") is None, reason="no gator binary on PATH (Gatekeeper's CLI)")
def test_real_gator_gives_the_expected_verdicts_on_creations() -> None:
    cases = [case for case in load_cases() if "privileged" in case.name or "host" in case.name][:60]
    asked, mismatches = gator.cross_check(cases, REPO / "policies", SUITE_AS_OF)
    assert asked > 0 and [str(m) for m in mismatches] == []
