"""Effective failure action (Enforce or Audit) of a rule for one resource.

Per-rule ``validate.failureAction`` wins over the legacy spec-level
``validationFailureAction`` (``enforce``/``audit``, any case); the default is Audit.
``failureActionOverrides`` (rule) or ``validationFailureActionOverrides`` (spec)
switch the action per namespace: an override applies when one of its namespace
patterns matches (and its ``namespaceSelector``, if any, matches the namespace
labels), or, without namespaces, when its ``namespaceSelector`` matches.
"""

from __future__ import annotations

from typing import Any, Mapping

from .gotypes import wildcard_match
from .match import selector_matches
from ..objects import object_meta

ENFORCE, AUDIT = "Enforce", "Audit"


def normalise_action(value: Any) -> str | None:
    """``Enforce``/``Audit`` from any casing; None when not a valid action."""
    text = str(value or "").lower()
    return {"enforce": ENFORCE, "audit": AUDIT}.get(text)


def _namespace_of(resource: Mapping[str, Any]) -> str:
    metadata = object_meta(resource)
    if resource.get("kind") == "Namespace":
        return str(metadata.get("name") or "")
    return str(metadata.get("namespace") or "")


def effective_action(spec: Mapping[str, Any], validate: Mapping[str, Any], resource: Mapping[str, Any],
                     namespace_labels: Mapping[str, str]) -> str:
    """The action Kyverno applies when this rule fails for this resource."""
    action = normalise_action(validate.get("failureAction")) or normalise_action(
        spec.get("validationFailureAction")) or AUDIT
    if "failureActionOverrides" in validate:
        overrides = validate.get("failureActionOverrides") or []
    else:
        overrides = spec.get("validationFailureActionOverrides") or []
    namespace = _namespace_of(resource)
    for override in overrides:
        override_action = normalise_action(override.get("action"))
        if override_action is None:
            continue
        selector = override.get("namespaceSelector")
        namespaces = override.get("namespaces") or []
        if not namespaces:
            if selector is not None and selector_matches(selector, namespace_labels):
                return override_action
            continue
        if any(wildcard_match(str(n), namespace) for n in namespaces):
            if selector is None or selector_matches(selector, namespace_labels):
                return override_action
    return action
