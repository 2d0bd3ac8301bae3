"""ValidatingAdmissionPolicy admission, emulated as the Kubernetes API server performs it.

Why: there is no API server in the conformance harness, yet the VAP artifacts must be judged by
what a cluster would do. `admit` takes one policy, one binding and one request, and returns the
`Decision` the API server's validating-admission-policy plugin would reach for that pair.

Order of work (as in the API server):
1. the binding must name the policy (`spec.policyName`);
2. the policy's `matchConstraints`, then the binding's `matchResources` (when set), select the
   request: namespaceSelector, objectSelector (object or oldObject labels), excludeResourceRules,
   resourceRules (apiGroups, apiVersions, resources with `*` and `res/sub`, operations, scope,
   resourceNames); `matchPolicy: Equivalent` (the default) also accepts a rule that names another
   group/version that still serves the same resource (known equivalents only; the object is not
   converted);
3. params: with `paramKind`, the binding's `paramRef` must find the param object(s) given to
   `admit`; none found is allowed or denied by `parameterNotFoundAction` (default Deny); a binding
   without `paramRef` runs the policy with `params` null;
4. per param: `variables` (in order; an erroring variable is an error only where it is used),
   `matchConditions` (any false → not matched; otherwise errors → failurePolicy; they, and the
   variables they read, see `namespaceObject` null), `validations`
   (`expression`, `message`, `messageExpression`, `reason`), `auditAnnotations`.

Errors map to failurePolicy (default Fail) like this:
- a validation or matchCondition that errors, under Fail, is a failure whose message is the error;
  the binding's `validationActions` then decide whether it denies, warns or audits; under Ignore
  it is recorded in `Decision.ignored_errors` and admits;
- configuration errors (params missing with Deny) and auditAnnotation errors, under Fail, deny
  whatever the validationActions (the API server rejects outright);
- expressions that cannot be compiled here (unsupported Kubernetes libraries, `authorizer`, `params`
  without `paramKind`) are evaluation errors too, as compile errors are in the API server.

The request: `object` is null on DELETE, `oldObject` null on CREATE; `request` is an
AdmissionRequest (kind, resource, subResource, requestKind/Resource/SubResource, name,
namespace, operation, userInfo, dryRun, options); `namespaceObject` is the request's Namespace
(null for cluster-scoped requests, and for Namespace requests, whose request namespace is their
own name on an UPDATE or DELETE and none on a CREATE); every Namespace carries the
`kubernetes.io/metadata.name` label as the API server sets it. A namespaced object without a
namespace is taken to be in `default`. Not emulated: defaulting and schema-typed decoding (see
conformance.engines.cel), the CEL cost budget, the authorizer, where params are looked up (a
namespaced param for a cluster-scoped request is an error to the API server), the CEL libraries
newer than the runtime's (quantity, ip, cidr, url, semver: errors here, as unknown functions).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cel import CelCompileError, CelError, CelEvaluator, VariableBindings, evaluator_for, to_cel
from .objects import object_meta

__all__ = ["Decision", "ValidationResult", "admit", "resource_for_kind", "selector_matches"]

_BASE_VARIABLES = ("object", "oldObject", "request", "namespaceObject", "variables")
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

# kind -> (group, plural resource, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Pod": ("", "pods", True),
    "PodTemplate": ("", "podtemplates", True),
    "ReplicationController": ("", "replicationcontrollers", True),
    "Service": ("", "services", True),
    "ServiceAccount": ("", "serviceaccounts", True),
    "ConfigMap": ("", "configmaps", True),
    "Secret": ("", "secrets", True),
    "Endpoints": ("", "endpoints", True),
    "Event": ("", "events", True),
    "LimitRange": ("", "limitranges", True),
    "ResourceQuota": ("", "resourcequotas", True),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims", True),
    "PersistentVolume": ("", "persistentvolumes", False),
    "Namespace": ("", "namespaces", False),
    "Node": ("", "nodes", False),
    "Deployment": ("apps", "deployments", True),
    "DaemonSet": ("apps", "daemonsets", True),
    "StatefulSet": ("apps", "statefulsets", True),
    "ReplicaSet": ("apps", "replicasets", True),
    "ControllerRevision": ("apps", "controllerrevisions", True),
    "Job": ("batch", "jobs", True),
    "CronJob": ("batch", "cronjobs", True),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets", True),
    "Ingress": ("networking.k8s.io", "ingresses", True),
    "IngressClass": ("networking.k8s.io", "ingressclasses", False),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies", True),
    "Role": ("rbac.authorization.k8s.io", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings", False),
    "StorageClass": ("storage.k8s.io", "storageclasses", False),
    "CSIDriver": ("storage.k8s.io", "csidrivers", False),
    "PriorityClass": ("scheduling.k8s.io", "priorityclasses", False),
    "RuntimeClass": ("node.k8s.io", "runtimeclasses", False),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "customresourcedefinitions", False),
    "ValidatingAdmissionPolicy": ("admissionregistration.k8s.io", "validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": ("admissionregistration.k8s.io",
                                         "validatingadmissionpolicybindings", False),
}

# resource -> the group/versions that serve it; matchPolicy Equivalent treats them as one resource.
# Only versions the API server still serves count (matching.go asks EquivalentResourcesFor, which
# knows the served ones): apps/v1beta*, extensions/v1beta1, batch/v1beta1, policy/v1beta1,
# autoscaling/v2beta* and networking.k8s.io/v1beta1 were all removed by Kubernetes 1.26.
# Measured with the real plugin (k8s.io/apiserver v0.34.1): a rule for apps/v1beta1 deployments
# does not match an apps/v1 Deployment; one for events.k8s.io/v1 events matches a v1 Event.
_EQUIVALENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "horizontalpodautoscalers": (("autoscaling", "v2"), ("autoscaling", "v1")),
    "events": (("", "v1"), ("events.k8s.io", "v1")),
}


def resource_for_kind(kind: str) -> tuple[str, str, bool]:
    """(group, resource, namespaced) of a kind; unknown kinds get the regular English plural
    and are assumed namespaced (custom resources usually are)."""
    known = _KINDS.get(kind)
    if known:
        return known
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        plural = lower[:-1] + "ies"
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = lower + "es"
    else:
        plural = lower + "s"
    return "", plural, True


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    """One failure: a validation that was not true, or an error enforced by failurePolicy Fail."""

    message: str
    reason: str
    actions: tuple[str, ...]
    expression: str | None = None  # None for configuration errors
    evaluation_error: bool = False


@dataclass(frozen=True)
class Decision:
    """What the API server concludes for one policy and one binding."""

    matched: bool  # selected, and matchConditions held (for at least one param)
    results: tuple[ValidationResult, ...] = ()
    error: str | None = None  # first evaluation/configuration error kept by failurePolicy Fail
    selected: bool = False  # matchConstraints and the binding's matchResources selected it
    audit_annotations: tuple[tuple[str, str], ...] = ()  # ("<policy>/<key>", value)
    ignored_errors: tuple[str, ...] = field(default=())  # errors dropped by failurePolicy Ignore

    @property
    def denied(self) -> bool:
        return any("Deny" in r.actions for r in self.results)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.results if "Warn" in r.actions)


# --- the request --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    group: str
    version: str
    kind: str
    resource: str
    subresource: str
    namespaced: bool
    name: str
    namespace: str  # the request namespace (a Namespace's own name for its UPDATE and DELETE)
    operation: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    namespace_object: dict[str, Any] | None  # with the metadata.name label; None if cluster-scoped

    @property
    def is_namespace(self) -> bool:
        return self.resource == "namespaces" and self.group == ""

    def namespace_labels(self) -> dict[str, str]:
        """Labels the namespaceSelector sees: for a Namespace request, the Namespace itself."""
        if self.is_namespace:
            current = self.obj if self.obj is not None else self.old
            return {**_labels(current), _NAMESPACE_NAME_LABEL: self.name}
        return _labels(self.namespace_object)


def _labels(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(object_meta(obj).get("labels") or {})


def _with_name_label(ns: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """The Namespace as the API server stores it: its name label is always present."""
    ns = dict(ns or {"apiVersion": "v1", "kind": "Namespace",
                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    meta = dict(ns.get("metadata") or {})
    meta.setdefault("name", name)
    meta["labels"] = {**(meta.get("labels") or {}), _NAMESPACE_NAME_LABEL: meta["name"]}
    ns["metadata"] = meta
    return ns


def _build_request(obj: dict | None, old: dict | None, operation: str, namespace: dict | None,
                   kind: dict | None, subresource: str) -> _Request:
    subject = obj if obj is not None else old
    if subject is None and kind is None:
        raise ValueError("admit needs an object, an old object or a kind")
    subject = subject or {}
    kind_name = kind["kind"] if kind is not None else subject.get("kind", "")
    known_group, resource, namespaced = resource_for_kind(kind_name)
    if kind is not None:
        group, version = kind.get("group", ""), kind.get("version", "")
    elif subject.get("apiVersion"):
        group, _, version = subject["apiVersion"].rpartition("/")
    else:
        group, version = known_group, "v1"
    meta = object_meta(subject)
    name = meta.get("name") or ""
    if resource == "namespaces" and group == "":
        # The request namespace comes from the URL: PUT and DELETE /api/v1/namespaces/{name} carry
        # the Namespace's own name, POST /api/v1/namespaces none (endpoints/request/requestinfo.go).
        return _Request(group, version, kind_name, resource, subresource, False, name,
                        "" if operation == "CREATE" else name, operation, obj, old, None)
    if not namespaced:
        return _Request(group, version, kind_name, resource, subresource, False, name, "",
                        operation, obj, old, None)
    ns_name = meta.get("namespace") or ((namespace or {}).get("metadata") or {}).get("name") or "default"
    return _Request(group, version, kind_name, resource, subresource, True, name, ns_name,
                    operation, obj, old, _with_name_label(namespace, ns_name))


def _admission_request(req: _Request, user_info: dict | None) -> dict[str, Any]:
    """The AdmissionRequest CEL sees as `request` (omitempty fields left out when empty)."""
    gvk = {"group": req.group, "version": req.version, "kind": req.kind}
    gvr = {"group": req.group, "version": req.version, "resource": req.resource}
    out: dict[str, Any] = {"uid": "", "kind": gvk, "resource": gvr, "requestKind": gvk,
                           "requestResource": gvr, "operation": req.operation,
                           "userInfo": {k: v for k, v in (user_info or {}).items() if v},
                           "dryRun": False}
    for key, value in (("subResource", req.subresource), ("requestSubResource", req.subresource),
                       ("name", req.name), ("namespace", req.namespace)):
        if value:
            out[key] = value
    if req.operation in _OPTIONS_KIND:
        out["options"] = {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS_KIND[req.operation]}
    return out


# --- matching -----------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; null and {} select everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"invalid label selector operator {op!r}")
        if not ok:
            return False
    return True


def _rule_matches(rule: Mapping[str, Any], req: _Request, group: str, version: str) -> bool:
    def listed(values: Any, value: str) -> bool:
        return "*" in (values or []) or value in (values or [])

    if not (listed(rule.get("operations"), req.operation) and listed(rule.get("apiGroups"), group)
            and listed(rule.get("apiVersions"), version)):
        return False
    names = rule.get("resourceNames") or []
    if names and req.name not in names:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Namespaced" and (req.is_namespace or not req.namespace):
        return False
    if scope == "Cluster" and not (req.is_namespace or not req.namespace):
        return False
    for entry in rule.get("resources") or []:
        res, _, sub = entry.partition("/")
        if res in ("*", req.resource) and sub in ("*", req.subresource):
            return True
    return False


def _rules_match(rules: list[Mapping[str, Any]], match_policy: str, req: _Request) -> bool:
    if any(_rule_matches(r, req, req.group, req.version) for r in rules):
        return True
    if match_policy == "Exact":
        return False
    served = _EQUIVALENTS.get(req.resource, ())
    if (req.group, req.version) not in served:
        return False
    return any(_rule_matches(r, req, g, v) for g, v in served for r in rules)


def _resources_match(match: Mapping[str, Any], req: _Request, *, require_rules: bool) -> bool:
    """MatchResources: namespaceSelector, objectSelector, excludeResourceRules, resourceRules."""
    ns_selector = match.get("namespaceSelector")
    if (req.namespace or req.is_namespace) and not selector_matches(ns_selector, req.namespace_labels()):
        return False
    obj_selector = match.get("objectSelector")
    if obj_selector and not (
        (req.obj is not None and selector_matches(obj_selector, _labels(req.obj)))
        or (req.old is not None and selector_matches(obj_selector, _labels(req.old)))
    ):
        return False
    policy = match.get("matchPolicy") or "Equivalent"
    if _rules_match(match.get("excludeResourceRules") or [], policy, req):
        return False
    rules = match.get("resourceRules") or []
    if not rules:
        return not require_rules
    return _rules_match(rules, policy, req)


# --- evaluation ---------------------------------------------------------------------------

_AUTHORIZER = re.compile(r"\bauthorizer\b")
_NAMESPACE_OBJECT = re.compile(r"\bnamespaceObject\b")
_MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes
_MISSING_KEY = re.compile(r'Key not found in map : "([^"]*)"')


@functools.cache
def _reads_authorizer(expression: str) -> bool:
    """Whether an expression uses the authorizer library (not emulated); asked once per expression."""
    return _AUTHORIZER.search(expression) is not None


@functools.cache
def _reads_namespace_object(expression: str) -> bool:
    """Whether an expression names `namespaceObject`; asked once per expression."""
    return _NAMESPACE_OBJECT.search(expression) is not None


class _Run:
    """One evaluation of a policy's expressions against one bound param."""

    def __init__(self, evaluator: CelEvaluator, data: dict[str, Any],
                 variables: list[Mapping[str, Any]]) -> None:
        self.evaluator = evaluator
        self.var_errors: dict[str, str] = {}
        bindings = VariableBindings(evaluator, data)
        for var in variables:
            self.activation = bindings.activation(var["expression"])
            try:
                bindings.add(var["name"], self._raw(var["expression"]))
            except CelError as exc:
                self.var_errors[var["name"]] = str(exc)
        self.activation = bindings.activation(None)

    def _raw(self, expression: str) -> Any:
        if _reads_authorizer(expression):
            raise CelCompileError("the authorizer library is not emulated")
        return self.evaluator.evaluate(expression, self.activation)

    def evaluate(self, expression: str) -> Any:
        """Evaluate; an error caused by a failed variable names that variable's error."""
        try:
            return self._raw(expression)
        except CelError as exc:
            missing = _MISSING_KEY.search(str(exc))
            if missing and missing.group(1) in self.var_errors and "variables" in expression:
                name = missing.group(1)
                raise CelError(f"composited variable {name!r} fails to evaluate: "
                               f"{self.var_errors[name]}") from None
            raise


