"""Gatekeeper's Constraint ``spec.match`` semantics, re-implemented from its documented behaviour.

Every criterion must hold (kinds, scope, namespaces, excludedNamespaces, labelSelector,
namespaceSelector, name, source); an absent criterion matches everything. A Namespace object
is matched on its own name and labels; a cluster-scoped object passes every namespace
criterion. An admission request matches when its object *or* its oldObject matches.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence
from ..objects import object_meta

__all__ = [
    "MatchError",
    "wildcard_matches",
    "selector_matches",
    "object_matches",
    "request_matches",
    "group_of",
    "is_namespace",
]

_SOURCES = ("All", "Original", "Generated")


class MatchError(ValueError):
    """Gatekeeper would fail the review (not merely skip the constraint) on this match."""


def wildcard_matches(pattern: str, candidate: str) -> bool:
    """Gatekeeper's Wildcard: ``*x*`` contains, ``*x`` suffix, ``x*`` prefix, else equality."""
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in candidate  # a lone "*" leaves "", which every name contains
    if pattern.startswith("*"):
        return candidate.endswith(pattern[1:])
    if pattern.endswith("*"):
        return candidate.startswith(pattern[:-1])
    return pattern == candidate


def _wildcard_matches_generate_name(pattern: str, generate_name: str) -> bool:
    """A generateName only fixes a prefix, so only ``*x*`` and ``x*`` patterns can match it."""
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in generate_name
    if pattern.endswith("*"):
        return generate_name.startswith(pattern[:-1])
    return False


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    """A Kubernetes LabelSelector; ``{}`` selects everything, invalid selectors raise MatchError."""
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                raise MatchError(f"label selector operator {op} on {key!r} needs values")
            present = key in labels and labels[key] in values
            if present != (op == "In"):
                return False
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise MatchError(f"label selector operator {op} on {key!r} takes no values")
            if (key in labels) != (op == "Exists"):
                return False
        else:
            raise MatchError(f"unknown label selector operator {op!r}")
    return True


def group_of(obj: Mapping[str, Any]) -> str:
    """API group from apiVersion: ``apps/v1`` -> ``apps``, ``v1`` -> core ``""``."""
    api_version = obj.get("apiVersion") or ""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_namespace(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Namespace" and group_of(obj) == ""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return object_meta(obj)


def _kinds_match(match: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    kinds = match.get("kinds") or []
    if not kinds:
        return True
    kind, group = obj.get("kind") or "", group_of(obj)
    for entry in kinds:
        entry_kinds, groups = entry.get("kinds") or [], entry.get("apiGroups") or []
        kind_ok = not entry_kinds or "*" in entry_kinds or kind in entry_kinds
        group_ok = not groups or "*" in groups or group in groups
        if kind_ok and group_ok:
            return True
    return False


def _scope_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Mapping | None) -> bool:
    has_namespace = bool(_meta(obj).get("namespace")) or ns is not None
    scope = match.get("scope")
    if scope == "Cluster":
        return is_namespace(obj) or not has_namespace
    if scope == "Namespaced":
        return not is_namespace(obj) and has_namespace
    return True  # "*", unset, and (as in Gatekeeper) any unrecognised value


def _namespace_name(obj: Mapping[str, Any], ns: Mapping | None) -> str | None:
    """The namespace the namespace criteria judge; None for a cluster-scoped non-Namespace."""
    if is_namespace(obj):
        return _meta(obj).get("name") or ""
    if ns is not None:
        return _meta(ns).get("name") or ""
    return _meta(obj).get("namespace") or None


def _namespaces_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Mapping | None) -> bool:
    patterns = match.get("namespaces") or []
    name = _namespace_name(obj, ns)
    if not patterns or name is None:
        return True
    return any(wildcard_matches(p, name) for p in patterns)


def _excluded_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Mapping | None) -> bool:
    patterns = match.get("excludedNamespaces") or []
    name = _namespace_name(obj, ns)
    if not patterns or name is None:
        return True
    return not any(wildcard_matches(p, name) for p in patterns)


def _label_selector_match(match: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    selector = match.get("labelSelector")
    return selector is None or selector_matches(selector, _meta(obj).get("labels"))


def _namespace_selector_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Mapping | None) -> bool:
    selector = match.get("namespaceSelector")
    if selector is None:
        return True
    if is_namespace(obj):
        return selector_matches(selector, _meta(obj).get("labels"))
    if ns is None:
        if not _meta(obj).get("namespace"):
            return True  # cluster-scoped objects pass a namespaceSelector
        raise MatchError(
            "namespaceSelector on a namespaced object but its Namespace is unknown "
            "(pass namespace=, or include the Namespace in the inventory)"
        )
    return selector_matches(selector, _meta(ns).get("labels"))


def _name_match(match: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    pattern = match.get("name") or ""
    if not pattern:
        return True
    meta = _meta(obj)
    return wildcard_matches(pattern, meta.get("name") or "") or _wildcard_matches_generate_name(
        pattern, meta.get("generateName") or ""
    )


def _source_match(match: Mapping[str, Any], source: str) -> bool:
    wanted = match.get("source") or "All"
    if wanted not in _SOURCES:
        raise MatchError(f"invalid match source {wanted!r}")
    return wanted == "All" or wanted == source


def object_matches(
    match: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    namespace: Mapping[str, Any] | None = None,
    *,
    source: str = "Original",
) -> bool:
    """Whether one object (with its Namespace object, if known) meets every match criterion."""
    if match is None:
        return True
    return (
        _kinds_match(match, obj)
        and _scope_match(match, obj, namespace)
        and _namespaces_match(match, obj, namespace)
        and _excluded_match(match, obj, namespace)
        and _label_selector_match(match, obj)
        and _namespace_selector_match(match, obj, namespace)
        and _name_match(match, obj)
        and _source_match(match, source)
    )


def request_matches(
    match: Mapping[str, Any] | None,
    objects: Sequence[Mapping[str, Any] | None],
    namespace: Mapping[str, Any] | None = None,
    *,
    source: str = "Original",
) -> bool:
    """An admission request matches when any of its non-null objects (object, oldObject) does."""
    present = [o for o in objects if o]
    if not present:
        raise MatchError("neither object nor oldObject is defined")
    return any(object_matches(match, o, namespace, source=source) for o in present)
