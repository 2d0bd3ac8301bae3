"""``match`` / ``exclude`` resource filters, as Kyverno's MatchesResourceDescription.

A filter (``resources`` plus optional ``subjects``/``roles``/``clusterRoles``) is an
AND across the fields it sets and an OR inside each list.  ``match.any`` needs one
filter, ``match.all`` every filter; ``exclude.any`` excludes when one filter matches,
``exclude.all`` when every filter does.  User-info criteria in ``match`` are ignored
when no request user info is known (background/CLI mode), as Kyverno does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .gotypes import has_wildcard, wildcard_match
from ..objects import object_meta


@dataclass(frozen=True)
class Request:
    """What the filters look at besides the resource itself."""

    operation: str
    namespace_labels: Mapping[str, str]
    user_info: Mapping[str, Any] = field(default_factory=dict)
    subresource: str = ""  # e.g. "ephemeralcontainers" for `kubectl debug`, "status"

    @property
    def has_user_info(self) -> bool:
        return bool(self.user_info)


def resource_gvk(resource: Mapping[str, Any]) -> tuple[str, str, str]:
    """(group, version, kind) from apiVersion/kind."""
    api_version = str(resource.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return group, version, str(resource.get("kind") or "")


_VERSION = re.compile(r"^(v\d+((alpha|beta)\d+)?|\*)$")


def parse_kind_selector(selector: str) -> tuple[str, str, str, str]:
    """(group, version, kind, subresource) of `Kind`, `v1/Kind`, `g/v/Kind`, `Kind/sub` or `Kind.sub`,
    as Kyverno's ParseKindSelector reads them (the last part may name a subresource after a dot)."""
    parts = selector.split("/")
    parts = parts[:-1] + parts[-1].split(".")
    if len(parts) == 1:
        return "*", "*", parts[0], ""
    if len(parts) == 2:
        if parts == ["*", "*"]:
            return "*", "*", "*", "*"
        if parts[0] == "*" and parts[1].lower() == parts[1]:
            return "*", "*", parts[0], parts[1]
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], ""
        return "*", "*", parts[0], parts[1]
    if len(parts) == 3:
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], parts[2]
        return parts[0], parts[1], parts[2], ""
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], parts[3]
    return "", "", "", ""


def kind_matches(selectors: Sequence[str], resource: Mapping[str, Any], subresource: str = "") -> bool:
    """Kyverno's CheckKind: a selector names the resource's group/version/kind and the request's
    subresource; a Pod selector without one also matches `pods/ephemeralcontainers` requests."""
    group, version, kind = resource_gvk(resource)
    for selector in selectors:
        s_group, s_version, s_kind, s_sub = parse_kind_selector(selector)
        if wildcard_match(s_group, group) and wildcard_match(s_version, version) and wildcard_match(s_kind, kind):
            if wildcard_match(s_sub, subresource):
                return True
            if (group, version, kind) == ("", "v1", "Pod") and subresource == "ephemeralcontainers":
                return True
    return False


def _requirement_matches(requirement: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = requirement.get("key")
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"invalid label selector operator {operator!r}")


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Kubernetes label selector, with Kyverno's wildcard support in matchLabels."""
    labels = labels or {}
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if has_wildcard(str(key)) or has_wildcard(str(value)):
            if not any(wildcard_match(str(key), k) and wildcard_match(str(value), v) for k, v in labels.items()):
                return False
        elif labels.get(key) != str(value):
            return False
    return all(_requirement_matches(r, labels) for r in selector.get("matchExpressions") or [])


def _subjects_match(subjects: Sequence[Mapping[str, Any]], user_info: Mapping[str, Any]) -> bool:
    username = str(user_info.get("username") or "")
    groups = list(user_info.get("groups") or []) + [username]
    prefix = "system:serviceaccount:"
    for subject in subjects:
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            if len(username) > len(prefix) and username[len(prefix):] == f"{subject.get('namespace')}:{subject.get('name')}":
                return True
        elif kind in ("User", "Group") and subject.get("name") in groups:
            return True
    return False


