"""The emulator reproduces gator verify on every gatekeeper-library suite case (known gaps aside)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.upstream.gatekeeper_upstream import default_root, load_known_gaps, run_all

REPO = Path(__file__).resolve().parents[1]
GAPS_FILE = REPO / "conformance" / "upstream" / "gatekeeper-known-gaps.yaml"


def test_gatekeeper_library_suites_agree_with_gator(capsys: pytest.CaptureFixture[str]) -> None:
    root = default_root(REPO)
    if not root.is_dir():
        pytest.skip(f"shared upstream fixtures not found at {root}")
    outcomes = run_all(root)
    gaps = load_known_gaps(GAPS_FILE)
    keys = {o.key for o in outcomes}

    expected = root.parent / "expected.json"
    if expected.is_file():  # every gator-suite record of the index must have been run
        records = [r for r in json.loads(expected.read_text()) if r["test_format"] == "gator-suite"]
        assert len(outcomes) == len(records), f"ran {len(outcomes)} cases, index has {len(records)}"

    unknown = sorted(set(gaps) - keys)
    stale = sorted(o.key for o in outcomes if o.agree and o.key in gaps)
    disagree = [o for o in outcomes if not o.agree and o.key not in gaps]
    agree = sum(o.agree for o in outcomes)
    with capsys.disabled():
        print(f"\ngatekeeper-library: {agree} agree, {len(gaps) - len(stale) - len(unknown)} known gaps, "
              f"{len(disagree)} disagree")
    assert not unknown, f"known gaps name no suite case: {unknown}"
    assert not stale, f"listed as known gaps but now agree (remove them): {stale}"
    assert not disagree, "disagreements with gator:\n" + "\n".join(f"{o.key}: {o.detail}" for o in disagree)
