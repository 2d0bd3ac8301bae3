"""The DSL validates eagerly, names the offending field, and records the caller's file:line."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from compiler import ir, passes
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, param, pod, volumes
from compiler.errors import PolicyError


def here() -> int:
    return inspect.currentframe().f_back.f_lineno  # type: ignore[union-attr]


def test_rule_builds_ir_with_its_source_line() -> None:
    ps = PolicySet("demo", title="Demo")
    line = here() + 1
    rule = ps.rule("no-privileged", Required, title="t", rationale="r", fix="f",
                   check=containers().field("securityContext.privileged").not_equals(True))
    assert rule.loc.line == line and rule.loc.file.endswith("tests/test_dsl.py")
    assert rule.checks[0] == ir.Check(
        ir.EachContainer(ir.CONTAINER_LISTS), ir.NotEquals(ir.FieldRef(ir.Scope.CONTAINER, ("securityContext", "privileged")), True),
        rule.checks[0].loc)
    assert rule.kinds[0] == "Pod" and "CronJob" in rule.kinds
    built = ps.build()
    assert built.rules == (rule,) and built.audit_action is ir.AuditAction.DRYRUN


def test_effective_reads_the_pod_path() -> None:
    check = containers().effective("securityContext.runAsUser").not_equals(0)
    assert check.predicate.ref == ir.EffectiveRef(("securityContext", "runAsUser"), ("securityContext", "runAsUser"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda ps: ps.rule("Bad_ID", Required, title="t", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True)), "rule id"),
        (lambda ps: ps.rule("x", "required", title="t", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True)), "level"),
        (lambda ps: ps.rule("x", Required, title="", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True)), "title"),
        (lambda ps: ps.rule("x", Required, title="t", rationale="r", fix="f", check="hostPID"), "check"),
        (lambda ps: ps.rule("x", Required, title="t", rationale="r", fix="f",
                            check=containers().field("a").subset_of(param("allowed"))), "undeclared param"),
        (lambda ps: ps.rule("x", Required, title="t", rationale="r", fix="f", params={"unused": ["a"]},
                            check=pod().field("hostPID").not_equals(True)), "no check uses them"),
        (lambda ps: ps.rule("x", Recommended, title="t", rationale="r", fix="f", kinds=["Pod", "Widget"],
                            check=pod().field("hostPID").not_equals(True)), "unknown kind"),
    ],
)
def test_rule_rejects_bad_fields(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match=message) as error:
        build(PolicySet("demo", title="Demo"))
    assert "tests/test_dsl.py:" in str(error.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: containers().field("a..b"), "dotted field path"),
        (lambda: containers(["sidecars"]), "unknown container list"),
        (lambda: pod().effective("hostPID"), "only container fields"),
        (lambda: volumes().field("hostPath.path").none_of([]), "must not be empty"),
        (lambda: containers().field("a").equals(1.5), "bool, int or string"),
        (lambda: param("Bad-Name"), "snake_case"),
        (lambda: PolicySet("demo", title="Demo", audit_action="block"), "audit_action"),
    ],
)
def test_builders_reject_bad_arguments(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match=message):
        call()


def test_rule_declared_twice_in_a_set() -> None:
    ps = PolicySet("demo", title="Demo")
    ps.rule("x", Required, title="t", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True))
    with pytest.raises(PolicyError, match="declared twice"):
        ps.rule("x", Required, title="t", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True))


def test_exemption_parses_expiry_and_sorts_labels() -> None:
    e = exempt("e", rules=["x"], namespaces=["ns"], labels={"b": "2", "a": "1"}, reason="why", ticket="T-1", expires="2027-06-30")
    assert e.expires == dt.date(2027, 6, 30) and e.labels == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    ("kwargs", "placement"),
    [
        ({"namespaces": ["ns"]}, "namespaces"),
        ({"namespaces": ["ns"], "labels": {"app": "a"}}, "objects"),
        ({"names": ["web"]}, "objects"),
        ({"namespaces": ["ns"], "containers": ["sidecar"]}, "containers"),
        ({"namespaces": ["ns"], "containers": ["sidecar"], "allow": {"allowed_capabilities": ["NET_ADMIN"]}}, "widening"),
    ],
)
def test_each_exemption_is_placed_once_for_every_backend(kwargs: dict, placement: str) -> None:
    e = exempt("e", rules=["x"], reason="why", ticket="T-1", expires="2027-06-30", **kwargs)
    assert passes.place(e).value == placement


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires": "30/06/2027"}, "expires: expected a date"),
        ({"expires": "2027-02-30"}, "expires: expected a date"),
        ({"reason": " "}, "reason"),
        ({"ticket": "", "owner": ""}, "owner or a ticket"),
        ({"namespaces": []}, "selects every workload"),
        ({"rules": []}, "must not be empty"),
        ({"allow": {"allowed": []}}, "must not be empty"),
    ],
)
def test_exemption_rejects_bad_fields(kwargs: dict, message: str) -> None:
    args = dict(rules=["x"], namespaces=["ns"], reason="why", ticket="T-1", expires="2027-06-30") | kwargs
    with pytest.raises(PolicyError, match=message) as error:
        exempt("e", **args)
    assert "tests/test_dsl.py:" in str(error.value)


def test_staging_is_superseded_once_a_rule_is_required() -> None:
    ps = PolicySet("demo", title="Demo")
    rule = ps.rule("ro", Recommended, title="t", rationale="r", fix="f", enforce_from="2027-06-01", enforced_in=["payments"],
                   check=containers().field("securityContext.readOnlyRootFilesystem").equals(True))
    assert rule.enforce_from == dt.date(2027, 6, 1) and rule.enforced_in == ("payments",)
    ps.rule("ro2", Required, title="t", rationale="r", fix="f", enforced_in=["payments"],
            check=containers().field("securityContext.readOnlyRootFilesystem").equals(True))
    program, warnings = passes.resolve((ps.build(),), (), dt.date(2026, 11, 1))
    assert program.rules[1].level is ir.Level.REQUIRED and program.rules[1].enforced_in == ()
    assert program.rules[0].enforced_in == ("payments",)
    assert any("'ro2' is required everywhere already" in w for w in warnings)
    with pytest.raises(PolicyError, match="enforce_from: expected a date"):
        ps.rule("ro3", Recommended, title="t", rationale="r", fix="f", enforce_from="June",
                check=containers().field("securityContext.readOnlyRootFilesystem").equals(True))
