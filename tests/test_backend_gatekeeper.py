"""The Gatekeeper backend: an input rule, and the fragments of ConstraintTemplate and Constraint it must give."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from compiler import ir, pipeline
from compiler.backends.gatekeeper import GatekeeperBackend
from compiler.errors import ArtifactError, UnsupportedError
from compiler.passes import POD_TARGETS, place
from conformance.adapters.gatekeeper import GatekeeperAdapter
from conformance.engines.gatekeeper.rego_source import prepare_v0
from conformance.adapters import Request

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)
LOC = ir.Loc("policies/test.py", 7)


def container_rule(rule_id: str = "restrict-added-capabilities", level: ir.Level = ir.Level.REQUIRED) -> ir.Rule:
    check = ir.Check(ir.EachContainer(), ir.ListSubsetOf(ir.FieldRef(ir.Scope.CONTAINER, ("securityContext", "capabilities", "add")),
                                                         ir.Param("allowed_capabilities")), LOC)
    return ir.Rule(rule_id, level, "Add back only allowed capabilities", "why", "Remove them", (check,),
                   (("allowed_capabilities", ("NET_BIND_SERVICE",)),), tuple(POD_TARGETS), "test-set", LOC)


def exemption(exemption_id: str, **criteria: object) -> ir.Exemption:
    fields: dict[str, object] = {"namespaces": (), "names": (), "labels": (), "containers": (), "allow": ()}
    fields.update(criteria)
    return ir.Exemption(exemption_id, ("restrict-added-capabilities",), reason="because", owner="team", ticket="SEC-1",
                        expires=dt.date(2027, 1, 1), loc=ir.Loc("policies/exemptions.py", 3), **fields)  # type: ignore[arg-type]


def program(rule: ir.Rule, *exemptions: ir.Exemption, audit_action: ir.AuditAction = ir.AuditAction.DRYRUN) -> ir.Program:
    resolved = ir.ResolvedRule(rule, rule.level, audit_action, tuple(POD_TARGETS.values()), tuple((e, place(e)) for e in exemptions))
    policy_set = ir.PolicySet("test-set", "Test", audit_action, (rule,), ir.Loc("policies/test.py", 1))
    return ir.Program(AS_OF, (policy_set,), (resolved,), exemptions, ())


def compiled(prog: ir.Program) -> dict[str, object]:
    """Each file's object, or its list of objects when it holds several."""
    docs = {path: list(yaml.safe_load_all(text)) for path, text in GatekeeperBackend().compile(prog).items()}
    return {path: objects[0] if len(objects) == 1 else objects for path, objects in docs.items()}


def constraint_of(docs: dict[str, object], rule_id: str = "restrict-added-capabilities") -> dict:
    return docs[f"gatekeeper/constraints/{rule_id}.yaml"]  # type: ignore[return-value]


def pod(namespace: str, container: str = "c", add: tuple[str, ...] = ("NET_ADMIN",)) -> dict:
    sc = {"capabilities": {"add": list(add)}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [{"name": container, "securityContext": sc}]}}


def template_of(docs: dict[str, object], rule_id: str = "restrict-added-capabilities") -> dict:
    return docs[f"gatekeeper/templates/{rule_id}.yaml"]  # type: ignore[return-value]


def test_template_names_kind_and_rego_form() -> None:
    template = template_of(compiled(program(container_rule())))
    assert template["apiVersion"] == "templates.gatekeeper.sh/v1"
    assert template["spec"]["crd"]["spec"]["names"]["kind"] == "KupeRestrictAddedCapabilities"
    assert template["metadata"]["name"] == "kuperestrictaddedcapabilities"
    (target,) = template["spec"]["targets"]
    assert target["target"] == "admission.k8s.gatekeeper.sh"
    rego = target["rego"]
    assert "package kuperestrictaddedcapabilities\n" in rego
    assert "import rego.v1" not in rego
    assert 'violation contains {"msg": msg, "details": {"rule": rule_id' in rego
    (lib,) = target["libs"]
    assert "request := input.review" in lib and "resource := request.object" in lib
    assert "old_resource := request.oldObject" in lib
    assert "pod_spec := kupe.pod_spec(kupe.resource, kinds)" in rego
    assert "old_pod_spec := spec if {\n\tspec := kupe.pod_spec(kupe.old_resource, kinds)\n} else := null" in rego
    prepare_v0(rego)  # Gatekeeper's v0 parse: every v1 keyword imported from future.keywords