def _error_text(expression: str, exc: CelError) -> str:
    return f"expression '{expression}' resulted in error: {exc}"


def _failure_message(run: _Run, validation: Mapping[str, Any]) -> str:
    """messageExpression if it yields a usable string (trimmed: not empty, one line, at most
    5 KiB), else message (trimmed), else the default (validating/validator.go)."""
    message_expression = validation.get("messageExpression")
    if message_expression:
        try:
            text = run.evaluate(message_expression)
        except CelError:
            text = None
        if isinstance(text, str):
            text = text.strip()
            if text and "\n" not in text and len(text.encode()) <= _MAX_MESSAGE_BYTES:
                return text
    return (validation.get("message") or "").strip() or f"failed expression: {validation['expression'].strip()}"


def admit(policy: dict, binding: dict, obj: dict | None, *, operation: str = "CREATE",
          old_object: dict | None = None, namespace: dict | None = None,
          params: dict | list[dict] | None = None, user_info: dict | None = None,
          kind: dict | None = None, subresource: str = "", extra: Mapping[str, Any] | None = None,
          namespace_in_match_conditions: bool = False) -> Decision:
    """Admit one request through one ValidatingAdmissionPolicy and one of its bindings.

    `namespace` is the request's Namespace object; `params` the param object(s) the binding's
    paramRef resolves to (a list for a selector); `kind` overrides the GVK ({group, version, kind});
    `extra` adds variables an engine built on this one declares (Kyverno's `exceptions`);
    `namespace_in_match_conditions`: matchConditions see `namespaceObject` too (Kyverno's engine
    gives it to them; the API server does not).
    """
    operation = operation.upper()
    if operation == "CREATE":
        old_object = None
    elif operation == "DELETE":
        obj = None
    spec = policy.get("spec") or {}
    bspec = binding.get("spec") or {}
    if bspec.get("policyName") != (policy.get("metadata") or {}).get("name"):
        return Decision(matched=False)
    req = _build_request(obj, old_object, operation, namespace, kind, subresource)
    if not _resources_match(spec.get("matchConstraints") or {}, req, require_rules=True):
        return Decision(matched=False)
    if bspec.get("matchResources") and not _resources_match(bspec["matchResources"], req,
                                                             require_rules=False):
        return Decision(matched=False)

    ignore = (spec.get("failurePolicy") or "Fail") == "Ignore"
    actions = tuple(bspec.get("validationActions") or ("Deny",))
    policy_name = policy["metadata"]["name"]
    results: list[ValidationResult] = []
    ignored: list[str] = []
    annotations: list[tuple[str, str]] = []

    def error(message: str, expression: str | None, *, hard: bool = False) -> None:
        if ignore:
            ignored.append(message)
        else:
            results.append(ValidationResult(message, "Invalid", ("Deny",) if hard else actions,
                                            expression, evaluation_error=True))

    def decide(matched: bool) -> Decision:
        first = next((r.message for r in results if r.evaluation_error), None)
        return Decision(matched=matched, results=tuple(results), error=first, selected=True,
                        audit_annotations=tuple(annotations), ignored_errors=tuple(ignored))

    param_objects: list[dict | None] = [None]
    if spec.get("paramKind"):
        ref = bspec.get("paramRef")
        found = [p for p in ([params] if isinstance(params, dict) else params or []) if p is not None]
        if not ref:  # the binding uses no params: the policy runs with `params` null (policy_dispatcher.go)
            found = [None]
        elif not found:
            if (ref.get("parameterNotFoundAction") or "Deny") == "Deny":
                error("no params found for policy binding with `Deny` parameterNotFoundAction",
                      None, hard=True)
            return decide(True)
        param_objects = found

    variables = _BASE_VARIABLES + (("params",) if spec.get("paramKind") else ()) + tuple(extra or {})
    evaluator = evaluator_for(tuple(sorted(variables)))
    base = {
        "object": to_cel(obj),
        "oldObject": to_cel(old_object),
        "request": to_cel(_admission_request(req, user_info)),
        "namespaceObject": to_cel(req.namespace_object),
        **{name: to_cel(value) for name, value in (extra or {}).items()},
    }
    matched_any = False
    for param in param_objects:
        data = {**base, **({"params": to_cel(param)} if spec.get("paramKind") else {})}
        run = _Run(evaluator, data, spec.get("variables") or [])
        conditions = spec.get("matchConditions") or []
        matching = run if namespace_in_match_conditions else _match_run(run, evaluator, data, spec)
        outcome = _match_conditions(matching, conditions)
        if isinstance(outcome, str):  # an error: failurePolicy decides, validations do not run
            error(outcome, None)
            matched_any = matched_any or not ignore
            continue
        if not outcome:
            continue
        matched_any = True
        for validation in spec.get("validations") or []:
            expression = validation["expression"]
            try:
                verdict = run.evaluate(expression)
            except CelError as exc:
                error(_error_text(expression, exc), expression)
                continue
            if verdict is not True:
                results.append(ValidationResult(_failure_message(run, validation),
                                                validation.get("reason") or "Invalid",
                                                actions, expression))
        for annotation in spec.get("auditAnnotations") or []:
            expression = annotation["valueExpression"]
            try:
                value = run.evaluate(expression)
            except CelError as exc:
                error(_error_text(expression, exc), expression, hard=True)
                continue
            if isinstance(value, str):
                if value.strip():  # a blank value is left out, like null
                    annotations.append((f"{policy_name}/{annotation['key']}", value.strip()))
            elif value is not None:
                error(f"valueExpression '{expression}' resulted in type {type(value).__name__}, "
                      "expected string or null", expression, hard=True)
    return decide(matched_any)


