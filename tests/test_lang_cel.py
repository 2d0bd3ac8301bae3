"""CEL lowering: an input rule and the exact CEL it lowers to, then what that CEL decides.

Expressions are evaluated with the conformance CEL layer (the CEL C++ runtime), which is what
the VAP emulator runs; the compiler itself never imports it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from compiler import ir, passes
from compiler.dsl import PolicySet, Required, containers, exempt, param, pod, volumes
from compiler.errors import UnsupportedError
from compiler.lang.cel import CelLowering, CelSources, Lowered, compile_error, environment, literal, literal_shape
from conformance.engines.cel import CelEvaluator, to_cel


def resolve(check: ir.Check | list[ir.Check], *exemptions: ir.Exemption, params: dict | None = None,
            kinds: tuple[str, ...] = ("Pod", "CronJob")) -> ir.ResolvedRule:
    ps = PolicySet("demo", title="Demo")
    ps.rule("demo-rule", Required, title="t", rationale="r", fix="f", check=check, params=params, kinds=kinds)
    return passes.resolve((ps.build(),), exemptions, dt.date(2026, 11, 1))[0].rules[0]


def variables(lowered: Lowered) -> dict[str, str]:
    return {v.name: v.expression for v in lowered.variables}


def test_equals_on_a_container_field_is_typed_and_null_safe() -> None:
    lowered = CelLowering(resolve(containers().field("securityContext.allowPrivilegeEscalation").equals(False)), "vap").lower_rule()
    assert variables(lowered)["failing_securityContext_allowPrivilegeEscalation"] == (
        "variables.containers.filter(x, !(\n"
        "  type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null)) == bool"
        " && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null) == false\n"
        ")).map(x, x.?name.orValue(''))"
    )
    assert variables(lowered)["old_failing_securityContext_allowPrivilegeEscalation"].startswith("variables.old_containers.filter(")
    (validation,) = lowered.validations
    assert validation.expression == ("variables.failing_securityContext_allowPrivilegeEscalation.all(n, n in "
                                     "variables.old_failing_securityContext_allowPrivilegeEscalation)")
    assert validation.message_expression == (
        '"demo-rule: container " + variables.failing_securityContext_allowPrivilegeEscalation.filter(n, '
        '!(n in variables.old_failing_securityContext_allowPrivilegeEscalation)).join(\', \')'
        ' + ": securityContext.allowPrivilegeEscalation must be false. Fix: f"'
    )


def test_pod_spec_is_found_per_kind_and_api_group() -> None:
    lowered = CelLowering(resolve(pod().field("hostPID").not_equals(True)), "vap").lower_rule()
    found = variables(lowered)
    assert found["podSpecValue"] == (
        'object.kind == "Pod" && !object.apiVersion.contains(\'/\')\n'
        "  ? object.?spec.orValue(null)\n"
        '  : object.kind == "CronJob" && object.apiVersion.startsWith("batch/")\n'
        "  ? object.?spec.?jobTemplate.?spec.?template.?spec.orValue(null)\n"
        "  : null"
    )
    assert found["podSpec"] == "variables.judged && type(variables.podSpecValue) == map ? variables.podSpecValue : null"
    assert found["old_podSpecValue"].startswith("type(oldObject) != map ? null\n  : oldObject.kind == \"Pod\"")
    assert found["old_podSpec"] == "type(variables.old_podSpecValue) == map ? variables.old_podSpecValue : null"
    assert found["failing_hostPID"] == (
        "variables.podSpec != null && !(\n"
        "  variables.podSpec.?hostPID.orValue(null) == null"
        " || type(variables.podSpec.?hostPID.orValue(null)) == bool && variables.podSpec.?hostPID.orValue(null) != true\n"
        ") ? [''] : []"
    )
    (validation,) = lowered.validations
    assert validation.expression == "variables.failing_hostPID.all(n, n in variables.old_failing_hostPID)"
    assert validation.message_expression is None


def test_judged_requests_are_creations_and_updates_of_the_object_or_its_ephemeral_containers() -> None:
    lowered = CelLowering(resolve(pod().field("hostPID").not_equals(True)), "vap").lower_rule()
    assert variables(lowered)["judged"] == ("request.?operation.orValue('') != 'DELETE' &&\n"
                                           "request.?subResource.orValue('') in [\"\", \"ephemeralcontainers\"]")


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (containers().field("a").one_of(["x", "y"]), 'type(x.?a.orValue(null)) == string && x.?a.orValue(null) in ["x", "y"]'),
        (containers().field("a").none_of(["x"]),
         'x.?a.orValue(null) == null || type(x.?a.orValue(null)) == string && !(x.?a.orValue(null) in ["x"])'),
        (containers().field("a").contains("ALL"), 'type(x.?a.orValue(null)) == list && "ALL" in x.?a.orValue(null)'),
        (containers().field("a").subset_of(["X"]),
         'x.?a.orValue(null) == null || type(x.?a.orValue(null)) == list && x.?a.orValue(null).all(item, item in ["X"])'),
        (containers().field("a").present(), "x.?a.orValue(null) != null"),
        (containers().field("a").not_equals(0),
         "x.?a.orValue(null) == null || (type(x.?a.orValue(null)) == int || type(x.?a.orValue(null)) == double)"
         " && x.?a.orValue(null) != 0"),
        (containers().effective("securityContext.runAsNonRoot").equals(True),
         "type(((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null))) == bool"
         " && ((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null)) == true"),
    ],
)
def test_each_predicate_lowers_to_one_condition(check: ir.Check, expected: str) -> None:
    lowering = CelLowering(resolve(check), "vap")
    assert lowering._complies(check, "x", "x.?name.orValue('')") == expected


def test_literals_are_ascii_cel_and_escape_quotes() -> None:
    assert literal(['a"b\\c', "é\n😀"]) == r'["a\"b\\c", "\u00e9\u000a\U0001f600"]'
    assert (literal(True), literal(0)) == ("true", "0")
    # Every character alone and beside a plain one: printable ASCII stays, `"` and `\` are escaped, the rest is \u/\U.
    for code in [*range(0x250), 0x2028, 0xFFFF, 0x1F600]:
        c = chr(code)
        expected = "\\" + c if c in '"\\' else c if " " <= c <= "~" else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
        assert literal(c) == f'"{expected}"' and literal("a" + c) == f'"a{expected}"', hex(code)


def test_sources_are_configurable_for_gatekeeper() -> None:
    rule = resolve(containers().field("securityContext.capabilities.add").subset_of(param("caps")), params={"caps": ["A"]})
    sources = CelSources(object="variables.anObject", namespace="variables.ns", params="variables.params", variables="variables")
    lowered = CelLowering(rule, "gatekeeper", sources).lower_rule()
    assert 'variables.params["caps"]' in variables(lowered)["failing_securityContext_capabilities_add"]
    assert "variables.anObject.kind" in variables(lowered)["podSpecValue"]


def test_widenings_and_container_waivers_are_inline_constants() -> None:
    widening = exempt("cni", rules=["demo-rule"], namespaces=["net"], labels={"app": "cni"}, containers=["agent"],
                      allow={"caps": ["NET_ADMIN"]}, reason="r", ticket="T", expires="2027-01-01")
    waiver = exempt("debug", rules=["demo-rule"], names=["dbg"], containers=["shell"], reason="r", ticket="T", expires="2027-01-01")
    rule = resolve(containers().field("securityContext.capabilities.add").subset_of(param("caps")), widening, waiver,
                   params={"caps": ["NET_BIND_SERVICE"]})
    lowered = CelLowering(rule, "vap", inline_waivers=rule.waivers).lower_rule()
    names = variables(lowered)
    labels = "(type(object.?metadata.orValue(null)) == map ? object.?metadata.?labels.orValue(null) : null)"
    assert names["selected_cni"] == f'request.namespace in ["net"] && type({labels}) == map && {labels}[?"app"] == optional.of("cni")'
    assert names["selected_debug"] == ("(type(object.?metadata.orValue(null)) == map ? object.?metadata.?name.orValue(null) : null)"
                                       ' in ["dbg"]'), "metadata that is no mapping holds no name"
    failing = names["failing_securityContext_capabilities_add"]
    assert ('["NET_BIND_SERVICE"] + ((variables.selected_cni && x.?name.orValue(\'\') in ["agent"]) ? ["NET_ADMIN"] : [])'
            in failing)
    assert "\n  || (variables.selected_debug && x.?name.orValue('') in [\"shell\"])" in failing


# --- what the CEL decides ----------------------------------------------------------------


def decide(rule: ir.ResolvedRule, obj: dict[str, Any], namespace: str = "default", *,
           old: dict[str, Any] | None = None, subresource: str = "") -> list[Any]:
    """The messages of the validations that fail, as the API server would compute them."""
    evaluator = CelEvaluator(("object", "oldObject", "request", "variables"))
    lowered = CelLowering(rule, "vap", inline_waivers=rule.waivers).lower_rule()
    values: dict[str, Any] = {}
    request = {"namespace": namespace, "operation": "UPDATE" if old else "CREATE"}
    if subresource:
        request["subResource"] = subresource
    base = {"object": to_cel(obj), "oldObject": None if old is None else to_cel(old), "request": request}

    def run(expression: str) -> Any:  # variables keep their nulls, as in the API server
        return evaluator.evaluate(expression, evaluator.bind({**base, "variables": values}, normalise=False))

    for variable in lowered.variables:
        values[variable.name] = run(variable.expression)
    return [(run(v.message_expression) if v.message_expression else v.message)
            for v in lowered.validations if run(v.expression) is not True]


def a_pod(*containers_: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": list(containers_), **spec}}


@pytest.mark.parametrize(
    ("container", "pod_context", "violates"),
    [
        ({}, {"runAsNonRoot": True}, False),
        ({}, {}, True),
        ({"runAsNonRoot": False}, {"runAsNonRoot": True}, True),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, False),
        ({"runAsNonRoot": "true"}, {}, True),
        ({"runAsNonRoot": None}, {"runAsNonRoot": True}, False),
    ],
)
def test_effective_value_falls_back_to_the_pod_and_wrong_types_never_comply(
        container: dict, pod_context: dict, violates: bool) -> None:
    rule = resolve(containers().effective("securityContext.runAsNonRoot").equals(True))
    obj = a_pod({"name": "app", "securityContext": container}, securityContext=pod_context)
    expected = ["demo-rule: container app: securityContext.runAsNonRoot (or the pod's securityContext.runAsNonRoot "
                "when the container leaves it unset) must be true. Fix: f"]
    assert decide(rule, obj) == (expected if violates else [])


def test_other_api_group_and_missing_pod_spec_never_violate() -> None:
    rule = resolve(pod().field("hostPID").not_equals(True), kinds=("Deployment",))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"spec": {"hostPID": True, "containers": []}}}}
    assert decide(rule, deployment) == ["demo-rule: hostPID must not be true. Fix: f"]
    assert decide(rule, {**deployment, "apiVersion": "example.com/v1"}) == []
    assert decide(rule, {**deployment, "spec": {}}) == []


def test_messages_name_every_failing_container_and_volume() -> None:
    rule = resolve([containers().field("securityContext.privileged").not_equals(True),
                    volumes().field("hostPath.path").none_of(["/"])])
    obj = a_pod({"name": "a", "securityContext": {"privileged": True}}, {"name": "b"},
                {"name": "c", "securityContext": {"privileged": "yes"}},
                volumes=[{"name": "root", "hostPath": {"path": "/"}}, {"name": "tmp", "emptyDir": {}}])
    assert decide(rule, obj) == ["demo-rule: container a, c: securityContext.privileged must not be true. Fix: f",
                                 'demo-rule: volume root: hostPath.path must not be one of ["/"]. Fix: f']


def test_widening_applies_to_the_selected_container_only() -> None:
    widening = exempt("cni", rules=["demo-rule"], namespaces=["net"], containers=["agent"],
                      allow={"caps": ["NET_ADMIN"]}, reason="r", ticket="T", expires="2027-01-01")
    rule = resolve(containers().field("securityContext.capabilities.add").subset_of(param("caps")), widening,
                   params={"caps": ["NET_BIND_SERVICE"]})
    add = {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
    obj = a_pod({"name": "agent", **add}, {"name": "sidecar", **add})
    assert decide(rule, obj, "net") == [
        "demo-rule: container sidecar: securityContext.capabilities.add may only hold the values of parameter caps. Fix: f"]
    assert len(decide(rule, obj, "apps")) == 1 and "agent, sidecar" in decide(rule, obj, "apps")[0]


def test_an_update_is_judged_on_the_violations_the_old_object_did_not_have() -> None:
    rule = resolve(containers().field("securityContext.privileged").not_equals(True))
    privileged = {"name": "a", "securityContext": {"privileged": True}}
    old = a_pod(privileged)
    message = "demo-rule: container {}: securityContext.privileged must not be true. Fix: f"
    assert decide(rule, a_pod(privileged), old=old) == []
    assert decide(rule, a_pod(privileged, {**privileged, "name": "b"}), old=old) == [message.format("b")]
    assert decide(rule, a_pod({**privileged, "name": "renamed"}), old=old) == [message.format("renamed")]
    assert decide(rule, a_pod(privileged), old=a_pod({"name": "a"})) == [message.format("a")]
    assert decide(rule, a_pod(privileged), old=old, subresource="status") == []


# --- refusal -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matches:
    """A predicate no backend knows: stands for a construct CEL lowering cannot express."""

    ref: ir.Ref
    pattern: str


def test_unknown_predicate_is_refused_naming_rule_construct_backend_and_line() -> None:
    check = containers().field("image").present()
    odd = ir.Check(check.subject, Matches(check.predicate.ref, "^registry/"), check.loc)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedError) as error:
        CelLowering(resolve(odd), "vap").lower_rule()
    assert (error.value.rule, error.value.construct, error.value.backend) == ("demo-rule", "Matches", "vap")
    assert str(error.value).startswith(f"{check.loc}:")


def test_field_names_cel_cannot_select_plainly_are_refused() -> None:
    check = containers().field("securityContext.namespace").present()
    with pytest.raises(UnsupportedError, match="'namespace' is not a plain CEL identifier"):
        CelLowering(resolve(check), "vap").lower_rule()


# --- compile checks by literal shape ----------------------------------------------------------

@pytest.mark.parametrize(("expression", "shape"), [
    ('x == "a"', ('x == ""', {'"a"'})),
    ("x.?name.orValue('') + \"b\\\"c\"", ('x.?name.orValue("") + ""', {"''", '"b\\"c"'})),
    ('"http://a" == x', ('"" == x', {'"http://a"'})),
    ('r"a" == x', None),            # raw string: its backslashes are no escapes
    ('b"a" == x', None),            # bytes, not a string
    ('"""a""" == x', None),         # triple quotes
    ("x == 1 // note", None),       # a comment may hold quotes
    ('"unclosed', None),
    ('x == "' + "a" * 60_000 + '"', None),  # emptied, it would fall under the runtime's size limit
])
def test_literal_shape_empties_literals_only_where_the_scan_is_safe(expression: str, shape: tuple | None) -> None:
    found = literal_shape(expression)
    assert (found if found is None else (found[0], set(found[1]))) == shape


def _compiles_whole(variables: tuple[str, ...], expression: str) -> bool:
    try:
        environment(variables).compile(expression)
    except RuntimeError:
        return False
    return True


_SCOPE = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer", "exceptions")


@pytest.mark.parametrize("expression", [
    'object.metadata.name == "a"', 'object.metadata.name == "\\q"', 'object.metadata.name == "\\u00"',
    '"a" + 1', "'a' + 2", '{"a": 1, "a": 2}', '"[".matches("(")', 'x == "a"', 'object.x[?"k"] == optional.of("")',
    'r"\\q" == "a"', '"""a""" == "a"',
])
def test_compile_error_agrees_with_compiling_the_whole_expression(expression: str) -> None:
    """Regexes, formats and timestamps in literals are not checked at compile time, which is what
    lets expressions of one literal shape share a compile."""
    assert (compile_error(_SCOPE, expression) is None) == _compiles_whole(_SCOPE, expression)
    error = compile_error(_SCOPE, expression)
    assert error is None or "ERROR" in error or "INVALID_ARGUMENT" in error


def _expressions(value: object) -> list[str]:
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in ([v] if k == "expression" and isinstance(v, str) else _expressions(v))]
    return [e for v in value for e in _expressions(v)] if isinstance(value, list) else []


def test_every_shipped_cel_expression_compiles_by_shape_as_it_does_whole() -> None:
    out = Path(__file__).resolve().parent.parent / "out"
    expressions = {e for folder in ("vap", "kyverno-vpol", "gatekeeper") for path in sorted((out / folder).rglob("*.yaml"))
                   for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) for e in _expressions(document)}
    assert len(expressions) > 100
    assert all(literal_shape(e) is not None for e in expressions)
    assert all(compile_error(_SCOPE, e) is None and _compiles_whole(_SCOPE, e) for e in expressions)