def test_required_rule_denies_on_pods_and_every_controller_by_group() -> None:
    spec = constraint_of(compiled(program(container_rule())))["spec"]
    assert spec["enforcementAction"] == "deny"
    assert spec["match"]["kinds"] == [
        {"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
        {"apiGroups": ["apps"], "kinds": ["DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]},
        {"apiGroups": ["batch"], "kinds": ["CronJob", "Job"]},
    ]
    assert "excludedNamespaces" not in spec["match"]
    assert spec["parameters"] == {"allowed_capabilities": ["NET_BIND_SERVICE"], "waivers": [], "widenings": []}


@pytest.mark.parametrize("action", [ir.AuditAction.DRYRUN, ir.AuditAction.WARN])
def test_recommended_rule_takes_the_policy_sets_audit_action(action: ir.AuditAction) -> None:
    rule = container_rule(level=ir.Level.RECOMMENDED)
    assert constraint_of(compiled(program(rule, audit_action=action)))["spec"]["enforcementAction"] == action.value


def test_namespace_wide_waiver_is_excluded_natively_and_nowhere_else() -> None:
    spec = constraint_of(compiled(program(container_rule(), exemption("system", namespaces=("kube-system", "kube-node-lease")))))["spec"]
    assert spec["match"]["excludedNamespaces"] == ["kube-node-lease", "kube-system"]
    assert spec["parameters"]["waivers"] == []


def test_narrower_waivers_and_widenings_travel_in_parameters() -> None:
    waiver = exemption("legacy", namespaces=("billing",), names=("invoicer",))
    widening = exemption("cilium", namespaces=("cilium",), labels=(("app", "cilium"),), containers=("agent",),
                         allow=(("allowed_capabilities", ("NET_ADMIN",)),))
    spec = constraint_of(compiled(program(container_rule(), waiver, widening)))["spec"]
    assert "excludedNamespaces" not in spec["match"]
    assert spec["parameters"]["waivers"] == [
        {"id": "legacy", "namespaces": ["billing"], "names": ["invoicer"], "labels": {}, "containers": [], "allow": {}}]
    assert spec["parameters"]["widenings"] == [
        {"id": "cilium", "namespaces": ["cilium"], "names": [], "labels": {"app": "cilium"}, "containers": ["agent"],
         "allow": {"allowed_capabilities": ["NET_ADMIN"]}}]


def test_exemptions_take_effect_in_the_emulator() -> None:
    widening = exemption("cilium", namespaces=("cilium",), containers=("agent",), allow=(("allowed_capabilities", ("NET_ADMIN",)),))
    adapter = GatekeeperAdapter(GatekeeperBackend().compile(program(container_rule(), widening, exemption("sys", namespaces=("kube-system",)))))
    assert adapter.evaluate(Request.create(pod("cilium", "agent"))) == {}
    assert adapter.evaluate(Request.create(pod("cilium", "other"))) == {"restrict-added-capabilities": "deny"}
    assert adapter.evaluate(Request.create(pod("kube-system", "other"))) == {}
    assert adapter.evaluate(Request.create(pod("default", "agent"))) == {"restrict-added-capabilities": "deny"}


def staged_program(*exemptions: ir.Exemption) -> ir.Program:
    rule = replace(container_rule(level=ir.Level.RECOMMENDED), enforced_in=("payments", "billing"))
    prog = program(rule, *exemptions, audit_action=ir.AuditAction.WARN)
    return replace(prog, rules=(replace(prog.rules[0], enforced_in=rule.enforced_in),))


def test_staged_rule_denies_in_its_stage_and_audits_elsewhere_with_two_constraints() -> None:
    docs = compiled(staged_program(exemption("sys", namespaces=("kube-system",))))
    enforced, audited = constraint_of(docs)  # type: ignore[misc]
    assert (enforced["metadata"]["name"], enforced["spec"]["enforcementAction"]) == ("restrict-added-capabilities-enforced", "deny")
    assert enforced["spec"]["match"]["namespaces"] == ["billing", "payments"]
    assert enforced["spec"]["match"]["excludedNamespaces"] == ["kube-system"]
    assert (audited["metadata"]["name"], audited["spec"]["enforcementAction"]) == ("restrict-added-capabilities", "warn")
    assert "namespaces" not in audited["spec"]["match"]
    assert audited["spec"]["match"]["excludedNamespaces"] == ["billing", "kube-system", "payments"]
    assert enforced["spec"]["parameters"] == audited["spec"]["parameters"]
    rego = template_of(docs)["spec"]["targets"][0]["rego"]
    assert 'enforced_in := ["billing", "payments"]' in rego and 'level := "required" if {' in rego


def test_staged_rule_verdicts_in_the_emulator() -> None:
    adapter = GatekeeperAdapter(GatekeeperBackend().compile(staged_program(exemption("sys", namespaces=("kube-system",)))))
    assert adapter.evaluate(Request.create(pod("payments"))) == {"restrict-added-capabilities": "deny"}
    assert adapter.evaluate(Request.create(pod("default"))) == {"restrict-added-capabilities": "audit"}
    assert adapter.evaluate(Request.create(pod("kube-system"))) == {}
    assert adapter.evaluate(Request.create(pod("payments", add=("NET_BIND_SERVICE",)))) == {}


def test_a_stage_gatekeeper_would_read_as_a_glob_is_refused() -> None:
    prog = staged_program()
    prog = replace(prog, rules=(replace(prog.rules[0], enforced_in=("team-*",)),))
    with pytest.raises(UnsupportedError, match="enforced_in"):
        GatekeeperBackend().compile(prog)


_READ = re.compile(r'object\.get\(input\.parameters, "([a-z_]+)", \[\]\)')


@pytest.mark.parametrize("source", ["synthetic", "staged", "policies"])
def test_schema_declares_exactly_the_parameters_the_rego_reads(source: str) -> None:
    prog = {
        "synthetic": lambda: program(container_rule(), exemption("w", namespaces=("a",), names=("b",))),
        "staged": staged_program,
        "policies": lambda: pipeline.build_program(ROOT / "policies", AS_OF)[0],
    }[source]()
    files = GatekeeperBackend().compile(prog)
    for rule in prog.rules:
        template = yaml.safe_load(files[f"gatekeeper/templates/{rule.id}.yaml"])
        rego = template["spec"]["targets"][0]["rego"]
        declared = set(template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"])
        assert rego.count("input.parameters") == len(_READ.findall(rego)), "every read has the one recognised form"
        assert set(_READ.findall(rego)) == declared
        for constraint in yaml.safe_load_all(files[f"gatekeeper/constraints/{rule.id}.yaml"]):
            assert set(constraint["spec"]["parameters"]) == declared


def test_a_namespace_gatekeeper_would_read_as_a_glob_is_refused() -> None:
    with pytest.raises(UnsupportedError, match="kube-\\*"):
        GatekeeperBackend().compile(program(container_rule(), exemption("glob", namespaces=("kube-*",))))


def test_rule_ids_that_collide_as_template_names_are_refused() -> None:
    first, second = container_rule("run-as-root"), container_rule("run-asroot")
    prog = program(first)
    resolved = prog.rules + (replace(prog.rules[0], rule=second),)
    with pytest.raises(UnsupportedError, match="kuperunasroot"):
        GatekeeperBackend().compile(replace(prog, rules=resolved))


def test_a_rule_parameter_named_like_the_exemption_parameters_is_refused() -> None:
    rule = container_rule()
    check = replace(rule.checks[0], predicate=replace(rule.checks[0].predicate, allowed=ir.Param("waivers")))
    with pytest.raises(UnsupportedError, match="'waivers' would collide"):
        GatekeeperBackend().compile(program(replace(rule, checks=(check,), params=(("waivers", ("X",)),))))


def test_compiling_twice_gives_identical_bytes() -> None:
    prog = pipeline.build_program(ROOT / "policies", AS_OF)[0]
    first, second = GatekeeperBackend().compile(prog), GatekeeperBackend().compile(prog)
    assert first == second
    for path, text in first.items():
        assert text.startswith("# Generated by kupe-policy from policies/"), path
        assert str(AS_OF.year) not in text.split("\n", 1)[0], path


def test_kustomizations_apply_templates_before_constraints() -> None:
    docs = compiled(program(container_rule()))
    assert docs["gatekeeper/kustomization.yaml"]["resources"] == ["templates", "constraints"]
    assert docs["gatekeeper/templates/kustomization.yaml"]["resources"] == ["restrict-added-capabilities.yaml"]
    assert docs["gatekeeper/constraints/kustomization.yaml"]["resources"] == ["restrict-added-capabilities.yaml"]


# --- parse back refuses what Gatekeeper would refuse or silently prune -----------------------


def _mutated(edit: str, old: str, new: str) -> dict[str, str]:
    files = GatekeeperBackend().compile(program(container_rule()))
    path = f"gatekeeper/{edit}/restrict-added-capabilities.yaml"
    assert old in files[path]
    files[path] = files[path].replace(old, new, 1)
    return files


@pytest.mark.parametrize(("edit", "old", "new", "message"), [
    ("constraints", '"allowed_capabilities": ["NET_BIND_SERVICE"]', '"allowed_capabilitys": ["NET_BIND_SERVICE"]', "allowed_capabilitys"),
    ("constraints", 'enforcementAction: "deny"', 'enforcementAction: "block"', "block"),
    ("constraints", "  match:\n", "  match:\n    namespace: [x]\n", "namespace"),
    ("constraints", 'kind: "KupeRestrictAddedCapabilities"', 'kind: "KupeOther"', "not its template's"),
    ("templates", 'name: "kuperestrictaddedcapabilities"', 'name: "kupe-restrict"', "not its kind lowercased"),
    ("templates", "      import future.keywords.every\n", "", "needs ['future.keywords.every']"),
    ("templates", 'fix := "Remove', 'fix = = "Remove', "does not compile"),
    ("templates", "package lib.kupe", "package kupe.helpers", "libs must live in packages under lib."),
])
def test_parse_back_refuses_a_broken_artifact(edit: str, old: str, new: str, message: str) -> None:
    with pytest.raises(ArtifactError, match=re.escape(message)):
        GatekeeperBackend().parse_back(_mutated(edit, old, new))
