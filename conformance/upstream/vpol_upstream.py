"""Replay kyverno/policies' pod-security-vpol tests through the ValidatingPolicy emulator.

Every record of `expected.json` from `kyverno-policies/pod-security-vpol/` is replayed the way
its test runs it:

- `kyverno-test` (the Kyverno CLI): the request is a CREATE of the resource, no old object, in
  `default` when it names no namespace; the verdict is the policy's result (`pass`, `fail`,
  `skip`, `error`), whatever its validationActions (the CLI reports, it does not admit);
- `chainsaw` (a live cluster): the test patches the policy to `validationActions: [Deny]` and
  applies the resource; `fail` means the API server rejected it (a failure or an error under
  Deny), `pass` that it was admitted.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from conformance.engines.kyverno_vpol import POLICY_KINDS, evaluate

from . import Outcome, Suite

FOLDER = "kyverno-policies/pod-security-vpol/"


def records(upstream: Path) -> list[dict[str, Any]]:
    return [r for r in json.loads((upstream / "expected.json").read_text()) if r["source_folder"].startswith(FOLDER)]


def case_key(record: dict[str, Any]) -> str:
    """format/folder/policy/kind/[namespace/]name: a known gap names a prefix of it."""
    ns = f"{record['resource_namespace']}/" if record.get("resource_namespace") else ""
    return (f"{record['test_format']}/{record['source_folder'].removeprefix(FOLDER)}/{record['policy']}/"
            f"{record['resource_kind']}/{ns}{record['resource_name']}")


@lru_cache(maxsize=None)
def _documents(path: Path) -> tuple[dict[str, Any], ...]:
    with path.open() as fh:
        return tuple(d for d in yaml.safe_load_all(fh) if isinstance(d, dict))


def run_record(upstream: Path, record: dict[str, Any]) -> Outcome:
    policy = next(d for d in _documents(upstream / record["policy_file"])
                  if d.get("kind") in POLICY_KINDS and d["metadata"]["name"] == record["policy"])
    resource = next(d for d in _documents(upstream / record["resource_file"])
                    if d.get("kind") == record["resource_kind"] and d["metadata"]["name"] == record["resource_name"])
    if record["test_format"] == "chainsaw":
        policy = {**policy, "spec": {**policy["spec"], "validationActions": ["Deny"]}}
    result = evaluate(policy, resource, operation="CREATE")
    if record["test_format"] == "chainsaw":
        observed = "fail" if result.denied else "pass"
    else:
        observed = result.status
    agrees = observed == record["expected"]
    detail = "" if agrees else f"expected {record['expected']}, emulator {observed} ({'; '.join(result.messages)})"
    return Outcome(case_key(record), agrees, detail)


SUITE = Suite("kyverno-vpol", "Kyverno ValidatingPolicy", "kyverno/policies pod-security-vpol (kyverno test and chainsaw)",
              lambda upstream: [run_record(upstream, r) for r in records(upstream)])
