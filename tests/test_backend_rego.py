"""The Rego backend: expected output for one input, refusal of what it cannot lower, safe rendering."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import regopy

from conftest import program
from compiler import ir, passes
from compiler.backends.rego import RegoBackend
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, pod
from compiler.errors import ArtifactError
from compiler.render import render




def privileged(ps: PolicySet) -> None:
    ps.rule("no-privileged", Required, title="No privileged", rationale="r", fix='Set "privileged": false',
            check=containers().field("securityContext.privileged").not_equals(True))


def evaluate(files: dict[str, str], document: dict) -> dict:
    interpreter = regopy.Interpreter()
    for path, text in files.items():
        interpreter.add_module(path, text)
    interpreter.set_input_term(json.dumps(document))
    return interpreter.query("data.main").results[0].expressions[0]


def test_not_equals_lowers_to_unset_or_typed_difference() -> None:
    files = RegoBackend().compile(program(privileged))
    module = files["rego/no-privileged.rego"]
    assert "package kupe.rules.no_privileged" in module and "import rego.v1" in module
    assert "import data.lib.kupe" in module and "package lib.kupe" in files["rego/lib/kupe.rego"]
    assert 'ok_0(x, _, _) if {\n\tnot kupe.has_value(x, ["securityContext", "privileged"])\n}' in module
    assert 'ok_0(x, _, _) if {\n\tv := kupe.value(x, ["securityContext", "privileged"])\n\tis_boolean(v)\n\tv != true\n}' in module
    assert "deny contains violation if {\n\tsome violation in data.kupe.rules.no_privileged.violation\n}" in files["rego/main.rego"]


@pytest.mark.parametrize(
    ("privileged_value", "denied"),
    [(True, True), (False, False), (None, False), ("true", True), ("false", True)],
)
def test_verdicts_for_set_unset_null_and_wrong_type(privileged_value: object, denied: bool) -> None:
    files = RegoBackend().compile(program(privileged))
    container = {"name": "app", "securityContext": {} if privileged_value is None else {"privileged": privileged_value}}
    result = evaluate(files, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}})
    assert bool(result["deny"]) is denied
    if denied:
        (violation,) = result["deny"]
        assert violation["rule"] == "no-privileged" and violation["container"] == "app"
        assert violation["msg"] == 'no-privileged: container app: securityContext.privileged must not be true. Fix: Set "privileged": false'


def test_recommended_rules_warn_and_waivers_apply() -> None:
    def hostpid(ps: PolicySet) -> None:
        ps.rule("no-host-pid", Recommended, title="t", rationale="r", fix="f", check=pod().field("hostPID").not_equals(True))

    waiver = exempt("ops", rules=["no-host-pid"], namespaces=["ops"], reason="r", ticket="T-1", expires="2026-11-01")
    files = RegoBackend().compile(program(hostpid, waiver))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps"},
                  "spec": {"template": {"spec": {"hostPID": True, "containers": []}}}}
    assert [v["rule"] for v in evaluate(files, deployment)["warn"]] == ["no-host-pid"]
    deployment["metadata"]["namespace"] = "ops"
    assert evaluate(files, deployment)["warn"] == []
    other_group = dict(deployment, apiVersion="example.com/v1", metadata={"name": "d", "namespace": "apps"})
    assert evaluate(files, other_group)["warn"] == [], "a Deployment of another API group is not a workload"


def test_parse_back_rejects_broken_rego() -> None:
    with pytest.raises(ArtifactError, match="does not compile"):
        RegoBackend().parse_back({"rego/main.rego": "package main\nimport rego.v1\ndeny contains x if {\n"})


@pytest.mark.parametrize("value", ['[{"a": 1}', '[] junk', '[x | some x in [1]'])
def test_parse_back_reads_json_constants_as_json_and_the_rest_as_rego(value: str) -> None:
    """JSON constants (the exemption data) are checked by a JSON parser, and rego-cpp reads an empty
    literal in their place; a constant that is not strict JSON (broken, or Rego) still goes to rego-cpp."""
    from compiler.lang.rego import _JSON_CONSTANT, _emptied

    module = "package main\nimport rego.v1\nwaivers := {}\n"
    RegoBackend().parse_back({"rego/main.rego": module.format('[{"id": "x", "names": ["a", "b"]}]')})
    with pytest.raises(ArtifactError, match="does not compile"):
        RegoBackend().parse_back({"rego/main.rego": module.format(value)})
    emptied = {text: _JSON_CONSTANT.sub(_emptied, text) for text in
               ('w := [{"a": [1, "b"]}]', 'w := {"a": {}}', 'w := {"a": 1, "a": 2}', "w := [NaN]", "w := [x | x := 1]")}
    assert list(emptied.values()) == ["w := []", "w := {}", 'w := {"a": 1, "a": 2}', "w := [NaN]", "w := [x | x := 1]"]


def test_parse_back_builds_one_module_per_shape_and_still_refuses_any_broken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules that differ only in string literals, comments and package name are one shape, built
    once; a module with a syntax error, a string that is not valid JSON, a keyword in its package or
    a package within another's is built as it is, so rego-cpp judges it."""
    module = 'package kupe.rules.{0}\nimport rego.v1\n\n# rule {0}\nrule_id := "{0}"\nviolation contains {{"msg": "{0}: bad", "rule": rule_id}} if {{\n\tinput.x == "{0}"\n}}\n'
    modules = {f"rego/r{i}.rego": module.format(f"r{i}") for i in range(5)}
    main = "package main\nimport rego.v1\n" + "".join(f"deny contains v if {{\n\tsome v in data.kupe.rules.r{i}.violation\n}}\n" for i in range(5))
    added: list[str] = []
    original = regopy.Interpreter.add_module
    monkeypatch.setattr(regopy.Interpreter, "add_module", lambda self, path, text: added.append(path) or original(self, path, text))
    RegoBackend().parse_back({**modules, "rego/main.rego": main})
    assert sorted(added) == ["rego/main.rego", "rego/r0.rego"]
    for broken in (module.format("r4").replace("if {", "if {{"), module.format("r4").replace('"r4"', '"r\\q4"')):
        with pytest.raises(ArtifactError, match="does not compile"):
            RegoBackend().parse_back({**modules, "rego/r4.rego": broken, "rego/main.rego": main})
    added.clear()
    RegoBackend().parse_back({**modules, "rego/r4.rego": module.format("r4").replace("kupe.rules.r4", "kupe.rules.not"), "rego/main.rego": main})
    assert sorted(added) == ["rego/main.rego", "rego/r0.rego", "rego/r4.rego"], "a keyword in a package: rego-cpp judges it"
    added.clear()
    RegoBackend().parse_back({**modules, "rego/r4.rego": module.format("r4").replace("kupe.rules.r4", "kupe.rules.r1.x"), "rego/main.rego": main})
    assert sorted(added) == ["rego/main.rego", "rego/r0.rego", "rego/r1.rego", "rego/r4.rego"], "a package within another: both are built"


