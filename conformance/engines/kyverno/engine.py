"""``evaluate``: run one Kyverno policy's validate rules against one object.

Order per rule, as in Kyverno: autogen expansion, match/exclude (no result when not
selected), PolicyException (skip), rule values and ``context``, preconditions
(skip), then the validation body.  ``validate.allowExistingViolations`` (default true;
Kyverno 1.13+, pkg/engine/handlers/validation): on an UPDATE, a failing Enforce rule is
judged again on the old object as if it were created (``request.object`` the old object,
no ``request.oldObject``, operation CREATE, no subresource); when that fails too, the rule
is skipped.  The comparison is per rule: any old failure excuses any new one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Mapping, Sequence

from .actions import effective_action
from .autogen import compute_rules
from .conditions import ConditionError
from .context import base_context
from .exceptions import exception_name, matching_exception
from .match import Request, rule_applies
from .validation import UNSUPPORTED, Outcome, Validator
from .variables import set_variable
from ..objects import object_meta

_CACHE_SIZE = 512


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict for one object, like a line of ``kyverno test`` output."""

    policy: str
    rule: str
    result: str  # "pass" | "fail" | "skip" | "error" | "warn"
    message: str
    action: str  # effective failure action: "Enforce" or "Audit"


@dataclass
class _PolicyCache:
    """Autogen-expanded rules per policy object (policies are re-used across calls)."""

    entries: dict[int, tuple[Mapping[str, Any], list[dict[str, Any]]]] = field(default_factory=dict)

    def rules(self, policy: Mapping[str, Any]) -> list[dict[str, Any]]:
        cached = self.entries.get(id(policy))
        if cached is not None and cached[0] is policy:
            return cached[1]
        rules = compute_rules(policy)
        if len(self.entries) >= _CACHE_SIZE:
            self.entries.clear()
        self.entries[id(policy)] = (policy, rules)
        return rules


_CACHE = _PolicyCache()


def to_json(value: Any) -> Any:
    """YAML-only scalars (timestamps) become strings, as after Kyverno's JSON decode."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat().replace("+00:00", "Z")
    return value


def policy_key(policy: Mapping[str, Any]) -> str:
    """The name Kyverno reports: ``namespace/name`` for a namespaced Policy."""
    metadata = policy.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if policy.get("kind") == "Policy" and metadata.get("namespace"):
        return f"{metadata['namespace']}/{name}"
    return name


def _base_name(rule_name: str) -> str:
    for prefix in ("autogen-cronjob-", "autogen-"):
        if rule_name.startswith(prefix):
            return rule_name[len(prefix):]
    return rule_name


def _lookup(table: Mapping[str, Any] | None, rule_name: str) -> Mapping[str, Any]:
    table = table or {}
    return table.get(rule_name) or table.get(_base_name(rule_name)) or {}


def _failed_before(rule: Mapping[str, Any], validate: Mapping[str, Any], validator: Validator,
                   context: dict[str, Any], request: Request) -> bool:
    """Kyverno's validateOldObject: the rule, matched and judged on the old object as its creation, fails."""
    old = context["request"].get("oldObject")
    if not isinstance(old, dict) or not rule_applies(rule, old, replace(request, operation="CREATE", subresource="")):
        return False
    before = copy.copy(context)
    before["request"] = {**context["request"], "object": old, "oldObject": None, "operation": "CREATE"}
    outcome = validator.run(validate, before, old, preconditions=rule.get("preconditions"), entries=rule.get("context"))
    return outcome is not None and outcome.status == "fail"


