"""Run every conformance case through every backend's real (or proven-emulated) engine."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from compiler import pipeline

from .adapters import Adapter, AdapterError, admitted, all_adapters
from .suite import Case

# Cases compile as of this date unless they say otherwise, so verdicts do not drift with the calendar.
SUITE_AS_OF = dt.date(2026, 11, 1)


@dataclass(frozen=True)
class Record:
    """One verdict: a case (in one kind) × a backend × a rule."""

    case: str
    kind: str
    request: str  # the operation, and the subresource if any
    source: str
    backend: str
    rule: str
    expected: str
    actual: str
    status: str  # ok | fail | xfail (known failure) | xpass (a known failure now passes) | error
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _status(expected: str, actual: str, known_failure: str | None) -> str:
    if known_failure:
        return "xpass" if actual == expected else "xfail"
    return "ok" if actual == expected else "fail"


def decoding_failures(cases: Iterable[Case]) -> list[str]:
    """Cases whose objects the decoder refuses, or accepts, against what they say (`rejected`)."""
    problems = []
    for case in cases:
        refusal = admitted(case.request)[1]
        if case.rejected is None and refusal is not None:
            problems.append(f"{case.source} {case.name} [{case.kind}]: the API server would refuse it: {refusal}")
        elif case.rejected is not None and (refusal is None or case.rejected not in str(refusal)):
            problems.append(f"{case.source} {case.name} [{case.kind}]: expected the decoder to refuse it "
                            f"({case.rejected}), got {refusal or 'no refusal'}")
    return problems


def run(cases: list[Case], backends: list[str], policies_dir: Path) -> list[Record]:
    """Compile once per (as-of date, backend), evaluate every case, compare every rule."""
    adapter_types = all_adapters()
    adapters: dict[tuple[dt.date, str], Adapter] = {}
    programs = {}
    records: list[Record] = []
    for case in cases:
        as_of = case.as_of or SUITE_AS_OF
        # made at noon (UTC) of the compile date: exemptions compiled in force are in force then
        request = replace(admitted(case.request)[0], at=dt.datetime.combine(as_of, dt.time(12), dt.timezone.utc))
        if as_of not in programs:
            programs[as_of] = pipeline.build_program(policies_dir, as_of)[0]
        rules = [r.id for r in programs[as_of].rules]
        for backend in backends:
            key = (as_of, backend)
            if key not in adapters:
                artifacts = pipeline.compile_backends(programs[as_of], [adapter_types[backend].compiled_backend()])
                adapters[key] = adapter_types[backend](artifacts)
            try:
                verdicts, detail = adapters[key].judge(request), ""
            except AdapterError as error:
                verdicts, detail = None, str(error)
            for rule in rules:
                actual = "error" if verdicts is None else verdicts.get(rule, "pass")
                if case.error is not None:  # the engine must refuse to judge, saying why
                    status = "ok" if verdicts is None and case.error in detail else "fail"
                else:
                    status = "error" if verdicts is None else _status(case.expected(rule), actual, case.known_failures.get(backend))
                records.append(Record(case.name, case.kind, str(request), case.source, backend, rule, case.expected(rule),
                                      actual, status, detail))
    return records


def matrix(records: Iterable[Record]) -> str:
    """A rule × backend table of verdicts that agree with the expectation, then the failures."""
    records = list(records)
    backends = sorted({r.backend for r in records})
    rules = list(dict.fromkeys(r.rule for r in records))
    cells: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        cells[(r.rule, r.backend)].append(r)

    def cell(rule: str, backend: str) -> str:
        group = cells[(rule, backend)]
        ok = sum(r.status in ("ok", "xfail") for r in group)
        deny = sum(r.actual == "deny" for r in group)
        audit = sum(r.actual == "audit" for r in group)
        xfail = sum(r.status == "xfail" for r in group)
        mark = "ok" if ok == len(group) and not xfail else ("xfail" if ok == len(group) else "FAIL")
        return f"{mark} {ok}/{len(group)} (deny {deny}, audit {audit})"

    header = ["rule"] + backends
    rows = [header] + [[rule] + [cell(rule, b) for b in backends] for rule in rules]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
    cases = {(r.case, r.kind): r.request for r in records}
    kinds = sorted({r.kind for r in records})
    requests = Counter(cases.values())
    lines.append(f"{len(cases)} cases × {len(backends)} backends × {len(rules)} rules; kinds: {', '.join(kinds)}")
    lines.append("requests: " + ", ".join(f"{name} {count}" for name, count in sorted(requests.items())))
    bad = [r for r in records if r.status in ("fail", "error", "xpass")]
    for r in bad[:50]:
        lines.append(f"  {r.status.upper()}: {r.source} {r.case} [{r.kind}, {r.request}] {r.backend} {r.rule}: "
                     f"expected {r.expected}, got {r.actual} {r.detail}".rstrip())
    if len(bad) > 50:
        lines.append(f"  … and {len(bad) - 50} more")
    return "\n".join(lines)


def failed(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.status in ("fail", "error", "xpass")]