def _match_run(run: _Run, evaluator: CelEvaluator, data: dict[str, Any], spec: Mapping[str, Any]) -> _Run:
    """The run matchConditions see: `namespaceObject` is null there, and in the variables they read
    (webhook/matchconditions/matcher.go hands the filter no namespace); `run` itself when nothing
    they can read names it."""
    variables = spec.get("variables") or []
    texts = [c["expression"] for c in spec.get("matchConditions") or []] + [v["expression"] for v in variables]
    if data.get("namespaceObject") is None or not any(map(_reads_namespace_object, texts)):
        return run
    return _Run(evaluator, {**data, "namespaceObject": to_cel(None)}, variables)


def _match_conditions(run: _Run, conditions: list[Mapping[str, Any]]) -> bool | str:
    """All must be true: any false → False (even beside errors); otherwise the first error's
    message (failurePolicy decides), or True."""
    errors: list[str] = []
    for condition in conditions:
        expression = condition["expression"]
        try:
            value = run.evaluate(expression)
        except CelError as exc:
            errors.append(f"matchCondition {condition.get('name')!r}: {_error_text(expression, exc)}")
            continue
        if value is False:
            return False
        if value is not True:
            errors.append(f"matchCondition {condition.get('name')!r} must evaluate to bool")
    return errors[0] if errors else True
