"""``evaluate``: run one Kyverno policy's validate rules against one object.

Order per rule, as in Kyverno: autogen expansion, match/exclude (no result when not
selected), PolicyException (skip), rule values and ``context``, preconditions
(skip), then the validation body.  On UPDATE a pattern verdict that is unchanged
from the old object becomes a skip unless it passes (existing violations are not
re-reported), as Kyverno does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
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


def _old_object_unchanged(validator: Validator, validate: Mapping[str, Any], context: dict[str, Any],
                          old: Any, outcome: Outcome) -> Outcome:
    old_outcome = validator.run(validate, copy.copy(context), old)
    if old_outcome is not None and old_outcome.status == outcome.status and outcome.status != "pass":
        return Outcome("skip", "skipping modified resource as validation results have not changed")
    return outcome


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
) -> list[RuleResult]:
    """Evaluate the validate rules of ``policy`` (ClusterPolicy/Policy) on ``resource``.

    ``variables`` are global values (dotted names set nested fields, e.g.
    ``request.operation``); ``rule_variables`` / ``foreach_values`` map a rule name
    (base or autogen) to the values of a kyverno-test ``variables`` file.  Rules that
    do not select the resource produce no result.
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
        context["request"]["oldObject"] = copy.deepcopy(context["request"].get("object"))
    subject = context["request"]["object"] if operation != "DELETE" else context["request"]["oldObject"]
    subject = subject or {}
    request = Request(operation, dict(namespace_labels or {}), dict(user_info or {}))
    key = policy_key(policy)
    policy_namespace = (policy.get("metadata") or {}).get("namespace") if policy.get("kind") == "Policy" else None
    if policy_namespace and policy_namespace != (subject.get("metadata") or {}).get("namespace"):
        return []
    spec = policy.get("spec") or {}
    results = []
    for rule in _CACHE.rules(policy):
        validate = rule.get("validate")
        if not isinstance(validate, Mapping) or not rule_applies(rule, subject, request):
            continue
        action = effective_action(spec, validate, subject, request.namespace_labels)
        outcome = _evaluate_rule(rule, validate, context, subject, request, exceptions, key,
                                 rule_variables, foreach_values)
        results.append(RuleResult(key, str(rule.get("name")), outcome.status, outcome.message, action))
    return results


def _evaluate_rule(rule: Mapping[str, Any], validate: Mapping[str, Any], base: dict[str, Any],
                   subject: Mapping[str, Any], request: Request, exceptions: Sequence[dict], key: str,
                   rule_variables: Mapping[str, Mapping[str, Any]] | None,
                   foreach_values: Mapping[str, Mapping[str, Sequence[Any]]] | None) -> Outcome:
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
    has_pattern = validate.get("pattern") is not None or validate.get("anyPattern") is not None
    old = context["request"].get("oldObject")
    if request.operation == "UPDATE" and has_pattern and old is not None and outcome.status in ("pass", "fail"):
        return _old_object_unchanged(validator, validate, context, old, outcome)
    return outcome
