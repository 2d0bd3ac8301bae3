"""The emulators' proof: every upstream suite reaches the maintainers' verdicts, known gaps aside,
and the README states exactly the figures `python -m conformance.upstream` prints."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from conformance.upstream import SHARED, Category, Gap, Outcome, Suite, Tally, load_gaps, suites, table, tally

REPO = Path(__file__).resolve().parents[1]
SUITES = {suite.name: suite for suite in suites()}


def _shared() -> Path:
    if not (SHARED / "expected.json").is_file():
        pytest.skip(f"the shared upstream fixtures are not at {SHARED} (they live beside the repository)")
    return SHARED


@cache
def _result(name: str) -> Tally:
    return tally(name, SUITES[name].run(_shared()), load_gaps())


@pytest.mark.parametrize("name", SUITES)
def test_upstream_suite_agrees_with_its_engine(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = _result(name)
    with capsys.disabled():
        print(f"\n{name} upstream: {result.summary()}")
    assert result.agree > 0, "no upstream case was run"
    assert result.proven, result.failures()


def test_readme_states_the_measured_figures() -> None:
    expected = table((SUITES[name], _result(name)) for name in SUITES)
    assert expected in (REPO / "README.md").read_text(), (
        "README's upstream table is out of date; paste the output of `python -m conformance.upstream`:\n" + expected)


def _gap(where: str, category: Category = Category.NOT_YET) -> Gap:
    return Gap("s", where, category, "measured")


def test_tally_counts_each_case_once_and_flags_stale_gaps() -> None:
    outcomes = [Outcome("a/x/1", True), Outcome("a/x/2", False, "no"), Outcome("b/1", False, "no"),
                Outcome("c/1", True, operation="UPDATE"), Outcome("d", False, "boom", "UPDATE")]
    gaps = [_gap("a/x"), _gap("b/1", Category.NEVER), _gap("c/1"), _gap("zzz"), Gap("other", "d", Category.NEVER, "r")]
    result = tally("s", outcomes, gaps)
    assert result.agree == 0  # a/x/1 agrees but is covered by a gap: stale, not agreement
    assert result.gaps == {Category.NOT_YET: 1, Category.NEVER: 1}
    assert [o.key for o in result.disagree] == ["d"]  # another suite's gap does not cover it
    assert result.stale == ("a/x/1", "c/1", "zzz")
    assert result.updates == (1, 2) and not result.proven


def test_a_gap_prefix_ends_at_a_path_boundary() -> None:
    assert _gap("kyverno-cli/test/cel").covers("kyverno-cli/test/cel/policy/rule")
    assert not _gap("kyverno-cli/test/cel").covers("kyverno-cli/test/cel-preconditions/policy/rule")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- suite: kyverno\n  where: x\n  category: someday\n  reason: r\n", "entry 1 is malformed"),
        ("- suite: kyverno\n  where: x\n  category: never\n", "entry 1 is malformed"),
        ("- suite: kyverno\n  where: x\n  category: never\n  reason: ' '\n", r"entry 1 \(x\) gives no reason"),
    ],
)
def test_a_malformed_gap_is_refused_by_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "known-gaps.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_gaps(path)


def test_every_suite_is_described_for_the_readme() -> None:
    assert all(isinstance(s, Suite) and s.emulator and s.cases for s in SUITES.values())
    assert {g.suite for g in load_gaps()} <= set(SUITES)
