"""One rule, every backend's lowering of it side by side (sqlglot-style), and each backend's verdicts.

The expected text is the backend's translation of `NotEquals(securityContext.privileged, true)`:
unset complies; set complies only as a boolean other than true.
"""

from __future__ import annotations

import datetime as dt

import pytest

from compiler import passes
from compiler.backends import all_backends
from compiler.dsl import PolicySet, Required, containers

EXPECTED = {
    "rego": ('ok_0(x) if {\n\tnot kupe.has_value(x, ["securityContext", "privileged"])\n}',
             'ok_0(x) if {\n\tv := kupe.value(x, ["securityContext", "privileged"])\n\tis_boolean(v)\n\tv != true\n}'),
    "gatekeeper": ('ok_0(x) if {\n      \tnot kupe.has_value(x, ["securityContext", "privileged"])\n      }',
                   'ok_0(x) if {\n      \tv := kupe.value(x, ["securityContext", "privileged"])\n      \tis_boolean(v)\n      \tv != true\n      }'),
    "kyverno": ('{{ element.\\"securityContext\\".\\"privileged\\" != `null` && (type(element.\\"securityContext\\".\\"privileged\\") '
                '!= \'boolean\' || element.\\"securityContext\\".\\"privileged\\" == `true`) }}',),
    "vap": ("(type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null)) == bool && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) != true",),
}


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    ps = PolicySet("demo", title="Demo")
    ps.rule("no-privileged", Required, title="No privileged", rationale="r", fix="f",
            check=containers().field("securityContext.privileged").not_equals(True))
    program = passes.resolve((ps.build(),), (), dt.date(2026, 11, 1))[0]
    return {name: "\n".join(text for path, text in sorted(backend().compile(program).items()) if "no-privileged" in path)
            for name, backend in all_backends().items()}


def test_every_backend_is_stated(outputs: dict[str, str]) -> None:
    assert set(outputs) == set(EXPECTED)


@pytest.mark.parametrize("backend", sorted(EXPECTED))
def test_lowering_of_not_equals(backend: str, outputs: dict[str, str]) -> None:
    for fragment in EXPECTED[backend]:
        assert fragment in outputs[backend]
