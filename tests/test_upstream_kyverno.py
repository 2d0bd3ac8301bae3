"""The proof: the Kyverno maintainers' kyverno-test cases, replayed through the emulator.

Every in-scope expected result of ``../shared/upstream/expected.json`` must agree
with the emulator, unless ``conformance/upstream/kyverno-known-gaps.yaml`` lists it
with a reason; a listed gap that now agrees is stale and fails the test too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.upstream.kyverno_upstream import compare, load_known_gaps, shared_upstream

REPO_ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = shared_upstream(REPO_ROOT)
MIN_AGREEMENT = 0.95


def test_kyverno_upstream_cases_agree(capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config) -> None:
    if not (UPSTREAM / "expected.json").is_file():
        pytest.skip(f"upstream fixtures not found at {UPSTREAM} (expected <repo>/../shared/upstream)")
    outcome = compare(UPSTREAM, load_known_gaps())
    summary = outcome.summary()
    print(summary)
    if pytestconfig.getoption("capture") != "no":  # with -s the print above is already visible
        with capsys.disabled():
            print(f"\n{summary}")
    assert not outcome.disagree, "emulator disagrees with upstream:\n" + "\n".join(outcome.disagree)
    assert not outcome.stale_gaps, "known gaps that now agree (remove them):\n" + "\n".join(outcome.stale_gaps)
    counted = len(outcome.agree) + len(outcome.known_gaps)
    assert counted > 0
    assert len(outcome.agree) / counted >= MIN_AGREEMENT, summary
