"""The Rego backend: expected output for one input, refusal of what it cannot lower, safe rendering."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path

import pytest
import regopy
import yaml
from conftest import program

from compiler import ir, passes, pipeline
from compiler.backends.rego import RegoBackend
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, pod
from compiler.errors import ArtifactError
from compiler.render import render

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)


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


_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
        "spec": {"hostNetwork": True, "containers": [{"name": "app", "image": "app", "securityContext": {"privileged": True}}]}}
_DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps"},
               "spec": {"template": {"spec": _POD["spec"]}}}


def _review(operation: str, obj: dict | None, old: dict | None, *, with_old: bool = True) -> dict:
    request = {"uid": "1", "operation": operation, "namespace": "apps", "object": obj, "userInfo": {"username": "u"}}
    if with_old:
        request["oldObject"] = old  # the API server sends null on a creation
    return request


_REQUESTS = {  # every request a rule judges, as the AdmissionRequest OPA and Gatekeeper read
    "creation": _review("CREATE", _POD, None),
    "creation without oldObject": _review("CREATE", _DEPLOYMENT, None, with_old=False),
    "update": _review("UPDATE", _POD, _POD),
    "update of another kind": _review("UPDATE", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, None),
    "kubectl debug": {**_review("UPDATE", _POD, _POD), "subResource": "ephemeralcontainers"},
}  # a DELETE is never judged


def _read_under_negation(module: str, lib: str) -> tuple[set[str], set[str]]:
    """The module's own rules and lib.kupe's rules that its `not` expressions read (functions are called, not read)."""
    own, shared = (set(re.findall(r"^([a-z_]\w*) :=", text, re.MULTILINE)) for text in (module, lib))
    negations = [line.strip() for line in module.splitlines() if line.strip().startswith("not ")]
    read = {name for line in negations for name in re.findall(r"(?<![\w.])([a-z_]\w*)\b(?!\()", line)}
    in_lib = {name for line in negations for name in re.findall(r"\bkupe\.([a-z_]\w*)\b(?!\()", line)}
    return read & own, in_lib & shared


def _undefined(modules: dict[str, str], refs: list[str], document: dict) -> list[str]:
    """The refs that are undefined for `document` (one query: `_ = ref` holds for any value, false too)."""
    interpreter = regopy.Interpreter()
    for path, text in modules.items():
        interpreter.add_module(path, text)
    interpreter.set_input_term(json.dumps(document))
    found = interpreter.query("x = [" + ", ".join(f"count([1 | _ = {ref}])" for ref in refs) + "]").results
    return [ref for ref, count in zip(refs, found[0].bindings["x"]) if count == 0]


Judged = list[tuple[str, dict[str, str], str, str, dict[str, dict]]]  # where, modules, the rule's module, its package, inputs


@functools.cache
def _shipped() -> dict[str, str]:
    """The shipped policies' artifacts of every backend that writes Rego, compiled once for these tests."""
    return pipeline.compile_backends(pipeline.build_program(REPO / "policies", AS_OF)[0], ["rego", "gatekeeper", "compose", "dockerfile"])


def _templates() -> dict[str, dict]:
    """Each Gatekeeper template's target (its rego and libs), by path."""
    return {path: yaml.safe_load(text)["spec"]["targets"][0] for path, text in sorted(_shipped().items())
            if path.startswith("gatekeeper/templates/") and not path.endswith("kustomization.yaml")}


def _rego_backend() -> Judged:
    modules = {p: t for p, t in _shipped().items() if p.startswith("rego/") and p.endswith(".rego")}
    inputs = {name: {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": r} for name, r in _REQUESTS.items()}
    inputs["manifest (conftest)"] = _POD
    shared = {p: t for p, t in modules.items() if p.count("/") != 1 or p == "rego/main.rego"}
    return [(path, {**shared, path: text}, text, re.search(r"^package (\S+)", text, re.MULTILINE)[1], inputs)
            for path, text in modules.items() if path not in shared]


def _gatekeeper_backend() -> Judged:
    found = []
    for path, target in _templates().items():
        constraint = next(yaml.safe_load_all(_shipped()[path.replace("/templates/", "/constraints/")]))
        modules = {"rule.rego": target["rego"], **{f"lib{i}.rego": lib for i, lib in enumerate(target["libs"])}}
        inputs = {name: {"review": r, "parameters": constraint["spec"].get("parameters", {})} for name, r in _REQUESTS.items()}
        found.append((path, modules, target["rego"], re.search(r"^package (\S+)", target["rego"], re.MULTILINE)[1], inputs))
    return found


@pytest.mark.parametrize("backend", [_rego_backend, _gatekeeper_backend], ids=["rego", "gatekeeper"])
def test_every_rule_a_negation_reads_is_defined_on_every_judged_request(backend) -> None:  # type: ignore[no-untyped-def]
    """OPA evaluates the arguments of a call under `not` before the negation (rego-cpp does not):
    `not x in f(old_pod_spec)` with `old_pod_spec` undefined is undefined in OPA, not true, and
    so is every violation whose body holds it. On a creation that left the Rego and Gatekeeper
    backends denying nothing in OPA and gator while rego-cpp denied (measured: OPA v1.10,
    gator v3.21.1, docs/engine-notes.md). So every rule a negation reads must be defined on every
    request a rule judges."""
    checked = 0
    for path, modules, module, package, inputs in backend():
        lib = "\n".join(text for text in modules.values() if "package lib.kupe" in text)
        own, shared = _read_under_negation(module, lib)
        assert "old_pod_spec" in own, f"{path}: the UPDATE guard reads the old pod spec under `not`"
        refs = [f"data.{package}.{rule}" for rule in sorted(own)] + [f"data.lib.kupe.{rule}" for rule in sorted(shared)]
        for name, document in inputs.items():
            assert _undefined(modules, refs, document) == [], f"{path}, on a {name}"
            checked += len(refs)
    assert checked > 0


def _rego_texts() -> dict[str, str]:
    """Every Rego text the compiler writes: modules, and the Gatekeeper templates' rego and libs."""
    texts = {p: t for p, t in _shipped().items() if p.endswith(".rego")}
    for path, target in _templates().items():
        texts.update({f"{path}:rego": target["rego"], **{f"{path}:libs[{i}]": lib for i, lib in enumerate(target["libs"])}})
    return texts


def test_no_negated_call_reads_a_field_that_may_be_missing() -> None:
    """The other form of the OPA quirk above: in `not is_true(service.privileged)`, an unset field
    leaves the negation undefined in OPA (true in rego-cpp), so conftest denied every Compose
    service that does not set `privileged`. A call under `not` reads fields with object.get."""
    found = []
    for path, text in _rego_texts().items():
        packages = set(re.findall(r"^import data\.\S*?(\w+)(?: as (\w+))?$", text, re.MULTILINE))
        aliases = {alias or name for name, alias in packages}
        for number, line in enumerate(text.splitlines(), 1):
            negated = line.partition("not ")[2] if re.search(r"(^|\bif )\s*not ", line) else ""
            code = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', negated)
            if "(" in code:
                fields = [f"{base}.{field}" for base, field in re.findall(r"(?<![\w.])([a-z_]\w*)\.([a-z_]\w*)\b(?!\()", code)
                          if base not in aliases]
                found += [f"{path}:{number}: {field}" for field in fields]
    assert found == []
