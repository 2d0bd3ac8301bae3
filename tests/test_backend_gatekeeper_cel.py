"""The Gatekeeper backend's K8sNativeValidation entry: its shape, its parse-back, and exemptions read from the Constraint."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from compiler import ir
from compiler.backends.gatekeeper import GatekeeperBackend
from compiler.errors import ArtifactError
from compiler.passes import POD_TARGETS, place
from conformance.adapters.gatekeeper import GatekeeperAdapter
from conformance.adapters.gatekeeper_cel import GatekeeperCelAdapter
from conformance.engines.gatekeeper import ConstraintTemplateEngine
from conformance.adapters import Request

AS_OF = dt.date(2026, 11, 1)
LOC = ir.Loc("policies/test.py", 7)
RULE = "restrict-added-capabilities"
TEMPLATE = f"gatekeeper/templates/{RULE}.yaml"
CONSTRAINTS = f"gatekeeper/constraints/{RULE}.yaml"


def container_rule(level: ir.Level = ir.Level.REQUIRED, enforced_in: tuple[str, ...] = ()) -> ir.Rule:
    check = ir.Check(ir.EachContainer(), ir.ListSubsetOf(ir.FieldRef(ir.Scope.CONTAINER, ("securityContext", "capabilities", "add")),
                                                         ir.Param("allowed_capabilities")), LOC)
    return ir.Rule(RULE, level, "Add back only allowed capabilities", "why", "Remove them", (check,),
                   (("allowed_capabilities", ("NET_BIND_SERVICE",)),), tuple(POD_TARGETS), "test-set", LOC, enforced_in=enforced_in)


def exemption(exemption_id: str, **criteria: object) -> ir.Exemption:
    fields: dict[str, object] = {"namespaces": (), "names": (), "labels": (), "containers": (), "allow": ()}
    fields.update(criteria)
    return ir.Exemption(exemption_id, (RULE,), reason="because", owner="team", ticket="SEC-1",
                        expires=dt.date(2027, 1, 1), loc=ir.Loc("policies/exemptions.py", 3), **fields)  # type: ignore[arg-type]


def program(rule: ir.Rule, *exemptions: ir.Exemption) -> ir.Program:
    resolved = ir.ResolvedRule(rule, rule.level, ir.AuditAction.DRYRUN, tuple(POD_TARGETS.values()), tuple((e, place(e)) for e in exemptions),
                               enforced_in=rule.enforced_in)
    policy_set = ir.PolicySet("test-set", "Test", ir.AuditAction.DRYRUN, (rule,), ir.Loc("policies/test.py", 1))
    return ir.Program(AS_OF, (policy_set,), (resolved,), exemptions, ())


def pod(namespace: str = "apps", name: str = "p", labels: dict | None = None, **adds: tuple[str, ...]) -> dict:
    containers = [{"name": c, "securityContext": {"capabilities": {"add": list(add)}}} for c, add in adds.items()]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": containers}}


def cel_entry(files: dict[str, str]) -> dict:
    target = yaml.safe_load(files[TEMPLATE])["spec"]["targets"][0]
    assert target["rego"].startswith("# Generated"), "the classic rego field stays"
    (entry,) = target["code"]
    return entry


def test_template_carries_the_rule_as_a_k8s_native_validation_entry() -> None:
    entry = cel_entry(GatekeeperBackend().compile(program(container_rule())))
    assert entry["engine"] == "K8sNativeValidation"
    source = entry["source"]
    assert source["failurePolicy"] == "Fail"
    assert [v["name"] for v in source["variables"]] == [
        "requestNamespace", "parameterMap", "parameters", "judged", "podSpecValue", "podSpec", "selectedWaivers",
        "selectedWidenings", "old_podSpecValue", "old_podSpec", "containers", "failing_securityContext_capabilities_add",
        "old_containers", "old_failing_securityContext_capabilities_add"]
    variables = {v["name"]: v["expression"] for v in source["variables"]}
    assert variables["parameterMap"] == "type(variables.params) == map ? variables.params : {}"
    assert '"allowed_capabilities": variables.parameterMap[?"allowed_capabilities"].orValue([])' in variables["parameters"]
    assert '"waivers": variables.parameterMap[?"waivers"].orValue([])' in variables["parameters"]
    assert variables["selectedWaivers"].startswith("variables.parameters.waivers.filter(e,")
    assert variables["podSpecValue"].startswith('variables.anyObject.kind == "Pod"'), "anyObject: the Rego's object, also on DELETE"
    failing = variables["failing_securityContext_capabilities_add"]
    assert 'item in variables.parameters["allowed_capabilities"] || variables.selectedWidenings.exists(' in failing
    assert "variables.selectedWaivers.exists(" in failing
    assert "NET_BIND_SERVICE" not in failing, "parameter values are read from the Constraint, not inlined"
    (validation,) = source["validations"]
    assert validation == {
        "expression": "variables.failing_securityContext_capabilities_add.all(n, n in "
                      "variables.old_failing_securityContext_capabilities_add)",
        "messageExpression": f'"{RULE}: container " + variables.failing_securityContext_capabilities_add.filter(n, '
                             '!(n in variables.old_failing_securityContext_capabilities_add)).join(\', \') + '
                             '": securityContext.capabilities.add may only hold the values of parameter allowed_capabilities. Fix: Remove them"',
        "message": f"{RULE}: securityContext.capabilities.add may only hold the values of parameter allowed_capabilities. Fix: Remove them",
    }
    assert not any("params" in v["expression"].replace("variables.params", "") for v in source["variables"] + source["validations"])


def _with_source(files: dict[str, str], edit) -> dict[str, str]:  # type: ignore[no-untyped-def]
    template = yaml.safe_load(files[TEMPLATE])
    edit(template["spec"]["targets"][0]["code"][0]["source"])
    return {**files, TEMPLATE: yaml.safe_dump(template)}


@pytest.mark.parametrize(("edit", "why"), [
    (lambda s: s["validations"][0].update(expression="size(variables.containers) == "), "CEL does not compile"),
    (lambda s: s["validations"][0].update(messageExpression='"x" + '), "CEL does not compile"),
    (lambda s: s["validations"][0].update(expression="params.spec.parameters != null"), "CEL does not compile"),
    (lambda s: s["variables"].insert(0, s["variables"].pop(2)), "reads variables not declared before it"),
    (lambda s: s["variables"].append({"name": "anyObject", "expression": "object"}), "repeats or is reserved"),
    (lambda s: s.update(matchConditions=[{"name": "x", "expression": "true"}]), "matchConditions"),
])
def test_parse_back_refuses_broken_cel(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    files = GatekeeperBackend().compile(program(container_rule()))
    with pytest.raises(ArtifactError, match=why):
        GatekeeperBackend().parse_back(_with_source(files, edit))


def _violations(files: dict[str, str], obj: dict, constraint_edit=None) -> list:  # type: ignore[no-untyped-def]
    template = yaml.safe_load(files[TEMPLATE])
    (constraint,) = yaml.safe_load_all(files[CONSTRAINTS])
    if constraint_edit:
        constraint = copy.deepcopy(constraint)
        constraint_edit(constraint["spec"]["parameters"])
    return ConstraintTemplateEngine(template, engine="cel").review(constraint, obj, namespace=None)


def test_cel_applies_the_waivers_and_widenings_of_the_constraint_parameters() -> None:
    files = GatekeeperBackend().compile(program(
        container_rule(),
        exemption("debug-sidecar", namespaces=("apps",), containers=("debug",)),
        exemption("netadmin", labels=(("app", "router"),), allow=(("allowed_capabilities", ("NET_ADMIN",)),)),
    ))
    assert _violations(files, pod(debug=("SYS_ADMIN",))) == [], "a waiver scoped to a container"
    (violation,) = _violations(files, pod(app=("SYS_ADMIN",), debug=("SYS_ADMIN",)))
    assert violation.msg.startswith(f"{RULE}: container app:") and not violation.error
    assert _violations(files, pod(labels={"app": "router"}, app=("NET_ADMIN",))) == [], "a widening by label"
    assert _violations(files, pod(labels={"app": "web"}, app=("NET_ADMIN",))), "the widening selects by label only"
    assert _violations(files, pod(namespace="other", debug=("SYS_ADMIN",))), "the waiver selects its namespace only"
    # Read at evaluation time: the same template judges differently once the Constraint changes.
    assert _violations(files, pod(debug=("SYS_ADMIN",)), lambda p: p.update(waivers=[]))
    assert _violations(files, pod(app=("SYS_ADMIN",)), lambda p: p.update(allowed_capabilities=["SYS_ADMIN"])) == []
    # A parameter missing from the Constraint reads as an empty list, as in the Rego: no error, nothing allowed.
    (missing,) = _violations(files, pod(app=("NET_BIND_SERVICE",)), lambda p: p.clear())
    assert not missing.error


def test_cel_and_rego_give_the_same_verdicts_for_a_staged_rule() -> None:
    prog = program(container_rule(ir.Level.RECOMMENDED, enforced_in=("payments",)), exemption("sys", namespaces=("kube-system",)))
    files = GatekeeperBackend().compile(prog)
    rego, cel = GatekeeperAdapter(files), GatekeeperCelAdapter(files)
    for namespace, verdict in [("payments", "deny"), ("apps", "audit"), ("kube-system", None)]:
        bad = pod(namespace, app=("SYS_ADMIN",))
        expected = {RULE: verdict} if verdict else {}
        assert rego.evaluate(Request.create(bad)) == cel.evaluate(Request.create(bad)) == expected
        assert cel.evaluate(Request.create(pod(namespace, app=("NET_BIND_SERVICE",)))) == {}


def test_the_repository_policies_compile_with_cel_in_every_template() -> None:
    from compiler import pipeline

    prog, _ = pipeline.build_program(Path(__file__).resolve().parent.parent / "policies", AS_OF)
    files = GatekeeperBackend().compile(prog)
    templates = [p for p in files if p.startswith("gatekeeper/templates/") and not p.endswith("kustomization.yaml")]
    assert templates and all(cel_entry({**files, TEMPLATE: files[p]})["source"]["validations"] for p in templates)
