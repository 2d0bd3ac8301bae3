"""``{{ }}`` variable substitution and the JSON evaluation context.

Substitution follows Kyverno: innermost variables resolve first (a variable may
contain one level of ``{...}`` braces, so regexes like ``[0-9]{8}`` survive), a
string that is exactly one variable takes the variable's JSON value (any type,
including null), a variable inside a longer string is rendered as text (JSON for
non-strings), ``\\{{`` escapes a variable, and on DELETE ``request.object`` reads
``request.oldObject``.  Map keys are substituted as well as values.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from jmespath.exceptions import JMESPathError

from .functions import search
from .gotypes import json_dumps

VARIABLE_RE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
ESCAPED_RE = re.compile(r"\\\{\{(?:\{[^{}]*\}|[^{}])*\}\}")


class SubstitutionError(Exception):
    """A variable could not be resolved (invalid JMESPath or a function error)."""


def query(context: Mapping[str, Any], expression: str) -> Any:
    """Evaluate one JMESPath expression against the context."""
    expression = expression.strip()
    if not expression:
        raise SubstitutionError("invalid query (empty)")
    try:
        return search(expression, context)
    except JMESPathError as exc:
        raise SubstitutionError(f"JMESPath query {expression!r} failed: {exc}") from None


def _substitute_string(text: str, context: Mapping[str, Any]) -> Any:
    is_delete = _operation(context) == "DELETE"
    while True:
        match = VARIABLE_RE.search(text)
        if match is None:
            break
        variable = match.group(2)
        expression = variable[2:-2].strip()
        if is_delete:
            expression = expression.replace("request.object", "request.oldObject")
        value = query(context, expression)
        if text == variable:
            return value
        rendered = value if isinstance(value, str) else json_dumps(value)
        start = match.start(2)
        text = text[:start] + rendered + text[match.end(2):]
    return ESCAPED_RE.sub(lambda m: m.group(0)[1:], text)


def _operation(context: Mapping[str, Any]) -> Any:
    request = context.get("request")
    return request.get("operation") if isinstance(request, Mapping) else None


def substitute(document: Any, context: Mapping[str, Any]) -> Any:
    """``document`` with every variable resolved, in new maps and lists (a variable's value is the context's own)."""
    if isinstance(document, str):
        return _substitute_string(document, context) if "{{" in document else document
    if isinstance(document, dict):
        out: dict[Any, Any] = {}
        for key, value in document.items():
            new_key = _substitute_string(key, context) if isinstance(key, str) and "{{" in key else key
            out[new_key if isinstance(new_key, str) else json_dumps(new_key)] = substitute(value, context)
        return out
    if isinstance(document, list):
        return [substitute(v, context) for v in document]
    return document


def set_variable(context: dict[str, Any], name: str, value: Any) -> None:
    """Kyverno ``AddVariable``: a dotted name becomes nested maps, deep-merged. The value is shared,
    never copied: no context value is ever written into."""
    parts = name.split(".")
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    deep_merge(context, nested)


def deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target``; maps merge recursively (into copies: contexts share nested
    maps), other values replace."""
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merged = dict(target[key])
            deep_merge(merged, value)
            target[key] = merged
        else:
            target[key] = value
