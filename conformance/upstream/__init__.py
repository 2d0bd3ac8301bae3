"""The emulators' proof: each replays an engine maintainers' own test cases from `../shared/upstream/`.

Every suite reports one `Outcome` per upstream case, keyed by a `/`-separated path. What an
emulator knowingly does not reproduce is listed in one file, `known-gaps.yaml`, in one format
(`Gap`: suite, where, category, reason), and every suite is counted by one function (`tally`):
a case agrees, is a known gap (it must still disagree: a gap that starts to agree is stale), or
disagrees. `python -m conformance.upstream` runs every suite and prints the README's table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "upstream"
GAPS_FILE = Path(__file__).with_name("known-gaps.yaml")


class Category(str, Enum):
    """Why an emulator does not reproduce an upstream case."""

    NOT_IMPLEMENTED = "not-implemented"  # an engine feature the emulator does not model (our artifacts never use it)
    NOT_YET = "not-yet"  # a measured difference still to be resolved
    NEVER = "never"  # outside what this emulator stands in for (another emulator judges it)


@dataclass(frozen=True)
class Gap:
    """An upstream case, or every case under a key prefix, that an emulator knowingly gets wrong."""

    suite: str
    where: str
    category: Category
    reason: str

    def covers(self, key: str) -> bool:
        return key == self.where or key.startswith(self.where.rstrip("/") + "/")


@dataclass(frozen=True)
class Outcome:
    """One upstream case: whether the emulator reaches the maintainers' verdict, and what it said if not."""

    key: str
    agrees: bool
    detail: str = ""
    operation: str = "CREATE"


@dataclass(frozen=True)
class Tally:
    """One suite's count; `proven` when nothing disagrees and every listed gap is still a gap."""

    suite: str
    agree: int
    gaps: Counter[Category]
    disagree: tuple[Outcome, ...]
    stale: tuple[str, ...]  # listed gaps that agree now, or cover no case
    updates: tuple[int, int] = (0, 0)  # UPDATE requests that agree, of all UPDATE requests

    @property
    def proven(self) -> bool:
        return not self.disagree and not self.stale

    @property
    def known_gaps(self) -> int:
        return sum(self.gaps.values())

    def summary(self) -> str:
        by_category = ", ".join(f"{n} {c.value}" for c, n in sorted(self.gaps.items(), key=lambda item: item[0].value))
        gaps = f"{self.known_gaps} known {'gap' if self.known_gaps == 1 else 'gaps'}" + (f" ({by_category})" if by_category else "")
        updates = f"; {self.updates[0]}/{self.updates[1]} UPDATE requests agree" if self.updates[1] else ""
        return f"{self.agree} agree, {gaps}, {len(self.disagree)} disagree{updates}"

    def failures(self) -> str:
        lines = [f"disagrees: {o.key}: {o.detail}" for o in self.disagree]
        return "\n".join(lines + [f"stale known gap (remove it): {key}" for key in self.stale])


def load_gaps(path: Path = GAPS_FILE) -> list[Gap]:
    """Every known gap; a malformed entry is a ValueError naming it."""
    gaps = []
    for number, entry in enumerate(yaml.safe_load(path.read_text()) or [], start=1):
        try:
            gaps.append(Gap(str(entry["suite"]), str(entry["where"]), Category(entry["category"]), str(entry["reason"]).strip()))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path.name}: entry {number} is malformed ({error!r}): it needs suite, where, category, reason") from None
        if not gaps[-1].reason:
            raise ValueError(f"{path.name}: entry {number} ({gaps[-1].where}) gives no reason")
    return gaps


def tally(suite: str, outcomes: Iterable[Outcome], gaps: Iterable[Gap]) -> Tally:
    """Count one suite's outcomes against its known gaps."""
    own = [g for g in gaps if g.suite == suite]
    agree, disagree, stale, covering = 0, [], [], set()
    counted: Counter[Category] = Counter()
    updates = [0, 0]
    for outcome in outcomes:
        gap = next((g for g in own if g.covers(outcome.key)), None)
        if gap is not None:
            covering.add(gap)
        if outcome.operation == "UPDATE":
            updates[0] += outcome.agrees
            updates[1] += 1
        if outcome.agrees:
            agree += gap is None
            if gap is not None:
                stale.append(outcome.key)
        elif gap is not None:
            counted[gap.category] += 1
        else:
            disagree.append(outcome)
    stale += [g.where for g in own if g not in covering]
    return Tally(suite, agree, counted, tuple(disagree), tuple(stale), (updates[0], updates[1]))


@dataclass(frozen=True)
class Suite:
    """An upstream suite: which emulator it proves, on which cases, and how to run them."""

    name: str
    emulator: str
    cases: str
    run: Callable[[Path], list[Outcome]] = field(repr=False)


def suites() -> list[Suite]:
    """Every suite, in the README's order (imported here: each pulls in its engine)."""
    from . import gatekeeper_upstream, kyverno_upstream, vap_upstream, vpol_upstream

    return [*gatekeeper_upstream.SUITES, kyverno_upstream.SUITE, vpol_upstream.SUITE, vap_upstream.SUITE]


def table(tallies: Iterable[tuple[Suite, Tally]]) -> str:
    """The README's table of upstream agreement."""
    rows = ["| emulator | upstream cases | result |", "|---|---|---|"]
    rows += [f"| {suite.emulator} | {suite.cases} | {result.summary()} |" for suite, result in tallies]
    return "\n".join(rows)