def _block_errors(block: Mapping[str, Any], resource: Mapping[str, Any], request: Request, *, with_user: bool) -> list[str]:
    """Reasons why one filter does not select the resource (empty list = selected)."""
    description = block.get("resources") or {}
    operations = description.get("operations") or []
    if operations and request.operation not in operations:
        return ["operation does not match"]
    errors = []
    metadata = object_meta(resource)
    name = metadata.get("name") or metadata.get("generateName") or ""
    kinds = description.get("kinds") or []
    if kinds and not kind_matches(kinds, resource, request.subresource):
        errors.append("kind")
    if description.get("name") and not wildcard_match(description["name"], name):
        errors.append("name")
    names = description.get("names") or []
    if names and not any(wildcard_match(n, name) for n in names):
        errors.append("names")
    namespaces = description.get("namespaces") or []
    if namespaces:
        namespace = name if resource.get("kind") == "Namespace" else metadata.get("namespace") or ""
        if not any(wildcard_match(n, namespace) for n in namespaces):
            errors.append("namespaces")
    annotations = description.get("annotations") or {}
    if annotations:
        actual = metadata.get("annotations") or {}
        if not all(any(wildcard_match(k, ak) and wildcard_match(str(v), str(av)) for ak, av in actual.items())
                   for k, v in annotations.items()):
            errors.append("annotations")
    if description.get("selector") is not None and not selector_matches(description["selector"], metadata.get("labels")):
        errors.append("selector")
    if description.get("namespaceSelector") is not None:
        if resource.get("kind") == "Namespace":
            errors.append("namespaceSelector")
        elif not selector_matches(description["namespaceSelector"], request.namespace_labels):
            errors.append("namespaceSelector")
    if with_user:
        info = request.user_info
        if block.get("roles") and not set(block["roles"]) & set(info.get("roles") or []):
            errors.append("roles")
        if block.get("clusterRoles") and not set(block["clusterRoles"]) & set(info.get("clusterRoles") or []):
            errors.append("clusterRoles")
        if block.get("subjects") and not _subjects_match(block["subjects"], info.get("userInfo") or info):
            errors.append("subjects")
    return errors


def _is_empty(block: Mapping[str, Any], *, with_user: bool) -> bool:
    user_keys = ("roles", "clusterRoles", "subjects") if with_user else ()
    return not block.get("resources") and not any(block.get(k) for k in user_keys)


def _legacy(filters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: filters.get(k) for k in ("resources", "roles", "clusterRoles", "subjects") if filters.get(k)}


def _selects(block: Mapping[str, Any], resource: Mapping[str, Any], request: Request) -> bool:
    with_user = request.has_user_info
    if _is_empty(block, with_user=with_user):
        return False
    return not _block_errors(block, resource, request, with_user=with_user)


def _excludes(block: Mapping[str, Any], resource: Mapping[str, Any], request: Request) -> bool:
    if _is_empty(block, with_user=True):
        return False
    return not _block_errors(block, resource, request, with_user=True)


def _holds(blocks: Mapping[str, Any] | None, test: Callable[..., bool], resource: Mapping[str, Any], request: Request) -> bool:
    """`test` over a match or exclude: any of `any`, all of `all`, else the legacy single block."""
    blocks = blocks or {}
    if blocks.get("any"):
        return any(test(block, resource, request) for block in blocks["any"])
    if blocks.get("all"):
        return all(test(block, resource, request) for block in blocks["all"])
    return test(_legacy(blocks), resource, request)


def is_matched(match: Mapping[str, Any] | None, resource: Mapping[str, Any], request: Request) -> bool:
    """Does the ``match`` block select the resource?"""
    return _holds(match, _selects, resource, request)


def is_excluded(exclude: Mapping[str, Any] | None, resource: Mapping[str, Any], request: Request) -> bool:
    """Does the ``exclude`` block remove the resource?"""
    return _holds(exclude, _excludes, resource, request)


def rule_applies(rule: Mapping[str, Any], resource: Mapping[str, Any], request: Request) -> bool:
    """Kyverno's ``matches``: selected by ``match`` and not removed by ``exclude``."""
    return is_matched(rule.get("match"), resource, request) and not is_excluded(rule.get("exclude"), resource, request)
