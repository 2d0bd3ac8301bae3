"""Structural walk of ``validate.pattern`` with Kyverno's anchors.

Anchors (Kyverno meaning):

* ``(key)``  conditional: if the key is absent or its value does not match, the
  enclosing object is *skipped* (in a list, that element; at the top, the rule).
* ``<(key)`` global: if present and not matching, the whole rule is skipped.
* ``=(key)`` equality: if present, the value must match; absent is fine.
* ``X(key)`` negation: the key must be absent.
* ``^(key)`` existence: at least one list element must match each pattern element.
* ``+(key)`` add-if-not-present is a mutate anchor; validation treats the whole
  text as a literal key, as Kyverno does.

A failure is classified like Kyverno does: conditional/global mismatches are
*skips*, negation hits are *fails*, and anything else is a fail (or an error when a
tracked anchor key never appeared in the resource).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .gotypes import has_wildcard, wildcard_match
from .pattern import validate_value

_ANCHOR_RE = re.compile(r"^([+<=X^])?\((.+)\)$")

CONDITION, GLOBAL, EQUALITY, NEGATION, EXISTENCE, ADD = "()", "<()", "=()", "X()", "^()", "+()"
_MODIFIERS = {None: CONDITION, "<": GLOBAL, "=": EQUALITY, "X": NEGATION, "^": EXISTENCE, "+": ADD}
_PHASE_ONE = {CONDITION, EQUALITY, NEGATION, EXISTENCE}
_TRACKED = {CONDITION, EXISTENCE, NEGATION}

SKIP, NEGATED, FAILED = "skip", "negation", "fail"


def parse_anchor(key: str) -> tuple[str | None, str]:
    """Return (anchor kind or None, bare key)."""
    match = _ANCHOR_RE.match(key)
    if not match:
        return None, key
    return _MODIFIERS[match.group(1)], match.group(2)


class PatternFailure(Exception):
    """A pattern mismatch, with Kyverno's classification and the failing path."""

    def __init__(self, kind: str, path: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.message = message


@dataclass
class _AnchorTracker:
    """Remembers whether tracked anchor keys were ever present in the resource."""

    seen: dict[str, bool] = field(default_factory=dict)

    def observe(self, pattern: dict[str, Any], resource: dict[str, Any]) -> None:
        for key in pattern:
            kind, bare = parse_anchor(key)
            if kind in _TRACKED and not self.seen.get(key):
                self.seen[key] = bare in resource

    def keys_missing(self) -> bool:
        return not all(self.seen.values())


@dataclass(frozen=True)
class MatchOutcome:
    """Result of matching one pattern: status is pass, fail, skip or error."""

    status: str
    path: str = ""
    message: str = ""


def match_pattern(resource: Any, pattern: Any) -> MatchOutcome:
    """Validate ``resource`` against a full pattern, as ``validate.MatchPattern``."""
    tracker = _AnchorTracker()
    try:
        _element(resource, pattern, "/", tracker)
    except PatternFailure as failure:
        if failure.kind == SKIP:
            return MatchOutcome("skip", "", failure.message)
        if failure.kind == NEGATED:
            return MatchOutcome("fail", failure.path, failure.message)
        if tracker.keys_missing():
            return MatchOutcome("error", "", failure.message)
        return MatchOutcome("fail", failure.path, failure.message)
    return MatchOutcome("pass")


def _element(resource: Any, pattern: Any, path: str, tracker: _AnchorTracker) -> None:
    if isinstance(pattern, dict):
        if not isinstance(resource, dict):
            raise PatternFailure(FAILED, path, f"pattern and resource have different structures at {path}")
        tracker.observe(pattern, resource)
        _map(resource, pattern, path, tracker)
    elif isinstance(pattern, list):
        if not isinstance(resource, list):
            raise PatternFailure(FAILED, path, f"resource does not satisfy the expected pattern at {path}")
        _array(resource, pattern, path, tracker)
    else:
        values = resource if isinstance(resource, list) else [resource]
        for value in values:
            if not validate_value(value, pattern):
                raise PatternFailure(FAILED, path, f"resource value {resource!r} does not match {pattern!r} at path {path}")


def _nested_anchors(pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return any(parse_anchor(k)[0] not in (None, ADD) for k in pattern) or any(
            _nested_anchors(v) for v in pattern.values()
        )
    if isinstance(pattern, list):
        return any(_nested_anchors(v) for v in pattern)
    return False


def _map(resource: dict[str, Any], pattern: dict[str, Any], path: str, tracker: _AnchorTracker) -> None:
    pattern = _expand_metadata_wildcards(pattern, resource)
    anchored = sorted(k for k in pattern if parse_anchor(k)[0] in _PHASE_ONE)
    plain = [k for k in pattern if parse_anchor(k)[0] not in _PHASE_ONE]
    first = sorted(k for k in plain if parse_anchor(k)[0] == GLOBAL or _nested_anchors(pattern[k]))
    rest = sorted(k for k in plain if k not in first)
    for key in anchored + first + rest:
        _handle_key(key, pattern[key], resource, path, tracker)


def _handle_key(key: str, sub: Any, resource: dict[str, Any], path: str, tracker: _AnchorTracker) -> None:
    kind, bare = parse_anchor(key)
    here = f"{path}{bare}/"
    present = bare in resource
    if kind == NEGATION:
        if present:
            raise PatternFailure(NEGATED, here, f"{here} is not allowed")
    elif kind == EQUALITY:
        if present:
            _element(resource[bare], sub, here, tracker)
    elif kind == CONDITION:
        if not present:
            raise PatternFailure(SKIP, here, "conditional anchor key doesn't exist in the resource")
        try:
            _element(resource[bare], sub, here, tracker)
        except PatternFailure as failure:
            raise PatternFailure(SKIP, failure.path, f"conditional anchor mismatch: {failure.message}") from None
    elif kind == GLOBAL:
        if present:
            try:
                _element(resource[bare], sub, here, tracker)
            except PatternFailure as failure:
                raise PatternFailure(SKIP, failure.path, f"global anchor mismatch: {failure.message}") from None
    elif kind == EXISTENCE:
        if present:
            _existence(resource[bare], sub, here, tracker)
    else:
        value = resource.get(key)
        if sub == "*":
            if value is None:
                raise PatternFailure(FAILED, path, f"{path}{key} not found")
            return
        _element(value, sub, f"{path}{key}/", tracker)


def _existence(value: Any, pattern: Any, path: str, tracker: _AnchorTracker) -> None:
    if not isinstance(value, list):
        raise PatternFailure(FAILED, path, "existence anchor can be used only on list resources")
    if not isinstance(pattern, list) or not all(isinstance(p, dict) for p in pattern):
        raise PatternFailure(FAILED, path, "existence anchor pattern must be a list of maps")
    for element_pattern in pattern:
        if not any(_passes(item, element_pattern, f"{path}{i}/", tracker) for i, item in enumerate(value)):
            raise PatternFailure(FAILED, path, f"existence anchor validation failed at path {path}")


def _passes(resource: Any, pattern: Any, path: str, tracker: _AnchorTracker) -> bool:
    try:
        _element(resource, pattern, path, tracker)
    except PatternFailure:
        return False
    return True


def _array(resource: list[Any], pattern: list[Any], path: str, tracker: _AnchorTracker) -> None:
    if not pattern:
        raise PatternFailure(FAILED, path, "pattern array empty")
    head = pattern[0]
    if isinstance(head, dict):
        pairs = [(item, head) for item in resource]
    elif not isinstance(head, list):
        _element(resource, head, path, tracker)
        return
    else:
        if len(resource) < len(pattern):
            raise PatternFailure(FAILED, path, "array length mismatch")
        pairs = list(zip(resource, pattern))
    applied = skipped = 0
    for index, (item, item_pattern) in enumerate(pairs):
        try:
            _element(item, item_pattern, f"{path}{index}/", tracker)
        except PatternFailure as failure:
            if failure.kind != SKIP:
                raise
            skipped += 1
            continue
        applied += 1
    if applied == 0 and skipped:
        raise PatternFailure(SKIP, path, f"all elements skipped at {path}")


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _find_key(mapping: dict[str, Any], name: str) -> str | None:
    return next((k for k in mapping if parse_anchor(k)[1] == name), None)


def _expand_metadata_wildcards(pattern: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """Replace wildcard label/annotation keys by the resource keys they match."""
    meta_key = _find_key(pattern, "metadata")
    meta = pattern.get(meta_key) if meta_key else None
    resource_meta = resource.get("metadata")
    if not isinstance(meta, dict) or not isinstance(resource_meta, dict):
        return pattern
    new_meta = dict(meta)
    changed = False
    for tag in ("labels", "annotations"):
        tag_key = _find_key(meta, tag)
        if tag_key is None or not _string_map(meta[tag_key]) or not _string_map(resource_meta.get(tag)):
            continue
        expanded: dict[str, Any] = {}
        for key, value in meta[tag_key].items():
            kind, bare = parse_anchor(key)
            matches = [k for k in sorted(resource_meta[tag]) if has_wildcard(bare) and wildcard_match(bare, k)]
            for found in matches or [bare]:
                expanded[key.replace(bare, found) if kind else found] = value
        new_meta[tag_key] = expanded
        changed = True
    if not changed:
        return pattern
    return {**pattern, meta_key: new_meta}