def test_templates_refuse_unescaped_values_and_escape_hostile_text() -> None:
    with pytest.raises(ArtifactError, match="unescaped"):
        render("rego/main.rego.j2", sources="x", entries=[{"rule": "deny", "package": "p", "staged": False}])

    def hostile(ps: PolicySet) -> None:
        ps.rule("hostile", Required, title="t\n}\ndeny contains 1 if true", rationale="r", fix='"} ; deny contains 1 if { true',
                check=pod().field("hostIPC").not_equals(True))

    files = RegoBackend().compile(program(hostile))
    compliant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    assert evaluate(files, compliant) == {"deny": []}


def test_staged_rule_denies_inside_its_stage_and_warns_elsewhere() -> None:
    def staged(ps: PolicySet) -> None:
        ps.rule("read-only", Recommended, title="t", rationale="r", fix="f", enforced_in=["payments"],
                check=containers().field("securityContext.readOnlyRootFilesystem").equals(True))

    files = RegoBackend().compile(program(staged))
    pod_in = lambda ns: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},  # noqa: E731
                         "spec": {"containers": [{"name": "app"}]}}
    inside, outside = evaluate(files, pod_in("payments")), evaluate(files, pod_in("apps"))
    assert [v["rule"] for v in inside["deny"]] == ["read-only"] and inside["warn"] == []
    assert [v["rule"] for v in outside["warn"]] == ["read-only"] and outside["deny"] == []


def test_scheduled_rule_is_required_from_its_date() -> None:
    ps = PolicySet("demo", title="Demo")
    ps.rule("seccomp", Recommended, title="t", rationale="r", fix="f", enforce_from="2027-06-01",
            check=containers().effective("securityContext.seccompProfile.type").one_of(["RuntimeDefault"]))
    before = passes.resolve((ps.build(),), (), dt.date(2027, 5, 31))[0].rules[0]
    after = passes.resolve((ps.build(),), (), dt.date(2027, 6, 1))[0].rules[0]
    assert before.level is ir.Level.RECOMMENDED and after.level is ir.Level.REQUIRED
