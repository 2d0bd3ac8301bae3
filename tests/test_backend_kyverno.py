"""The Kyverno backend: expected output for one input, verdicts in the emulator, refusals, strict schemas."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from conftest import program
from compiler import ir
from compiler.backends.kyverno import KyvernoBackend, validate_strictly
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, param, pod
from compiler.errors import ArtifactError, UnsupportedError
from conformance.adapters.kyverno import KyvernoAdapter
from conformance.adapters import Request

GROUP_KEY = ("{{ contains(`[\"Pod:\", \"Deployment:apps\", \"ReplicaSet:apps\", \"StatefulSet:apps\", \"DaemonSet:apps\", "
             "\"Job:batch\", \"CronJob:batch\", \"ReplicationController:\"]`, join(':', [to_string(request.object.kind), "
             "(to_string(request.object.apiVersion) | split(@, '/') | (length(@) == `2` && [0]) || '')])) }}")
CONTAINERS = ("request.object.spec.[\"containers\", \"initContainers\", \"ephemeralContainers\"][?type(@) == 'array'][]"
              " | [?type(@) == 'object']")




def documents(prog: ir.Program) -> dict[str, Any]:
    return {path: yaml.safe_load(text) for path, text in KyvernoBackend().compile(prog).items()}


def privileged(ps: PolicySet) -> None:
    ps.rule("no-privileged", Required, title="No privileged", rationale="Root on the node.", fix="Unset privileged",
            check=containers().field("securityContext.privileged").not_equals(True))


def capabilities(ps: PolicySet) -> None:
    ps.rule("caps", Required, title="Caps", rationale="r", fix="f",
            check=containers().field("securityContext.capabilities.add").subset_of(param("allowed")),
            params={"allowed": ["NET_BIND_SERVICE"]})


def resources(ps: PolicySet) -> None:
    ps.rule("resources", Recommended, title="Resources", rationale="r", fix="f",
            check=[containers(["containers", "initContainers"]).field(f"resources.{k}.cpu").present() for k in ("requests", "limits")])


def pod_of(container: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps", **metadata},
            "spec": {"containers": [{"name": "app", **container}]}}


def test_not_equals_lowers_to_typed_deny_condition_over_each_container() -> None:
    policy = documents(program(privileged))["kyverno/policies/no-privileged.yaml"]
    assert policy["apiVersion"] == "kyverno.io/v1" and policy["kind"] == "ClusterPolicy"
    assert policy["metadata"]["annotations"] == {
        "policies.kyverno.io/title": "No privileged",
        "policies.kyverno.io/category": "Demo",
        "policies.kyverno.io/severity": "high",
        "policies.kyverno.io/subject": "Pod",
        "policies.kyverno.io/minversion": "1.13.0",
        "policies.kyverno.io/description": "Root on the node. Unset privileged.",
    }
    assert policy["spec"]["background"] is True
    (rule,) = policy["spec"]["rules"]
    assert rule["name"] == "no-privileged"
    assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
    assert rule["preconditions"] == {"all": [{"key": "{{ request.operation || '' }}", "operator": "NotEquals", "value": "DELETE"},
                                             {"key": GROUP_KEY, "operator": "Equals", "value": True}]}
    value, before = 'element."securityContext"."privileged"', 'kupeNamesake[0]."securityContext"."privileged"'
    old_list = CONTAINERS.replace("request.object", "request.oldObject")
    assert rule["validate"] == {
        "failureAction": "Enforce",
        "message": "no-privileged: securityContext.privileged must not be true. Fix: Unset privileged",
        "allowExistingViolations": False,
        "foreach": [{
            "list": CONTAINERS,
            "context": [{"name": "kupeNamesake", "variable": {"jmesPath": (
                f"[lookup(object_from_lists(map(&to_string(name || ''), ({old_list}) || `[]`), ({old_list}) || `[]`), "
                "to_string(element.name || ''))]")}}],
            "preconditions": {"all": [{"key": (
                f"{{{{ type(kupeNamesake[0]) == 'object' && ({before} != `null` && (type({before}) != 'boolean' || {before} == `true`)) }}}}"),
                "operator": "Equals", "value": False}]},
            "deny": {"conditions": {"any": [{
                "key": f"{{{{ {value} != `null` && (type({value}) != 'boolean' || {value} == `true`) }}}}",
                "operator": "Equals", "value": True}]}}}],
    }


def test_present_lowers_to_a_pattern_per_check_and_recommended_audits() -> None:
    policy = documents(program(resources))["kyverno/policies/resources.yaml"]
    validate = policy["spec"]["rules"][0]["validate"]
    assert validate["failureAction"] == "Audit" and "emitWarning" not in policy["spec"]
    assert [entry["pattern"] for entry in validate["foreach"]] == [
        {"resources": {"requests": {"cpu": "*"}}}, {"resources": {"limits": {"cpu": "*"}}}]
    assert [entry["preconditions"]["all"][0]["key"] for entry in validate["foreach"]] == [
        f"{{{{ type(kupeNamesake[0]) == 'object' && (kupeNamesake[0].\"resources\".\"{kind}\".\"cpu\" == `null`) }}}}"
        for kind in ("requests", "limits")], "each check is compared with the old object on its own"


def test_effective_value_prefers_the_container_then_the_pod() -> None:
    def non_root(ps: PolicySet) -> None:
        ps.rule("non-root", Required, title="t", rationale="r", fix="f",
                check=containers().effective("securityContext.runAsNonRoot").equals(True))

    (entry,) = documents(program(non_root))["kyverno/policies/non-root.yaml"]["spec"]["rules"][0]["validate"]["foreach"]
    value = ('([element."securityContext"."runAsNonRoot", request.object.spec."securityContext"."runAsNonRoot"]'
             '[?@ != `null`] | [0])')
    assert entry["deny"]["conditions"]["any"][0]["key"] == f"{{{{ {value} != `true` }}}}"


def test_waiver_becomes_policy_exception_naming_autogen_rules() -> None:
    waiver = exempt("legacy", rules=["no-privileged"], namespaces=["billing"], names=["invoicer"],
                    labels={"app": "invoicer"}, reason="vendor image", owner="billing-team", ticket="SEC-1", expires="2027-01-31")
    exception = documents(program(privileged, waiver))["kyverno/exceptions/legacy.yaml"]
    assert exception["apiVersion"] == "kyverno.io/v2" and exception["kind"] == "PolicyException"
    assert exception["metadata"] == {"name": "legacy", "namespace": "kyverno", "annotations": {
        "exemptions.kupe.cloud/reason": "vendor image", "exemptions.kupe.cloud/owner": "billing-team",
        "exemptions.kupe.cloud/ticket": "SEC-1", "exemptions.kupe.cloud/expires": "2027-01-31"}}
    assert exception["spec"]["exceptions"] == [{"policyName": "no-privileged", "ruleNames": [
        "no-privileged", "autogen-no-privileged", "autogen-cronjob-no-privileged"]}]
    (selection,) = exception["spec"]["match"]["any"]
    assert selection["resources"]["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["billing"]}]}
    assert selection["resources"]["selector"] == {"matchLabels": {"app": "invoicer"}}
    assert exception["spec"]["conditions"] == {"all": [{
        "key": "{{ contains(`[\"invoicer\"]`, request.object.metadata.\"name\") }}", "operator": "Equals", "value": True}]}


def test_container_scoped_widening_stays_in_the_rule() -> None:
    widening = exempt("cni", rules=["caps"], namespaces=["cilium"], containers=["app"], allow={"allowed": ["NET_ADMIN"]},
                      reason="routes", owner="net", expires="2027-03-31")
    docs = documents(program(capabilities, widening))
    assert not any(path.startswith("kyverno/exceptions/") for path in docs), "an exception cannot be container-scoped"
    policy = docs["kyverno/policies/caps.yaml"]
    assert policy["metadata"]["annotations"]["exemptions.kupe.cloud/cni"].startswith("routes (owner net, ticket , expires 2027-03-31;")
    key = policy["spec"]["rules"][0]["validate"]["foreach"][0]["deny"]["conditions"]["any"][0]["key"]
    selected = "(contains(`[\"cilium\"]`, request.namespace || 'default') && contains(`[\"app\"]`, element.name || ''))"
    add = 'element."securityContext"."capabilities"."add"'
    assert key == (f"{{{{ {add} != `null` && (type({add}) != 'array' || "
                   f"(({selected} && length({add}[?contains(`[\"NET_BIND_SERVICE\", \"NET_ADMIN\"]`, @)]) != length({add})) || "
                   f"(!{selected} && length({add}[?contains(`[\"NET_BIND_SERVICE\"]`, @)]) != length({add})))) }}}}")
    adapter = KyvernoAdapter(KyvernoBackend().compile(program(capabilities, widening)))
    net_admin = {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
    assert adapter.evaluate(Request.create(pod_of(net_admin, namespace="cilium"))) == {}
    assert adapter.evaluate(Request.create(pod_of(net_admin, namespace="apps"))) == {"caps": "deny"}
    sidecar = pod_of(net_admin, namespace="cilium")
    sidecar["spec"]["containers"][0]["name"] = "sidecar"
    assert adapter.evaluate(Request.create(sidecar)) == {"caps": "deny"}


def test_staged_rule_enforces_in_its_namespaces_and_warn_emits_warnings() -> None:
    def staged(ps: PolicySet) -> None:
        ps.rule("no-host-pid", Recommended, title="t", rationale="r", fix="f", enforced_in=["apps"],
                check=pod().field("hostPID").not_equals(True))

    prog = program(staged, audit_action="warn")
    policy = documents(prog)["kyverno/policies/no-host-pid.yaml"]
    validate = policy["spec"]["rules"][0]["validate"]
    assert policy["spec"]["emitWarning"] is True
    assert validate["failureAction"] == "Audit"
    assert validate["failureActionOverrides"] == [{"action": "Enforce", "namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps"]}]}}]
    adapter = KyvernoAdapter(KyvernoBackend().compile(prog))
    host_pid = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostPID": True, "containers": []}}
    assert adapter.evaluate(Request.create(host_pid)) == {"no-host-pid": "audit"}, "a manifest without a namespace is in default"
    host_pid["metadata"]["namespace"] = "apps"
    assert adapter.evaluate(Request.create(host_pid)) == {"no-host-pid": "deny"}


def test_kinds_subset_sets_the_autogen_annotation() -> None:
    def pods_and_jobs(ps: PolicySet) -> None:
        ps.rule("jobs", Required, title="t", rationale="r", fix="f", kinds=["Pod", "Job"],
                check=pod().field("hostPID").not_equals(True))

    policy = documents(program(pods_and_jobs))["kyverno/policies/jobs.yaml"]
    assert policy["metadata"]["annotations"]["pod-policies.kyverno.io/autogen-controllers"] == "Job"


@pytest.mark.parametrize(
    ("value", "denied"),
    [(True, True), (False, False), (None, False), ("unset", False), ("true", True), ("false", True), ([], True), ([False], True)],
)
@pytest.mark.parametrize("kind", ["Pod", "Deployment", "CronJob"])
def test_verdicts_for_set_unset_null_and_wrong_type(value: object, denied: bool, kind: str) -> None:
    from conformance.suite import wrap

    adapter = KyvernoAdapter(KyvernoBackend().compile(program(privileged)))
    context = {} if value == "unset" else {"privileged": value}
    obj = pod_of({"securityContext": context})
    obj = obj if kind == "Pod" else wrap(obj, kind)
    assert adapter.evaluate(Request.create(obj)) == ({"no-privileged": "deny"} if denied else {})
    assert adapter.evaluate(Request.create({**obj, "apiVersion": "example.com/v1"})) == {}, "another API group is not a workload"


def test_null_and_missing_container_lists_have_no_containers() -> None:
    adapter = KyvernoAdapter(KyvernoBackend().compile(program(resources)))
    for spec in ({"containers": None}, {"initContainers": None, "containers": []}, {}, {"containers": "x"}):
        assert adapter.evaluate(Request.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})) == {}
    assert adapter.evaluate(Request.create(pod_of({"resources": {"requests": {"cpu": None}, "limits": {"cpu": "1"}}}))) == {"resources": "audit"}
    assert adapter.evaluate(Request.create(pod_of({"resources": {"requests": {"cpu": ""}, "limits": {"cpu": 0}}}))) == {}


def test_rule_without_pod_is_refused() -> None:
    def jobs_only(ps: PolicySet) -> None:
        ps.rule("jobs-only", Required, title="t", rationale="r", fix="f", kinds=["Job"], check=pod().field("hostPID").not_equals(True))

    with pytest.raises(UnsupportedError, match="cannot express PodTarget"):
        KyvernoBackend().compile(program(jobs_only))


def test_unknown_fields_are_rejected_by_the_strict_schema_check() -> None:
    policy = documents(program(privileged))["kyverno/policies/no-privileged.yaml"]
    validate_strictly(policy, "kyverno/policies/no-privileged.yaml")
    policy["spec"]["rules"][0]["validate"]["failureActon"] = "Enforce"
    with pytest.raises(ArtifactError, match=r"kyverno/policies/no-privileged.yaml: .*spec/rules/0/validate: .*'failureActon' was unexpected"):
        validate_strictly(policy, "kyverno/policies/no-privileged.yaml")
    policy["spec"]["rules"][0]["validate"].pop("failureActon")
    policy["spec"]["rules"][0]["validate"]["failureAction"] = "Deny"
    with pytest.raises(ArtifactError, match=r"ClusterPolicy does not validate at spec/rules/0/validate/failureAction: 'Deny' is not one of"):
        validate_strictly(policy, "kyverno/policies/no-privileged.yaml")


def test_output_is_deterministic_headed_and_installable_with_kustomize() -> None:
    waiver = exempt("ops", rules=["no-privileged", "caps"], namespaces=["ops"], reason="r", owner="o", expires="2027-01-01")
    first = KyvernoBackend().compile(program(privileged, capabilities, waiver))
    assert first == KyvernoBackend().compile(program(privileged, capabilities, waiver))
    assert sorted(first) == ["kyverno/exceptions/ops.yaml", "kyverno/kustomization.yaml",
                             "kyverno/policies/caps.yaml", "kyverno/policies/no-privileged.yaml"]
    for path, text in first.items():
        assert text.startswith("# Generated by kupe-policy from ") and "tests/test_backend_kyverno.py" in text.splitlines()[0], path
        assert "2026-11-01" not in text, "no compile date in the output"
    assert yaml.safe_load(first["kyverno/kustomization.yaml"])["resources"] == [
        "exceptions/ops.yaml", "policies/caps.yaml", "policies/no-privileged.yaml"]


def test_container_scoped_waiver_skips_only_its_containers() -> None:
    waiver = exempt("debug", rules=["no-privileged"], namespaces=["ops"], containers=["debugger"], reason="r", owner="o",
                    expires="2027-01-01")
    prog = program(privileged, waiver)
    (entry,) = documents(prog)["kyverno/policies/no-privileged.yaml"]["spec"]["rules"][0]["validate"]["foreach"]
    assert entry["preconditions"]["all"][0] == {"key": (
        "{{ (contains(`[\"ops\"]`, request.namespace || 'default') && contains(`[\"debugger\"]`, element.name || '')) }}"),
        "operator": "Equals", "value": False}
    adapter = KyvernoAdapter(KyvernoBackend().compile(prog))
    obj = pod_of({"securityContext": {"privileged": True}}, namespace="ops")
    assert adapter.evaluate(Request.create(obj)) == {"no-privileged": "deny"}
    obj["spec"]["containers"][0]["name"] = "debugger"
    assert adapter.evaluate(Request.create(obj)) == {}
