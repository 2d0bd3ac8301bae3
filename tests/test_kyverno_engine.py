"""Focused semantics of the Kyverno validation emulator."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.engines.kyverno import evaluate
from conformance.engines.kyverno.anchors import match_pattern
from conformance.engines.kyverno.autogen import compute_rules
from conformance.engines.kyverno.operators import evaluate_operator
from conformance.engines.kyverno.pattern import validate_value
from conformance.engines.kyverno.variables import substitute


def pod(name: str = "p", namespace: str = "default", labels: dict | None = None, **spec: Any) -> dict:
    spec.setdefault("containers", [{"name": "c", "image": "nginx:1.25"}])
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def policy(*rules: dict, annotations: dict | None = None, **spec: Any) -> dict:
    metadata: dict[str, Any] = {"name": "pol"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": metadata,
            "spec": {**spec, "rules": list(rules)}}


def rule(validate: dict, name: str = "r", kinds: tuple[str, ...] = ("Pod",), **extra: Any) -> dict:
    return {"name": name, "match": {"any": [{"resources": {"kinds": list(kinds)}}]}, "validate": validate, **extra}


def verdicts(pol: dict, resource: dict, **kwargs: Any) -> dict[str, str]:
    return {r.rule: r.result for r in evaluate(pol, resource, **kwargs)}


# --- leaf pattern values -------------------------------------------------------

@pytest.mark.parametrize("value,pattern,expected", [
    ("3", "+2-+4", True), ("-15", "-10--8", False), ("98Mi", "100Mi!-1024Mi", True),
    ("512Mi", "100Mi!-1024Mi", False), (150, "100-200 | 500-600", True), (300, "100-200 | 500-600", False),
    ("nginx:latest", "!*:latest", False), ("nginx:1.2", "*:* & !*:latest", True),
    ("2Gi", ">1Gi", True), ("500m", "<1", True), ("24h", ">=8h", True), ("", "?*", False), ("x", "?*", True),
    (False, "false", True), ("false", False, False), (False, False, True), (0, None, True), ("a", None, False),
    (80, 80.0, True), ("80", 80, True), (None, "*", False), ("ab", "a?", True), ("abc", "a?", False),
])
def test_leaf_pattern_operators_and_types(value: Any, pattern: Any, expected: bool) -> None:
    assert validate_value(value, pattern) is expected


# --- anchors -------------------------------------------------------------------

def test_conditional_anchor_skips_when_absent_or_mismatched() -> None:
    pattern = {"spec": {"(hostNetwork)": True, "containers": [{"name": "c"}]}}
    assert match_pattern({"spec": {"containers": [{"name": "c"}]}}, pattern).status == "skip"
    assert match_pattern({"spec": {"hostNetwork": False, "containers": []}}, pattern).status == "skip"
    assert match_pattern({"spec": {"hostNetwork": True, "containers": [{"name": "x"}]}}, pattern).status == "fail"


def test_conditional_anchor_in_list_checks_only_selected_elements() -> None:
    pattern = {"containers": [{"(name)": "app*", "image": "!*:latest"}]}
    mixed = {"containers": [{"name": "side", "image": "x:latest"}, {"name": "app1", "image": "x:1"}]}
    assert match_pattern(mixed, pattern).status == "pass"
    bad = {"containers": [{"name": "app1", "image": "x:latest"}]}
    assert match_pattern(bad, pattern).status == "fail"
    none = {"containers": [{"name": "side", "image": "x:latest"}]}
    assert match_pattern(none, pattern).status == "skip"


def test_equality_negation_global_and_existence_anchors() -> None:
    assert match_pattern({"spec": {}}, {"spec": {"=(hostPID)": "false"}}).status == "pass"
    assert match_pattern({"spec": {"hostPID": True}}, {"spec": {"=(hostPID)": "false"}}).status == "fail"
    assert match_pattern({"v": [{"hostPath": {}}]}, {"v": [{"X(hostPath)": "null"}]}).status == "fail"
    assert match_pattern({"v": [{"emptyDir": {}}]}, {"v": [{"X(hostPath)": "null"}]}).status == "pass"
    global_pattern = {"spec": {"<(type)": "LoadBalancer", "ranges": "*"}}
    assert match_pattern({"spec": {"type": "ClusterIP"}}, global_pattern).status == "skip"
    assert match_pattern({"spec": {"type": "LoadBalancer"}}, global_pattern).status == "fail"
    existence = {"^(containers)": [{"image": "trusted/*"}]}
    assert match_pattern({"containers": [{"image": "a"}, {"image": "trusted/x"}]}, existence).status == "pass"
    assert match_pattern({"containers": [{"image": "a"}]}, existence).status == "fail"


def test_wildcard_metadata_keys_expand_to_matching_annotations() -> None:
    pattern = {"metadata": {"=(annotations)": {"=(apparmor/*)": "runtime/default | localhost/*"}}}
    ok = {"metadata": {"annotations": {"apparmor/c": "localhost/p"}}}
    bad = {"metadata": {"annotations": {"apparmor/c": "unconfined"}}}
    assert match_pattern(ok, pattern).status == "pass"
    assert match_pattern(bad, pattern).status == "fail"
    assert match_pattern({"metadata": {}}, pattern).status == "pass"


# --- conditions ------------------------------------------------------------------

@pytest.mark.parametrize("operator,key,value,expected", [
    ("Equals", "abc", "a*", True), ("Equals", "1Gi", "1024Mi", True), ("Equals", "2", 2, False),
    ("Equals", 2, "2", True), ("NotEquals", "300Mi", "", True), ("NotEquals", None, "x", False),
    ("AnyIn", ["a", "b"], ["b*"], True), ("AllIn", ["a", "b"], ["a"], False), ("AllIn", [], ["a"], True),
    ("AnyNotIn", [80, 0], "5000-6000", True), ("AnyNotIn", [5500], "5000-6000", False),
    ("AllNotIn", ["x", "y"], ["y"], False), ("AllNotIn", ["x"], ["y"], True),
    ("AnyIn", "app", '["app","web"]', True), ("NotIn", ["c"], ["a", "b"], True), ("In", "a", ["a"], True),
    ("GreaterThan", "24h", "8h", True), ("LessThan", "1Gi", "500Mi", False), ("GreaterThan", 3, "2", True),
    ("GreaterThanOrEquals", "1.5", 1.5, True), ("DurationLessThan", "30m", "1h", True),
])
def test_condition_operators(operator: str, key: Any, value: Any, expected: bool) -> None:
    assert evaluate_operator(operator, key, value) is expected


def test_deny_conditions_and_preconditions() -> None:
    deny = rule({"deny": {"conditions": {"any": [
        {"key": "{{ request.object.metadata.labels.team || '' }}", "operator": "Equals", "value": ""}]}}},
        preconditions=[{"key": "{{ request.operation }}", "operator": "NotEquals", "value": "DELETE"}])
    assert verdicts(policy(deny), pod()) == {"r": "fail"}
    assert verdicts(policy(deny), pod(labels={"team": "a"})) == {"r": "pass"}
    assert verdicts(policy(deny), pod(), operation="DELETE") == {"r": "skip"}
    assert verdicts(policy(rule({"deny": {}})), pod()) == {"r": "fail"}


# --- variables -------------------------------------------------------------------

def test_variable_substitution_keeps_types_and_nests() -> None:
    context = {"request": {"object": {"metadata": {"labels": {"id": "1234"}}, "n": 3}}}
    assert substitute("{{ request.object.n }}", context) == 3
    assert substitute("n={{ request.object.n }}", context) == "n=3"
    assert substitute("{{ request.object.missing }}", context) is None
    nested = "{{ regex_match('^[0-9]{4}$', '{{ request.object.metadata.labels.id }}') }}"
    assert substitute(nested, context) is True
    assert substitute("\\{{ literal }}", context) == "{{ literal }}"
    assert substitute("{{ divide('300Mi', '100Mi') }}", context) == 3
    assert substitute("{{ split('a,b', ',') }}", context) == ["a", "b"]
    assert substitute("{{ parse_json('[1]') | length(@) }}", context) == 1
    assert substitute("{{ label_match(`{\"a\":\"b\"}`, `{\"a\":\"b\",\"c\":\"d\"}`) }}", context) is True
    assert substitute("{{ add('1Gi', '512Mi') }}", context) == "1536Mi"
    assert substitute("{{ to_upper('x') }}-{{ pattern_match('a*', 'abc') }}", context) == "X-true"


def test_values_and_context_variables() -> None:
    pol = policy(rule({"pattern": {"metadata": {"labels": {"env": "{{ dict.env }}"}}}},
                      context=[{"name": "dict", "variable": {"value": {"env": "{{ wanted }}"}}}]))
    assert verdicts(pol, pod(labels={"env": "prod"}), variables={"wanted": "prod"}) == {"r": "pass"}
    assert verdicts(pol, pod(labels={"env": "dev"}), rule_variables={"r": {"wanted": "prod"}}) == {"r": "fail"}


# --- foreach ---------------------------------------------------------------------

def test_foreach_element_scope_preconditions_and_nesting() -> None:
    each = rule({"foreach": [{"list": "request.object.spec.containers",
                              "preconditions": {"all": [{"key": "{{ element.name }}", "operator": "NotEquals",
                                                         "value": "skip-me"}]},
                              "pattern": {"image": "!*:latest"}}]})
    assert verdicts(policy(each), pod(containers=[{"name": "a", "image": "x:1"}])) == {"r": "pass"}
    assert verdicts(policy(each), pod(containers=[{"name": "a", "image": "x:latest"}])) == {"r": "fail"}
    assert verdicts(policy(each), pod(containers=[{"name": "skip-me", "image": "x:latest"}])) == {"r": "skip"}
    nested = rule({"foreach": [{"list": "request.object.spec.containers", "foreach": [
        {"list": "element.ports", "deny": {"conditions": [
            {"key": "{{ element.containerPort }}", "operator": "LessThan", "value": 1024}]}}]}]})
    ports = [{"name": "a", "image": "x", "ports": [{"containerPort": 8080}, {"containerPort": 80}]}]
    assert verdicts(policy(nested), pod(containers=ports)) == {"r": "fail"}
    scalar = rule({"foreach": [{"list": "request.object.spec.containers[].image", "elementScope": True,
                                "deny": {"conditions": [{"key": "{{ element }}", "operator": "Equals", "value": "x"}]}}]})
    assert verdicts(policy(scalar), pod()) == {"r": "error"}


# --- match / exclude ---------------------------------------------------------------

def test_match_kinds_names_namespaces_selectors_and_exclude() -> None:
    base = {"pattern": {"metadata": {"name": "?*"}}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "prod"}}
    assert verdicts(policy(rule(base, kinds=("apps/v1/Deployment",))), deploy) == {"r": "pass"}
    assert verdicts(policy(rule(base, kinds=("batch/*/Deployment",))), deploy) == {}
    scoped = {"name": "r", "validate": base, "match": {"any": [{"resources": {
        "kinds": ["Pod"], "names": ["web-*"], "namespaces": ["team-?"],
        "selector": {"matchLabels": {"tier": "*end"}}, "operations": ["CREATE"]}}]}}
    hit = pod("web-1", "team-a", labels={"tier": "frontend"})
    assert verdicts(policy(scoped), hit) == {"r": "pass"}
    assert verdicts(policy(scoped), hit, operation="UPDATE", old_resource=hit) == {}
    assert verdicts(policy(scoped), pod("web-1", "team-ab", labels={"tier": "frontend"})) == {}
    by_ns = {"name": "r", "validate": base, "match": {"any": [{"resources": {
        "kinds": ["Pod"], "namespaceSelector": {"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod"]}]}}}]}}
    assert verdicts(policy(by_ns), pod(), namespace_labels={"env": "prod"}) == {"r": "pass"}
    assert verdicts(policy(by_ns), pod(), namespace_labels={"env": "dev"}) == {}
    excluded = {**rule(base), "exclude": {"any": [{"resources": {"namespaces": ["kube-*"]}}]}}
    assert verdicts(policy(excluded), pod(namespace="kube-system")) == {}
    by_user = {"name": "r", "validate": base, "match": {"any": [{"resources": {"kinds": ["Pod"]},
                                                               "subjects": [{"kind": "User", "name": "alice"}]}]}}
    assert verdicts(policy(by_user), pod()) == {"r": "pass"}  # no user info: user criteria ignored
    assert verdicts(policy(by_user), pod(), user_info={"userInfo": {"username": "bob"}}) == {}


# --- autogen -----------------------------------------------------------------------

def test_autogen_rules_names_kinds_and_annotation() -> None:
    pol = policy(rule({"pattern": {"spec": {"=(hostPID)": "false"}}}, name="host"))
    names = [r["name"] for r in compute_rules(pol)]
    assert names == ["host", "autogen-host", "autogen-cronjob-host"]
    cron = compute_rules(pol)[2]
    assert cron["validate"]["pattern"] == {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"=(hostPID)": "false"}}}}}}
    only = policy(rule({"pattern": {}}, name="x"), annotations={"pod-policies.kyverno.io/autogen-controllers": "StatefulSet"})
    assert [r["match"]["any"][0]["resources"]["kinds"] for r in compute_rules(only)] == [["Pod"], ["StatefulSet"]]
    none = policy(rule({"pattern": {}}), annotations={"pod-policies.kyverno.io/autogen-controllers": "none"})
    assert len(compute_rules(none)) == 1
    selective = {**rule({"pattern": {}}), "match": {"any": [{"resources": {"kinds": ["Pod"], "names": ["a"]}}]}}
    assert len(compute_rules(policy(selective))) == 1
    deny = policy(rule({"deny": {"conditions": [{"key": "{{ request.object.spec.hostPID }}",
                                                 "operator": "Equals", "value": True}]}}, name="d"))
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "n"},
           "spec": {"template": {"spec": {"hostPID": True, "containers": []}}}}
    assert verdicts(deny, job) == {"autogen-d": "fail"}


# --- exceptions and actions -----------------------------------------------------------

def test_policy_exception_skips_rule_including_autogen_names() -> None:
    pol = policy(rule({"pattern": {"spec": {"=(hostIPC)": False}}}, name="ipc"))
    exception = {"apiVersion": "kyverno.io/v2", "kind": "PolicyException", "metadata": {"name": "e", "namespace": "x"},
                 "spec": {"exceptions": [{"policyName": "pol", "ruleNames": ["ipc", "autogen-ipc"]}],
                          "match": {"any": [{"resources": {"kinds": ["Pod", "Deployment"], "names": ["tool*"]}}]},
                          "conditions": {"all": [{"key": "{{ request.object.metadata.labels.ok || '' }}",
                                                  "operator": "Equals", "value": "yes"}]}}}
    bad = pod("tool-1", hostIPC=True, labels={"ok": "yes"})
    assert verdicts(pol, bad, exceptions=[exception]) == {"ipc": "skip"}
    assert verdicts(pol, pod("tool-1", hostIPC=True), exceptions=[exception]) == {"ipc": "fail"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tool", "labels": {"ok": "yes"}},
                  "spec": {"template": {"spec": {"hostIPC": True}}}}
    assert verdicts(pol, deployment, exceptions=[exception]) == {"autogen-ipc": "skip"}


def test_failure_action_precedence_and_overrides() -> None:
    def action(pol: dict, resource: dict, **kwargs: Any) -> str:
        return evaluate(pol, resource, **kwargs)[0].action

    fail_rule = rule({"pattern": {"metadata": {"name": "nope"}}})
    assert action(policy(fail_rule), pod()) == "Audit"
    assert action(policy(fail_rule, validationFailureAction="enforce"), pod()) == "Enforce"
    per_rule = rule({"failureAction": "Audit", "pattern": {"metadata": {"name": "nope"}}})
    assert action(policy(per_rule, validationFailureAction="Enforce"), pod()) == "Audit"
    staged = policy(fail_rule, validationFailureAction="Audit", validationFailureActionOverrides=[
        {"action": "Enforce", "namespaces": ["prod-*"]},
        {"action": "Enforce", "namespaceSelector": {"matchLabels": {"stage": "enforce"}}}])
    assert action(staged, pod(namespace="prod-eu")) == "Enforce"
    assert action(staged, pod(namespace="dev")) == "Audit"
    assert action(staged, pod(namespace="dev"), namespace_labels={"stage": "enforce"}) == "Enforce"


def test_existing_violations_of_enforce_rules_are_allowed_per_rule_on_update() -> None:
    """Kyverno 1.13+ (pkg/engine/handlers/validation/validate_resource.go): on an UPDATE a failing
    Enforce rule is judged on the old object as its creation; a failure there skips the rule."""
    enforce = {"failureAction": "Enforce", "pattern": {"spec": {"=(hostPID)": "false"}}}
    old = pod(hostPID=True)
    assert verdicts(policy(rule(enforce)), pod(hostPID=True), operation="UPDATE", old_resource=old) == {"r": "skip"}
    assert verdicts(policy(rule(enforce)), pod(hostPID=True), operation="UPDATE", old_resource=pod()) == {"r": "fail"}
    audit = {**enforce, "failureAction": "Audit"}
    assert verdicts(policy(rule(audit)), pod(hostPID=True), operation="UPDATE", old_resource=old) == {"r": "fail"}
    off = {**enforce, "allowExistingViolations": False}
    assert verdicts(policy(rule(off)), pod(hostPID=True), operation="UPDATE", old_resource=old) == {"r": "fail"}
    each = {"failureAction": "Enforce", "foreach": [{"list": "request.object.spec.containers", "deny": {"conditions": {
        "any": [{"key": "{{ element.securityContext.privileged || `false` }}", "operator": "Equals", "value": True}]}}}]}
    privileged = {"name": "a", "image": "i", "securityContext": {"privileged": True}}
    two = pod(containers=[privileged, {**privileged, "name": "b"}])
    assert verdicts(policy(rule(each)), two, operation="UPDATE", old_resource=pod(containers=[privileged])) == {"r": "skip"}, \
        "the comparison is per rule: the old container's failure excuses the new container"


def test_a_pod_rule_sees_ephemeral_container_updates_and_no_other_subresource() -> None:
    pol = policy(rule({"failureAction": "Enforce", "pattern": {"spec": {"=(hostPID)": "false"}}}))
    violating = pod(hostPID=True)
    assert verdicts(pol, violating, operation="UPDATE", old_resource=violating, subresource="ephemeralcontainers") == {"r": "skip"}
    assert verdicts(pol, violating, operation="UPDATE", old_resource=pod(), subresource="ephemeralcontainers") == {"r": "fail"}
    assert verdicts(pol, violating, operation="UPDATE", subresource="status") == {}
    status = policy(rule({"pattern": {"spec": {"=(hostPID)": "false"}}}, kinds=("Pod/status",)))
    assert verdicts(status, violating, operation="UPDATE", subresource="status") == {"r": "fail"}
    assert verdicts(status, violating) == {}


def test_unsupported_rule_types_report_error() -> None:
    pss = policy(rule({"podSecurity": {"level": "baseline", "version": "latest"}}))
    result = evaluate(pss, pod())[0]
    assert result.result == "error" and "unsupported" in result.message
