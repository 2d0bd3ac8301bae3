"""The emulator reproduces gator verify on every gatekeeper-library suite case (known gaps aside),
through its Rego engine and, for templates with a K8sNativeValidation entry, its CEL engine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conformance.upstream.gatekeeper_upstream import default_root, has_cel, load_known_gaps, run_all

REPO = Path(__file__).resolve().parents[1]
GAPS_FILE = REPO / "conformance" / "upstream" / "gatekeeper-known-gaps.yaml"


def _root() -> Path:
    root = default_root(REPO)
    if not root.is_dir():
        pytest.skip(f"shared upstream fixtures not found at {root}")
    return root


def _index(root: Path) -> list[dict]:
    """The gator-suite records of the upstream index (empty when it is absent)."""
    expected = root.parent / "expected.json"
    if not expected.is_file():
        return []
    return [r for r in json.loads(expected.read_text()) if r["test_format"] == "gator-suite"]


def _account(label: str, engine: str, section: str, expected_cases: int | None,
             capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = run_all(_root(), engine)
    gaps = load_known_gaps(GAPS_FILE, section)
    keys = {o.key for o in outcomes}
    if expected_cases is not None:  # every indexed case this engine can run must have been run
        assert len(outcomes) == expected_cases, f"ran {len(outcomes)} cases, index has {expected_cases}"
    unknown = sorted(set(gaps) - keys)
    stale = sorted(o.key for o in outcomes if o.agree and o.key in gaps)
    disagree = [o for o in outcomes if not o.agree and o.key not in gaps]
    agree = sum(o.agree for o in outcomes)
    with capsys.disabled():
        updates = [o for o in outcomes if o.operation == "UPDATE"]
        print(f"\n{label}: {agree} agree, {len(gaps) - len(stale) - len(unknown)} known gaps, {len(disagree)} disagree"
              f" (of them {sum(o.agree for o in updates)}/{len(updates)} UPDATE AdmissionReviews agree)")
    assert outcomes, "no suite case was run"
    assert not unknown, f"known gaps name no suite case: {unknown}"
    assert not stale, f"listed as known gaps but now agree (remove them): {stale}"
    assert not disagree, "disagreements with gator:\n" + "\n".join(f"{o.key}: {o.detail}" for o in disagree)


def test_gatekeeper_library_suites_agree_with_gator(capsys: pytest.CaptureFixture[str]) -> None:
    records = _index(_root())
    _account("gatekeeper-library", "rego", "gaps", len(records) if records else None, capsys)


def test_gatekeeper_library_suites_agree_with_gator_through_the_cel_engine(capsys: pytest.CaptureFixture[str]) -> None:
    root = _root()
    records = _index(root)
    with_cel = [r for r in records if has_cel(yaml.safe_load((root.parent / r["policy_file"]).read_text()))]
    _account("gatekeeper-library (cel)", "cel", "cel_gaps", len(with_cel) if records else None, capsys)
