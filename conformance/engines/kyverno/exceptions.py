"""PolicyException matching (kyverno.io/v2, v2beta1).

An exception exempts a (policy, rule) pair when one of its ``spec.exceptions``
entries names the policy (``namespace/name`` for a namespaced Policy) and the rule
(wildcards allowed, so autogen names can be listed explicitly or by pattern), its
``spec.match`` selects the resource and its ``spec.conditions`` hold.  The rule's
result is then "skip".  Exceptions carrying ``podSecurity`` control exemptions
refine a podSecurity rule instead of skipping it; they are reported as such so the
caller can treat them as unsupported.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .conditions import evaluate_conditions
from .gotypes import wildcard_match
from .match import Request, is_matched


def _names_rule(exception: Mapping[str, Any], policy_key: str, rule_name: str) -> bool:
    for entry in (exception.get("spec") or {}).get("exceptions") or []:
        if entry.get("policyName") == policy_key and any(
            wildcard_match(str(name), rule_name) for name in entry.get("ruleNames") or []
        ):
            return True
    return False


def matching_exception(
    exceptions: Sequence[Mapping[str, Any]],
    policy_key: str,
    rule_name: str,
    resource: Mapping[str, Any],
    request: Request,
    context: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """The first exception that exempts this rule for this resource, if any.

    Raises ConditionError when an exception's conditions cannot be evaluated.
    """
    for exception in exceptions:
        if not _names_rule(exception, policy_key, rule_name):
            continue
        spec = exception.get("spec") or {}
        if not is_matched(spec.get("match"), resource, request):
            continue
        if spec.get("conditions") is not None and not evaluate_conditions(spec["conditions"], context):
            continue
        return exception
    return None


def exception_name(exception: Mapping[str, Any]) -> str:
    """``namespace/name`` of an exception, for messages."""
    metadata = exception.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))
