"""The proof: the kyverno CLI's ValidatingAdmissionPolicy test cases agree with our emulator."""

from __future__ import annotations

import pytest

from conformance.upstream.vap_upstream import load_known_gaps, run_all, shared_upstream, vap_records


def test_upstream_vap_cases_agree(capsys: pytest.CaptureFixture[str]) -> None:
    upstream = shared_upstream()
    if upstream is None:
        pytest.skip("shared upstream fixtures not found at <repo>/../shared/upstream (expected.json)")
    records = vap_records(upstream)
    assert records, "expected.json holds no ValidatingAdmissionPolicy records"
    results = run_all(upstream)
    gaps = load_known_gaps()

    agree = [r for r in results if r.agrees]
    known = [r for r in results if not r.agrees and r.case_id in gaps]
    disagree = [r for r in results if not r.agrees and r.case_id not in gaps]
    seen = {r.case_id: r for r in results}
    stale = [gid for gid in gaps if gid not in seen or seen[gid].agrees]
    drifted = [r for r in known if gaps[r.case_id].get("emulator") not in (None, r.actual)]

    with capsys.disabled():
        print(f"\nvap upstream: {len(agree)} agree, {len(known)} known gaps, {len(disagree)} disagree")

    assert len(results) == len(records)
    assert not disagree, "emulator disagrees with upstream:\n" + "\n".join(
        f"  {r.case_id}: expected {r.expected}, emulator {r.actual} ({r.detail})" for r in disagree)
    assert not stale, "known gaps that now agree or no longer exist (remove them):\n" + "\n".join(
        f"  {gid}" for gid in stale)
    assert not drifted, "known gaps whose emulator verdict changed:\n" + "\n".join(
        f"  {r.case_id}: now {r.actual}" for r in drifted)
