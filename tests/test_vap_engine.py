"""Unit tests of the ValidatingAdmissionPolicy emulator: matching, expressions, failurePolicy,
validationActions, params and the request bindings, each as the API server behaves."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.engines.vap import Decision, admit, resource_for_kind, selector_matches


def policy(validations: list[dict] | None = None, *, rules: list[dict] | None = None, **spec: Any) -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "matchConstraints": {"resourceRules": rules or [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": ["pods"]}]},
            "validations": validations if validations is not None else [{"expression": "true"}],
            **spec,
        },
    }


def binding(actions: tuple[str, ...] = ("Deny",), **spec: Any) -> dict:
    return {"metadata": {"name": "b"},
            "spec": {"policyName": "p", "validationActions": list(actions), **spec}}


def pod(name: str = "x", labels: dict | None = None, namespace: str | None = "apps", **spec: Any) -> dict:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def deployment(api_version: str = "apps/v1") -> dict:
    return {"apiVersion": api_version, "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "apps"}, "spec": {"replicas": 3}}


def rule(groups: list[str], resources: list[str], *, versions: list[str] | None = None,
         operations: list[str] | None = None, **extra: Any) -> dict:
    return {"apiGroups": groups, "apiVersions": versions or ["*"], "operations": operations or ["*"],
            "resources": resources, **extra}


def matched(p: dict, obj: dict | None, b: dict | None = None, **kw: Any) -> bool:
    return admit(p, b or binding(), obj, **kw).matched


FAIL_ALWAYS = [{"expression": "false", "message": "no"}]


# --- kinds --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("Pod", ("", "pods", True)),
    ("Deployment", ("apps", "deployments", True)),
    ("DaemonSet", ("apps", "daemonsets", True)),
    ("StatefulSet", ("apps", "statefulsets", True)),
    ("ReplicaSet", ("apps", "replicasets", True)),
    ("Job", ("batch", "jobs", True)),
    ("CronJob", ("batch", "cronjobs", True)),
    ("ReplicationController", ("", "replicationcontrollers", True)),
    ("Namespace", ("", "namespaces", False)),
    ("ConfigMap", ("", "configmaps", True)),
    ("Service", ("", "services", True)),
    ("Ingress", ("networking.k8s.io", "ingresses", True)),
    ("NetworkPolicy", ("networking.k8s.io", "networkpolicies", True)),
    ("ClusterRole", ("rbac.authorization.k8s.io", "clusterroles", False)),
    ("Widget", ("", "widgets", True)),
    ("Gateway", ("", "gateways", True)),
    ("Policy", ("", "policies", True)),
])
def test_kind_to_resource(kind: str, expected: tuple[str, str, bool]) -> None:
    assert resource_for_kind(kind) == expected


# --- resource rules -------------------------------------------------------------------------

def test_resource_rules_match_group_version_resource_and_operation() -> None:
    p = policy(rules=[rule(["apps"], ["deployments"], versions=["v1"], operations=["CREATE"])])
    assert matched(p, deployment())
    assert not matched(p, deployment(), operation="UPDATE", old_object=deployment())
    assert not matched(p, pod())
    assert not matched(policy(rules=[rule([""], ["deployments"])]), deployment())


def test_wildcards_and_subresources() -> None:
    status = {"group": "", "version": "v1", "kind": "Pod"}
    assert matched(policy(rules=[rule(["*"], ["*"])]), pod())
    assert not matched(policy(rules=[rule(["*"], ["*"])]), pod(), kind=status, subresource="status")
    assert matched(policy(rules=[rule(["*"], ["*/*"])]), pod(), kind=status, subresource="status")
    assert matched(policy(rules=[rule([""], ["pods/*"])]), pod())
    assert matched(policy(rules=[rule([""], ["pods/status"])]), pod(), kind=status, subresource="status")
    assert not matched(policy(rules=[rule([""], ["pods"])]), pod(), kind=status, subresource="status")


def test_scope_and_resource_names() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    cluster = policy(rules=[rule([""], ["*"], scope="Cluster")])
    namespaced = policy(rules=[rule([""], ["*"], scope="Namespaced")])
    assert matched(namespaced, pod()) and not matched(cluster, pod())
    assert matched(cluster, ns) and not matched(namespaced, ns)  # a Namespace is cluster-scoped
    named = policy(rules=[rule([""], ["pods"], resourceNames=["x"])])
    assert matched(named, pod("x")) and not matched(named, pod("y"))


def test_exclude_resource_rules() -> None:
    p = policy(rules=[rule(["*"], ["*"])])
    p["spec"]["matchConstraints"]["excludeResourceRules"] = [rule([""], ["pods"], resourceNames=["skip"])]
    assert matched(p, pod("keep")) and not matched(p, pod("skip"))


def test_match_policy_equivalent_and_exact() -> None:
    """Equivalent: another version the API server still serves; one it no longer serves matches
    nothing (measured with the real plugin, k8s.io/apiserver v0.34.1)."""
    hpa_v1 = rule(["autoscaling"], ["horizontalpodautoscalers"], versions=["v1"])
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "apps"}}
    equivalent, exact = policy(rules=[hpa_v1]), policy(rules=[hpa_v1])
    exact["spec"]["matchConstraints"]["matchPolicy"] = "Exact"
    assert matched(equivalent, hpa) and not matched(exact, hpa)
    assert matched(exact, dict(hpa, apiVersion="autoscaling/v1"))
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "apps"}}
    assert matched(policy(rules=[rule(["events.k8s.io"], ["events"], versions=["v1"])]), event), "stored together"
    for group, version in (("apps", "v1beta1"), ("apps", "v1beta2"), ("extensions", "v1beta1")):
        assert not matched(policy(rules=[rule([group], ["deployments"], versions=[version])]), deployment()), \
            f"{group}/{version} is no longer served"


# --- selectors -------------------------------------------------------------------------------

@pytest.mark.parametrize("selector, labels, expected", [
    (None, {}, True),
    ({}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
])
def test_label_selectors(selector: dict | None, labels: dict, expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_namespace_selector() -> None:
    p = policy()
    p["spec"]["matchConstraints"]["namespaceSelector"] = {"matchLabels": {"env": "prod"}}
    prod = {"metadata": {"name": "apps", "labels": {"env": "prod"}}}
    assert matched(p, pod(), namespace=prod)
    assert not matched(p, pod(), namespace={"metadata": {"name": "apps"}})
    assert not matched(p, pod())  # unknown namespace: no labels
    # the API server labels every namespace with its name
    p["spec"]["matchConstraints"]["namespaceSelector"] = {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]}
    assert matched(p, pod(namespace="apps")) and not matched(p, pod(namespace="kube-system"))


def test_namespace_selector_for_cluster_scoped_and_namespace_requests() -> None:
    match = {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "resourceRules": [rule([""], ["*"])]}
    p = policy()
    p["spec"]["matchConstraints"] = match
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}
    assert matched(p, node)  # cluster-scoped resources are never excluded by namespaceSelector
    prod_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": {"env": "prod"}}}
    dev_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": {"env": "dev"}}}
    assert matched(p, prod_ns) and not matched(p, dev_ns)  # a Namespace is judged by its own labels


def test_object_selector_uses_object_or_old_object() -> None:
    p = policy()
    p["spec"]["matchConstraints"]["objectSelector"] = {"matchLabels": {"app": "web"}}
    assert matched(p, pod(labels={"app": "web"}))
    assert not matched(p, pod(labels={"app": "db"}))
    assert matched(p, pod(labels={"app": "db"}), operation="UPDATE", old_object=pod(labels={"app": "web"}))
    # a CREATE has no old object even if one is passed
    assert not matched(p, pod(labels={"app": "db"}), old_object=pod(labels={"app": "web"}))


# --- bindings ----------------------------------------------------------------------------------

def test_binding_must_name_the_policy_and_may_narrow_it() -> None:
    p = policy(FAIL_ALWAYS)
    other = binding()
    other["spec"]["policyName"] = "q"
    assert admit(p, other, pod()) == Decision(matched=False)
    narrowed = binding(matchResources={"objectSelector": {"matchLabels": {"app": "web"}}})
    assert admit(p, narrowed, pod(labels={"app": "web"})).denied
    assert not admit(p, narrowed, pod()).matched
    by_ns = binding(matchResources={"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    assert not admit(p, by_ns, pod()).selected


@pytest.mark.parametrize("actions, denied, warned", [
    (("Deny",), True, False),
    (("Warn",), False, True),
    (("Audit",), False, False),
    (("Warn", "Audit"), False, True),
])
def test_validation_actions(actions: tuple[str, ...], denied: bool, warned: bool) -> None:
    decision = admit(policy(FAIL_ALWAYS), binding(actions), pod())
    assert decision.matched and len(decision.results) == 1
    assert decision.results[0].actions == actions
    assert decision.denied is denied
    assert bool(decision.warnings) is warned


# --- validations ---------------------------------------------------------------------------------

def test_validation_messages_and_reasons() -> None:
    validations = [
        {"expression": "object.spec.containers.size() > 5"},
        {"expression": "false", "message": "static", "reason": "Forbidden"},
        {"expression": "false", "message": "fallback", "messageExpression": "'name ' + object.metadata.name"},
        {"expression": "false", "message": "fallback", "messageExpression": "object.missing"},
        {"expression": "false", "message": "fallback", "messageExpression": "'  '"},
        {"expression": "true", "message": "never"},
        # trimmed, then refused when empty, multi-line or longer than 5 KiB (validating/validator.go)
        {"expression": "false", "message": "  spaced  ", "messageExpression": "'  padded  '"},
        {"expression": "false", "message": "  spaced  ", "messageExpression": "'two\\nlines'"},
        {"expression": "false", "messageExpression": "'trailing\\n'"},
        {"expression": "false", "message": "short", "messageExpression": "'" + "x" * 5121 + "'"},
    ]
    decision = admit(policy(validations), binding(), pod("web"))
    assert [(r.message, r.reason) for r in decision.results] == [
        ("failed expression: object.spec.containers.size() > 5", "Invalid"),
        ("static", "Forbidden"),
        ("name web", "Invalid"),
        ("fallback", "Invalid"),
        ("fallback", "Invalid"),
        ("padded", "Invalid"),
        ("spaced", "Invalid"),
        ("trailing", "Invalid"),
        ("short", "Invalid"),
    ]
    assert decision.denied and decision.error is None


def test_a_non_boolean_result_fails() -> None:
    assert admit(policy([{"expression": "object.spec.containers"}]), binding(), pod()).denied


def test_null_fields_are_unset() -> None:
    p = policy([{"expression": "!has(object.spec.hostNetwork)"}])
    assert not admit(p, binding(), pod(hostNetwork=None)).denied
    assert admit(p, binding(), pod(hostNetwork=True)).denied


# --- failurePolicy -----------------------------------------------------------------------------

def test_evaluation_error_with_fail_follows_validation_actions() -> None:
    p = policy([{"expression": "object.spec.replicas > 1"}])
    decision = admit(p, binding(), pod())
    assert decision.denied and decision.results[0].evaluation_error
    assert decision.error and "resulted in error" in decision.error
    warned = admit(p, binding(("Warn",)), pod())
    assert not warned.denied and warned.warnings and warned.error


def test_evaluation_error_with_ignore_admits() -> None:
    decision = admit(policy([{"expression": "object.spec.replicas > 1"}], failurePolicy="Ignore"),
                     binding(), pod())
    assert decision.matched and not decision.denied and decision.error is None
    assert decision.results == () and len(decision.ignored_errors) == 1


def test_compile_errors_are_evaluation_errors() -> None:
    for expression in ("object.spec.(", "quantity('1').isInteger()", "params.x == 1",
                       "authorizer.group('').resource('pods').check('get').allowed()"):
        decision = admit(policy([{"expression": expression}]), binding(), pod())
        assert decision.denied and decision.results[0].evaluation_error, expression


# --- matchConditions ---------------------------------------------------------------------------

def conditions(*expressions: str) -> list[dict]:
    return [{"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)]


def test_match_conditions_all_must_hold() -> None:
    p = policy(FAIL_ALWAYS, matchConditions=conditions("true", "object.metadata.name == 'x'"))
    assert admit(p, binding(), pod("x")).denied
    skipped = admit(p, binding(), pod("y"))
    assert skipped.selected and not skipped.matched and not skipped.results


def test_match_condition_false_wins_over_error() -> None:
    p = policy(FAIL_ALWAYS, matchConditions=conditions("object.missing", "false"))
    assert admit(p, binding(), pod()).matched is False


def test_match_condition_error_follows_failure_policy() -> None:
    failing = policy([{"expression": "true"}], matchConditions=conditions("object.missing"))
    decision = admit(failing, binding(), pod())
    assert decision.matched and decision.denied and decision.results[0].evaluation_error
    ignoring = policy(FAIL_ALWAYS, matchConditions=conditions("object.missing"), failurePolicy="Ignore")
    decision = admit(ignoring, binding(), pod())
    assert not decision.matched and not decision.denied and decision.ignored_errors


# --- variables ---------------------------------------------------------------------------------

def test_variables_are_ordered_and_lazy() -> None:
    p = policy(
        [{"expression": "variables.count == 1 && variables.double == 2"},
         {"expression": "true || variables.broken"},
         {"expression": "variables.broken"}],
        variables=[{"name": "count", "expression": "object.spec.containers.size()"},
                   {"name": "double", "expression": "variables.count * 2"},
                   {"name": "broken", "expression": "object.spec.missing"}],
    )
    decision = admit(p, binding(), pod())
    assert len(decision.results) == 1  # only the validation that uses the broken variable
    assert "composited variable 'broken'" in decision.results[0].message


def test_variables_are_visible_to_match_conditions_and_messages() -> None:
    p = policy([{"expression": "false", "messageExpression": "'image ' + variables.image"}],
               variables=[{"name": "image", "expression": "object.spec.containers[0].image"}],
               matchConditions=conditions("variables.image.startsWith('nginx')"))
    assert admit(p, binding(), pod()).results[0].message == "image nginx"


# --- auditAnnotations ----------------------------------------------------------------------------

def test_audit_annotations() -> None:
    """A value is trimmed, and a blank one left out like null (validating/validator.go)."""
    p = policy(auditAnnotations=[{"key": "image", "valueExpression": "' ' + object.spec.containers[0].image + ' '"},
                                 {"key": "none", "valueExpression": "null"},
                                 {"key": "blank", "valueExpression": "'  '"}])
    assert admit(p, binding(), pod()).audit_annotations == (("p/image", "nginx"),)


def test_audit_annotation_errors_deny_under_fail_whatever_the_actions() -> None:
    p = policy(auditAnnotations=[{"key": "k", "valueExpression": "object.missing"}])
    assert admit(p, binding(("Audit",)), pod()).denied
    p["spec"]["failurePolicy"] = "Ignore"
    decision = admit(p, binding(("Audit",)), pod())
    assert not decision.denied and decision.ignored_errors


# --- params --------------------------------------------------------------------------------------

PARAM_KIND = {"apiVersion": "v1", "kind": "ConfigMap"}


def test_params_are_bound() -> None:
    p = policy([{"expression": "object.metadata.name in params.data.allowed.split(',')"}], paramKind=PARAM_KIND)
    b = binding(paramRef={"name": "allowed", "parameterNotFoundAction": "Deny"})
    params = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "allowed"}, "data": {"allowed": "a,b"}}
    assert not admit(p, b, pod("a"), params=params).denied
    assert admit(p, b, pod("c"), params=params).denied
    # a selector may find several: each is evaluated
    other = {**params, "data": {"allowed": "c"}}
    assert len(admit(p, b, pod("a"), params=[params, other]).results) == 1


def test_missing_params() -> None:
    p = policy(FAIL_ALWAYS, paramKind=PARAM_KIND)
    deny = admit(p, binding(paramRef={"name": "x", "parameterNotFoundAction": "Deny"}), pod())
    assert deny.denied and deny.error and "no params" in deny.error
    warn_only = admit(p, binding(("Warn",), paramRef={"name": "x", "parameterNotFoundAction": "Deny"}), pod())
    assert warn_only.denied  # a configuration error is not subject to validationActions
    allow = admit(p, binding(paramRef={"name": "x", "parameterNotFoundAction": "Allow"}), pod())
    assert allow.matched and not allow.denied and not allow.results
    unbound = policy([{"expression": "params == null"}], paramKind=PARAM_KIND)
    decision = admit(unbound, binding(), pod())
    assert decision.matched and not decision.results, "a binding without paramRef runs the policy with params null"


# --- the request as CEL sees it ------------------------------------------------------------------

def test_request_object_and_old_object_bindings() -> None:
    checks = [
        "request.operation == 'CREATE'",
        "request.kind == {'group': '', 'version': 'v1', 'kind': 'Pod'}",
        "request.resource.resource == 'pods' && !has(request.subResource)",
        "request.name == 'x' && request.namespace == 'apps'",
        "request.userInfo.username == 'alice'",
        "oldObject == null",
        "namespaceObject.metadata.name == 'apps'",
        "namespaceObject.metadata.labels['kubernetes.io/metadata.name'] == 'apps'",
    ]
    p = policy([{"expression": c, "message": c} for c in checks])
    decision = admit(p, binding(), pod(), user_info={"username": "alice", "groups": []})
    assert [r.message for r in decision.results] == []


def test_delete_binds_a_null_object() -> None:
    p = policy([{"expression": "object == null && oldObject.metadata.name == 'x' && request.operation == 'DELETE'"}],
               rules=[rule([""], ["pods"], operations=["DELETE"])])
    decision = admit(p, binding(), pod(), operation="DELETE", old_object=pod())
    assert decision.matched and not decision.results


def test_namespace_defaults_and_cluster_scope() -> None:
    p = policy([{"expression": "request.namespace == 'default' && namespaceObject.metadata.name == 'default'"}])
    assert not admit(p, binding(), pod(namespace=None)).results
    cluster = policy([{"expression": "namespaceObject == null && !has(request.namespace)"}],
                     rules=[rule([""], ["nodes"])])
    assert not admit(cluster, binding(), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}).results


def test_a_namespace_request_names_itself_and_has_no_namespace_object() -> None:
    """The request namespace comes from the URL: PUT and DELETE /api/v1/namespaces/team carry
    `team`, POST /api/v1/namespaces none (endpoints/request/requestinfo.go)."""
    p = policy([{"expression": "(request.operation == 'CREATE' ? !has(request.namespace) : request.namespace == 'team')"
                               " && namespaceObject == null"}],
               rules=[rule([""], ["namespaces"])])
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    for operation in ("CREATE", "UPDATE", "DELETE"):
        decision = admit(p, binding(), ns, operation=operation, old_object=ns)
        assert decision.matched and not decision.results, operation


def test_match_conditions_see_a_null_namespace_object() -> None:
    """matchconditions/matcher.go hands the filter no namespace: matchConditions, and the variables
    they read, see `namespaceObject` null; validations see the Namespace."""
    p = policy([{"expression": "variables.ns == 'apps'"}],
               variables=[{"name": "ns", "expression": "namespaceObject == null ? 'none' : namespaceObject.metadata.name"}],
               matchConditions=conditions("namespaceObject == null", "variables.ns == 'none'"))
    decision = admit(p, binding(), pod())
    assert decision.matched and not decision.results
    reading = policy(FAIL_ALWAYS, matchConditions=conditions("namespaceObject.metadata.name == 'apps'"))
    assert admit(reading, binding(), pod()).error, "no such key: the real plugin's error, under Fail"
