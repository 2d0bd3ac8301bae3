"""The kyverno-vpol backend: the objects one input rule compiles to, where exemptions go, what Kyverno
(emulated) decides with them, refusals, and strict validation against Kyverno's v1 CRD schemas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import program
from compiler.backends.kyverno_vpol import KyvernoVpolBackend, parse_back
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, param, pod
from compiler.errors import ArtifactError, UnsupportedError
from conformance.adapters import Request
from conformance.adapters.kyverno_vpol import KyvernoVpolAdapter

NOON = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)


def privileged(ps: PolicySet) -> None:
    ps.rule("no-privileged", Required, title="No privileged", rationale="r", fix="f",
            check=containers().field("securityContext.privileged").not_equals(True))


def staged_host_pid(ps: PolicySet) -> None:
    ps.rule("no-host-pid", Recommended, title="t", rationale="r", fix="f", enforced_in=["payments"],
            check=pod().field("hostPID").not_equals(True))


def capabilities(ps: PolicySet) -> None:
    ps.rule("caps", Required, title="t", rationale="r", fix="f", params={"allowed": ["NET_BIND_SERVICE"]},
            check=containers().field("securityContext.capabilities.add").subset_of(param("allowed")))


def a_pod(namespace: str = "apps", name: str = "p", labels: dict | None = None, **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": [{"name": container.pop("container_name", "app"), **container}]}}


def judge(files: dict[str, str], obj: dict[str, Any], at: dt.datetime = NOON) -> dict[str, str]:
    return KyvernoVpolAdapter(files).judge(Request("CREATE", obj, at=at))


def test_a_required_rule_is_one_deny_policy_with_kyverno_annotations_and_no_autogen() -> None:
    files = KyvernoVpolBackend().compile(program(privileged))
    assert sorted(files) == ["kyverno-vpol/kustomization.yaml", "kyverno-vpol/no-privileged.yaml"]
    (policy,) = yaml.safe_load_all(files["kyverno-vpol/no-privileged.yaml"])
    assert (policy["apiVersion"], policy["kind"], policy["metadata"]["name"]) == (
        "policies.kyverno.io/v1", "ValidatingPolicy", "kupe-no-privileged")
    annotations = policy["metadata"]["annotations"]
    assert annotations["policies.kyverno.io/minversion"] == "1.19.0"
    assert annotations["policies.kyverno.io/severity"] == "high"
    assert {"policies.kyverno.io/title", "policies.kyverno.io/category", "policies.kyverno.io/description"} <= set(annotations)
    spec = policy["spec"]
    assert spec["validationActions"] == ["Deny"] and spec["failurePolicy"] == "Fail"
    assert spec["autogen"] == {"podControllers": {"controllers": []}, "validatingAdmissionPolicy": {"enabled": False}}
    assert spec["matchConstraints"]["resourceRules"][0]["resources"] == ["pods", "pods/ephemeralcontainers"]
    assert judge(files, a_pod(securityContext={"privileged": True})) == {"no-privileged": "deny"}
    assert judge(files, a_pod(securityContext={"privileged": False})) == {}


def test_a_stage_is_a_second_policy_split_on_the_namespace_label() -> None:
    files = KyvernoVpolBackend().compile(program(staged_host_pid))
    outside, inside = yaml.safe_load_all(files["kyverno-vpol/no-host-pid.yaml"])
    assert (outside["metadata"]["name"], outside["spec"]["validationActions"]) == ("kupe-no-host-pid", ["Audit", "Warn"])
    assert (inside["metadata"]["name"], inside["spec"]["validationActions"]) == ("kupe-no-host-pid-enforced", ["Deny"])
    selector = {"key": "kubernetes.io/metadata.name", "values": ["payments"]}
    assert outside["spec"]["matchConstraints"]["namespaceSelector"] == {"matchExpressions": [{**selector, "operator": "NotIn"}]}
    assert inside["spec"]["matchConstraints"]["namespaceSelector"] == {"matchExpressions": [{**selector, "operator": "In"}]}
    assert outside["spec"]["variables"] == inside["spec"]["variables"]
    host_pid = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostPID": True, "containers": []}}
    assert judge(files, {**host_pid, "metadata": {"name": "p", "namespace": "payments"}}) == {"no-host-pid": "deny"}
    assert judge(files, {**host_pid, "metadata": {"name": "p", "namespace": "shop"}}) == {"no-host-pid": "audit"}


def test_a_waiver_is_a_full_policy_exception_that_expires_by_itself() -> None:
    waiver = exempt("legacy", rules=["no-privileged", "no-host-pid"], namespaces=["legacy"], labels={"app": "old"},
                    reason="vendor image", owner="team", expires="2027-01-31")
    files = KyvernoVpolBackend().compile(program(privileged, staged_host_pid, waiver))
    (exception,) = yaml.safe_load_all(files["kyverno-vpol/exceptions/legacy.yaml"])
    assert (exception["apiVersion"], exception["metadata"]["namespace"]) == ("policies.kyverno.io/v1", "kyverno")
    spec = exception["spec"]
    assert spec["policyRefs"] == [{"name": n, "kind": "ValidatingPolicy"}
                                  for n in ("kupe-no-privileged", "kupe-no-host-pid", "kupe-no-host-pid-enforced")]
    assert spec["expiresAt"] == "2027-02-01T00:00:00Z"  # in force through the expiry date
    assert "allowedValues" not in spec
    waived = a_pod("legacy", labels={"app": "old"}, securityContext={"privileged": True})
    assert judge(files, waived) == {}
    assert judge(files, {**waived, "metadata": {**waived["metadata"], "labels": {"app": "new"}}}) == {"no-privileged": "deny"}
    after = dt.datetime(2027, 2, 1, tzinfo=dt.timezone.utc)
    assert judge(files, waived, at=after) == {"no-privileged": "deny"}  # Kyverno stops honouring it, no recompile


def test_a_widening_is_read_from_allowed_values_per_container() -> None:
    widening = exempt("cni", rules=["caps"], namespaces=["net"], containers=["agent"], allow={"allowed": ["NET_ADMIN"]},
                      reason="programs routes", owner="net", expires="2027-01-31")
    everywhere = exempt("all-containers", rules=["caps"], namespaces=["tools"], allow={"allowed": ["SYS_PTRACE"]},
                        reason="debuggers", owner="dev", expires="2027-01-31")
    files = KyvernoVpolBackend().compile(program(capabilities, widening, everywhere))
    assert yaml.safe_load(files["kyverno-vpol/exceptions/cni.yaml"])["spec"]["allowedValues"] == ["agent:NET_ADMIN"]
    assert yaml.safe_load(files["kyverno-vpol/exceptions/all-containers.yaml"])["spec"]["allowedValues"] == ["*:SYS_PTRACE"]
    add = {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
    assert judge(files, a_pod("net", container_name="agent", **add)) == {}
    assert judge(files, a_pod("net", container_name="sidecar", **add)) == {"caps": "deny"}
    assert judge(files, a_pod("shop", container_name="agent", **add)) == {"caps": "deny"}
    assert judge(files, a_pod("tools", container_name="any", securityContext={"capabilities": {"add": ["SYS_PTRACE"]}})) == {}
    assert judge(files, a_pod("tools", securityContext={"capabilities": {"add": ["SYS_PTRACE", 7]}})) == {"caps": "deny"}


def test_a_container_waiver_is_a_constant_in_the_cel() -> None:
    waiver = exempt("debug", rules=["no-privileged"], namespaces=["ops"], containers=["debugger"],
                    reason="node debugging", owner="sre", expires="2027-01-31")
    files = KyvernoVpolBackend().compile(program(privileged, waiver))
    assert "kyverno-vpol/exceptions/debug.yaml" not in files
    assert judge(files, a_pod("ops", container_name="debugger", securityContext={"privileged": True})) == {}
    assert judge(files, a_pod("ops", container_name="app", securityContext={"privileged": True})) == {"no-privileged": "deny"}


def test_an_allowed_value_holding_the_separator_is_refused_with_the_exemption_line() -> None:
    widening = exempt("odd", rules=["caps"], namespaces=["net"], allow={"allowed": ["A:B"]}, reason="r", owner="o",
                      expires="2027-01-31")
    with pytest.raises(UnsupportedError) as error:
        KyvernoVpolBackend().compile(program(capabilities, widening))
    assert str(error.value).startswith(f"{widening.loc}: rule 'caps': backend 'kyverno-vpol'")
    assert "an allowed value holding ':'" in str(error.value)


def test_a_rule_with_two_list_parameters_cannot_be_widened_through_allowed_values() -> None:
    def two(ps: PolicySet) -> None:
        ps.rule("two", Required, title="t", rationale="r", fix="f", params={"a": ["x"], "b": ["y"]},
                check=[containers().field("f").one_of(param("a")), containers().field("g").one_of(param("b"))])
    widening = exempt("w", rules=["two"], namespaces=["n"], allow={"a": ["z"]}, reason="r", owner="o", expires="2027-01-31")
    with pytest.raises(UnsupportedError, match="cannot say which of several list parameters"):
        KyvernoVpolBackend().compile(program(two, widening))


def test_parse_back_validates_strictly_against_kyverno_crds_and_checks_references() -> None:
    files = KyvernoVpolBackend().compile(program(privileged))
    (policy,) = yaml.safe_load_all(files["kyverno-vpol/no-privileged.yaml"])
    policy["spec"]["validationActionz"] = ["Deny"]
    with pytest.raises(ArtifactError, match="validationActionz"):
        parse_back({**files, "kyverno-vpol/no-privileged.yaml": yaml.safe_dump(policy)})
    policy["spec"].pop("validationActionz")
    policy["spec"]["validations"][0]["expression"] = "variables.podSpec.("
    with pytest.raises(ArtifactError, match="CEL does not compile"):
        parse_back({**files, "kyverno-vpol/no-privileged.yaml": yaml.safe_dump(policy)})
    dangling = {"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
                "metadata": {"name": "x", "namespace": "kyverno"},
                "spec": {"policyRefs": [{"name": "kupe-gone", "kind": "ValidatingPolicy"}]}}
    kustomization = files["kyverno-vpol/kustomization.yaml"].replace('- "no-privileged.yaml"', '- "no-privileged.yaml"\n- "x.yaml"')
    with pytest.raises(ArtifactError, match="policyRefs name no generated ValidatingPolicy"):
        parse_back({**files, "kyverno-vpol/x.yaml": yaml.safe_dump(dangling), "kyverno-vpol/kustomization.yaml": kustomization})


def test_the_committed_output_validates_and_holds_every_exemption_in_force() -> None:
    out = Path(__file__).resolve().parent.parent / "out"
    files = {p.relative_to(out).as_posix(): p.read_text() for p in (out / "kyverno-vpol").rglob("*.yaml")}
    parse_back(files)
    assert {p.rsplit("/", 1)[1] for p in files if "/exceptions/" in p} == {
        "system-namespaces.yaml", "node-exporter-host-namespaces.yaml", "cilium-agent-net-admin.yaml",
        "vault-agent-localhost-seccomp.yaml", "legacy-billing-root.yaml"}


def test_a_rule_named_like_another_rules_stage_policy_is_refused() -> None:
    def clash(ps: PolicySet) -> None:
        ps.rule("no-host-pid-enforced", Required, title="t", rationale="r", fix="f", check=pod().field("hostIPC").not_equals(True))
    with pytest.raises(ArtifactError, match="a second ValidatingPolicy named kupe-no-host-pid-enforced"):
        KyvernoVpolBackend().compile(program(staged_host_pid, clash))
