"""One rule, every backend's lowering of it side by side (sqlglot-style), and each backend's verdicts.

The expected text is the backend's translation of `NotEquals(securityContext.privileged, true)`:
unset complies; set complies only as a boolean other than true.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from compiler import ir, passes
from compiler.backends import all_backends
from compiler.dsl import PolicySet, Required, containers
from compiler.errors import UnsupportedError

EXPECTED = {
    "rego": ('ok_0(x, _, _) if {\n\tnot kupe.has_value(x, ["securityContext", "privileged"])\n}',
             'ok_0(x, _, _) if {\n\tv := kupe.value(x, ["securityContext", "privileged"])\n\tis_boolean(v)\n\tv != true\n}'),
    "gatekeeper": ('ok_0(x, _, _) if {\n      \tnot kupe.has_value(x, ["securityContext", "privileged"])\n      }',
                   'ok_0(x, _, _) if {\n      \tv := kupe.value(x, ["securityContext", "privileged"])\n      \tis_boolean(v)\n      \tv != true\n      }'),
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


@dataclass(frozen=True)
class Matches:
    """A predicate no backend knows: it stands for a construct a backend cannot express exactly."""

    ref: ir.Ref
    pattern: str


@pytest.mark.parametrize("backend", sorted(EXPECTED))
def test_a_construct_a_backend_cannot_lower_is_refused_naming_rule_construct_backend_and_line(backend: str) -> None:
    check = containers().field("image").present()
    odd = ir.Check(check.subject, Matches(check.predicate.ref, "^registry/"), check.loc)  # type: ignore[arg-type]
    ps = PolicySet("demo", title="Demo")
    ps.rule("trusted-registry", Required, title="t", rationale="r", fix="f", check=odd)
    program = passes.resolve((ps.build(),), (), dt.date(2026, 11, 1))[0]
    with pytest.raises(UnsupportedError) as error:
        all_backends()[backend]().compile(program)
    assert str(error.value).startswith(f"{check.loc}: rule 'trusted-registry': backend '{backend}' cannot express Matches exactly")