def evaluate(
    policy: dict,
    resource: dict,
    *,
    operation: str = "CREATE",
    exceptions: Sequence[dict] = (),
    namespace_labels: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
    user_info: Mapping[str, Any] | None = None,
    old_resource: dict | None = None,
    rule_variables: Mapping[str, Mapping[str, Any]] | None = None,
    foreach_values: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    subresource: str = "",
) -> list[RuleResult]:
    """Evaluate the validate rules of ``policy`` (ClusterPolicy/Policy) on ``resource``.

    ``variables`` are global values (dotted names set nested fields, e.g.
    ``request.operation``); ``rule_variables`` / ``foreach_values`` map a rule name
    (base or autogen) to the values of a kyverno-test ``variables`` file.  Rules that
    do not select the resource produce no result.  ``subresource`` is the request's (a Pod rule
    also matches ``pods/ephemeralcontainers``; other subresources need their own kind selector).
    """
    resource = to_json(resource)
    old_resource = to_json(old_resource) if old_resource is not None else None
    context = base_context(resource if operation != "DELETE" else None,
                           old_resource if old_resource is not None else (resource if operation == "DELETE" else None),
                           operation, user_info)
    for name, value in (variables or {}).items():
        set_variable(context, name, to_json(value))
    operation = str(context["request"].get("operation") or operation)
    if operation in ("UPDATE", "DELETE") and context["request"].get("oldObject") is None:
        context["request"]["oldObject"] = context["request"].get("object")  # shared: nothing writes into context values
    subject = context["request"]["object"] if operation != "DELETE" else context["request"]["oldObject"]
    subject = subject or {}
    request = Request(operation, dict(namespace_labels or {}), dict(user_info or {}), subresource)
    key = policy_key(policy)
    policy_namespace = (policy.get("metadata") or {}).get("namespace") if policy.get("kind") == "Policy" else None
    if policy_namespace and policy_namespace != object_meta(subject).get("namespace"):
        return []
    spec = policy.get("spec") or {}
    results = []
    for rule in _CACHE.rules(policy):
        validate = rule.get("validate")
        if not isinstance(validate, Mapping) or not rule_applies(rule, subject, request):
            continue
        action = effective_action(spec, validate, subject, request.namespace_labels)
        outcome = _evaluate_rule(rule, validate, context, subject, request, exceptions, key,
                                 rule_variables, foreach_values, enforce=_enforces(spec, validate))
        results.append(RuleResult(key, str(rule.get("name")), outcome.status, outcome.message, action))
    return results


def _evaluate_rule(rule: Mapping[str, Any], validate: Mapping[str, Any], base: dict[str, Any],
                   subject: Mapping[str, Any], request: Request, exceptions: Sequence[dict], key: str,
                   rule_variables: Mapping[str, Mapping[str, Any]] | None,
                   foreach_values: Mapping[str, Mapping[str, Sequence[Any]]] | None, *, enforce: bool) -> Outcome:
    rule_name = str(rule.get("name"))
    context = copy.copy(base)
    try:
        exception = matching_exception(exceptions, key, rule_name, subject, request, context)
    except ConditionError as exc:
        return Outcome("error", f"failed to evaluate policy exception conditions: {exc}")
    if exception is not None:
        if (exception.get("spec") or {}).get("podSecurity"):
            return Outcome("error", "unsupported: podSecurity control exemptions")
        return Outcome("skip", f"rule skipped due to policy exception {exception_name(exception)}")
    unsupported = [name for name in UNSUPPORTED if validate.get(name) is not None]
    if unsupported or rule.get("celPreconditions"):
        return Outcome("error", f"unsupported: validate.{(unsupported or ['celPreconditions'])[0]}")
    for name, value in _lookup(rule_variables, rule_name).items():
        set_variable(context, name, value)
    validator = Validator(rule_name, validate.get("message"), _lookup(foreach_values, rule_name))
    target = context["request"]["object"] or {}
    outcome = validator.run(validate, context, target, preconditions=rule.get("preconditions"),
                            entries=rule.get("context"))
    if outcome is None:
        return Outcome("error", "invalid validation rule: pattern, anyPattern, deny or foreach expected")
    if (outcome.status == "fail" and enforce and request.operation == "UPDATE"
            and validate.get("allowExistingViolations", True) is not False
            and _failed_before(rule, validate, validator, context, request)):
        return Outcome("skip", "skipping the rule evaluation as pre-existing violations are allowed")
    return outcome


def _enforces(spec: Mapping[str, Any], validate: Mapping[str, Any]) -> bool:
    """The rule's own failure action (not its namespace overrides), as Kyverno reads it for existing violations."""
    action = validate.get("failureAction") or spec.get("validationFailureAction") or "Audit"
    return str(action).lower() == "enforce"
