"""The ValidatingPolicy emulator, one Kyverno behaviour per test (Kyverno 1.19 source, pkg/cel/policies/vpol):
autogen, PolicyExceptions (references, expiry, match conditions, full and partial), results."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import yaml

from conformance.engines.kyverno_vpol import autogen_specs, controllers, evaluate

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.timezone.utc)
PODS = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}


def policy(*validations: str, rules: list[dict] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "p"},
            "spec": {"matchConstraints": {"resourceRules": rules or [PODS]},
                     "validations": [{"expression": v} for v in validations], **spec}}


def exception(name: str = "e", *conditions: str, kind: str = "ValidatingPolicy", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException", "metadata": {"name": name, "namespace": "kyverno"},
            "spec": {"policyRefs": [{"name": "p", "kind": kind}],
                     "matchConditions": [{"name": f"c{i}", "expression": c} for i, c in enumerate(conditions)], **spec}}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
       "spec": {"hostPID": True, "containers": [{"name": "app"}]}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
              "spec": {"template": {"metadata": {"labels": {"tier": "web"}}, "spec": POD["spec"]}}}
CRONJOB = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "web", "namespace": "apps"},
           "spec": {"jobTemplate": {"spec": {"template": {"spec": POD["spec"]}}}}}
NO_HOST_PID = "!object.spec.?hostPID.orValue(false)"


def status(p: dict[str, Any], obj: dict[str, Any] = POD, **kwargs: Any) -> str:
    return evaluate(p, obj, now=NOW, **kwargs).status


# --- autogen ------------------------------------------------------------------------------------


def test_autogen_extends_a_v1_pod_policy_to_every_controller_by_rewriting_the_cel() -> None:
    p = policy(NO_HOST_PID)
    assert controllers(p) == ("daemonsets", "deployments", "replicasets", "statefulsets", "jobs", "cronjobs")
    assert [status(p, o) for o in (POD, DEPLOYMENT, CRONJOB)] == ["fail", "fail", "fail"]
    defaults, cronjobs = autogen_specs(p)[1:]
    assert defaults["validations"][0]["expression"] == "!object.spec.template.spec.?hostPID.orValue(false)"
    assert cronjobs["validations"][0]["expression"] == "!object.spec.jobTemplate.spec.template.spec.?hostPID.orValue(false)"
    assert [r["apiGroups"] for r in defaults["matchConstraints"]["resourceRules"]] == [["apps"], ["batch"]]


def test_metadata_is_the_pod_templates_and_an_optional_selection_is_left_alone() -> None:
    p = policy("object.metadata.?labels.orValue({}).?tier.orValue('') == 'web'")
    assert status(p, DEPLOYMENT) == "pass"  # read from the pod template
    q = policy("object.?spec.?template.hasValue()")  # `object.?spec` is not rewritten: the Deployment's own spec
    assert status(q, DEPLOYMENT) == "pass" and status(q, POD) == "fail"


@pytest.mark.parametrize(("spec", "rules", "expected"), [
    ({"autogen": {"podControllers": {"controllers": []}}}, None, ()),  # [] switches autogen off
    ({"autogen": {"podControllers": {"controllers": ["deployments"]}}}, None, ("deployments",)),
    ({}, [PODS, {**PODS, "resources": ["pods/ephemeralcontainers"]}], ()),  # only a policy of v1 pods alone
    ({}, [{**PODS, "apiVersions": ["*"]}], ()),
    ({"matchConstraints": {"resourceRules": [PODS], "objectSelector": {"matchLabels": {"a": "b"}}}}, None, ()),
])
def test_autogen_applies_only_to_a_policy_of_v1_pods_alone(spec: dict, rules: list | None, expected: tuple) -> None:
    p = policy(NO_HOST_PID, rules=rules)
    p["spec"].update(spec)
    assert controllers(p) == expected
    assert status(p, DEPLOYMENT) == ("fail" if expected else "skip")


# --- exceptions ---------------------------------------------------------------------------------


def test_a_matching_exception_without_allowed_values_skips_the_policy() -> None:
    p = policy(NO_HOST_PID)
    result = evaluate(p, POD, now=NOW, exceptions=[exception("e", "request.namespace == 'apps'")])
    assert (result.status, result.exceptions) == ("skip", ("kyverno/e",))
    assert status(p, exceptions=[exception("e", "request.namespace == 'other'")]) == "fail"
    assert status(p, exceptions=[exception("e", kind="NamespacedValidatingPolicy")]) == "fail"  # policyRefs name the kind


def test_an_expired_exception_no_longer_applies_except_in_background_scans_and_the_cli() -> None:
    p = policy(NO_HOST_PID)
    expired = exception("e", expiresAt="2026-11-29T00:00:00Z")
    assert status(p, exceptions=[expired]) == "fail"
    assert status(p, exceptions=[exception("e", expiresAt="2026-11-30T00:00:00Z")]) == "skip"
    assert status(p, exceptions=[expired], honour_expiry=False) == "skip"  # kyverno#17473


def test_partial_exceptions_pool_their_allowed_values_and_a_full_one_wins() -> None:
    p = policy("object.metadata.name in exceptions.allowedValues")
    assert status(p) == "fail"  # no exception: an empty list, not an error
    partial = [exception("a", allowedValues=["web"]), exception("b", allowedValues=["api"])]
    assert status(p, exceptions=partial) == "pass"
    assert status(policy("exceptions.allowedValues == ['web', 'api']"), exceptions=partial) == "pass"
    assert status(policy("false"), exceptions=[*partial, exception("full")]) == "skip"  # Kyverno 1.19


def test_an_exception_condition_error_follows_the_policys_failure_policy() -> None:
    broken = exception("e", "object.metadata.missing == 1")
    assert status(policy("true"), exceptions=[broken]) == "error"
    assert status(policy("true", failurePolicy="Ignore"), exceptions=[broken]) == "pass"


# --- results ------------------------------------------------------------------------------------


def test_results_are_kyvernos_skip_fail_error_pass() -> None:
    assert status(policy("true"), {**POD, "kind": "Service", "apiVersion": "v1"}) == "skip"
    assert status(policy("true", matchConditions=[{"name": "never", "expression": "false"}])) == "skip"
    assert status(policy("object.spec.missing")) == "error"
    assert status(policy("true", "false")) == "fail"
    result = evaluate(policy("true", validationActions=["Audit"]), POD, now=NOW)
    assert (result.status, result.denied) == ("pass", False)
    assert evaluate(policy("false"), POD, now=NOW).denied  # validationActions default to [Deny]


# --- the CEL the upstream policies call ----------------------------------------------------------


def test_the_upstream_vpol_policies_call_no_kyverno_library() -> None:
    """Kyverno adds libraries (http, resource, image, globalcontext, ...) to its CEL; the
    pod-security-vpol policies call only standard CEL and optionals, so the harness needs none of
    them (a call to one would not compile here: an `error`, never a pass)."""
    from conformance.upstream import SHARED

    folder = SHARED / "kyverno-policies" / "pod-security-vpol"
    if not folder.is_dir():
        pytest.skip(f"the shared upstream fixtures are not at {SHARED} (they live beside the repository)")
    calls: set[str] = set()
    for path in folder.rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ValidatingPolicy" and "spec" in document:
                calls |= set(re.findall(r"([A-Za-z_][\w.]*)\(", json.dumps(document["spec"])))
    assert {call.rsplit(".", 1)[-1] for call in calls} == {"all", "exists", "exists_one", "has", "orValue", "size"}
