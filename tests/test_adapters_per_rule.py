"""Every adapter judges a subset of the rules exactly as it judges them beside all the others.

The audit evaluates only the rules whose verdict it does not know yet (conformance/audit/verdicts.py),
so a rule's verdict must not depend on which other rules were evaluated with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from compiler import pipeline
from conformance.adapters import Adapter, AdapterError, admitted, all_adapters
from conformance.suite import load_cases

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def requests() -> list:
    """Every 13th case the suite judges at the compile date: all operations, kinds and rules among them."""
    cases = [c for c in load_cases() if c.as_of is None]
    at = dt.datetime.combine(AS_OF, dt.time(12), dt.timezone.utc)
    return [replace(admitted(c.request)[0], at=at) for c in cases[::13] if admitted(c.request)[1] is None]


@pytest.mark.parametrize("backend", list(all_adapters()))
def test_each_rule_alone_gives_its_verdict_among_all(backend: str, requests: list) -> None:
    program, _ = pipeline.build_program(REPO / "policies", AS_OF)
    kind: type[Adapter] = all_adapters()[backend]
    adapter = kind(pipeline.compile_backends(program, [kind.compiled_backend()]))
    rules = [r.id for r in program.rules]
    judged = 0
    for request in requests:
        try:
            whole = adapter.judge(request)
        except AdapterError:
            continue
        alone = {}
        for rule in rules:
            alone.update(adapter.judge(request, [rule]))
        assert alone == whole, request
        assert adapter.judge(request, rules[::2]) == {r: v for r, v in whole.items() if r in rules[::2]}, request
        judged += 1
    assert judged > 100
