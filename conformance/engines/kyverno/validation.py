"""The body of a validate rule: context, preconditions, deny, pattern(s), foreach.

Mirrors Kyverno's resource validation handler.  Each step returns an ``Outcome``
(status pass/fail/skip/error plus a message); ``None`` means "no verdict", which a
foreach treats like a skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .anchors import match_pattern
from .conditions import ConditionError, evaluate_conditions
from .variables import SubstitutionError, query, set_variable, substitute

UNSUPPORTED = ("podSecurity", "cel", "manifests", "assert")


@dataclass(frozen=True)
class Outcome:
    """A rule verdict before the policy/rule names and action are attached."""

    status: str
    message: str = ""


def load_context(entries: Sequence[Mapping[str, Any]] | None, context: dict[str, Any]) -> None:
    """Evaluate ``context`` entries.

    ``variable`` entries are computed; ``configMap``, ``apiCall``, ``imageRegistry``
    and ``globalReference`` need a cluster, so, like the Kyverno CLI, they are not
    loaded: their data must come from the test's values.  Raises SubstitutionError.
    """
    for entry in entries or []:
        spec = entry.get("variable")
        if spec is None:
            continue
        has_default = "default" in spec
        value = substitute(spec.get("value"), context) if "value" in spec else None
        path = spec.get("jmesPath")
        output = value
        if path:
            path = substitute(path, context)
            try:
                output = query(value if "value" in spec else context, path)
            except SubstitutionError:
                if not has_default:
                    raise
                output = None
        if output is None and has_default:
            output = substitute(spec["default"], context)
        if output is None:
            raise SubstitutionError(f"context variable {entry.get('name')!r} evaluated to null")
        set_variable(context, str(entry.get("name")), output)


class Validator:
    """Evaluates one (possibly nested foreach) validation block."""

    def __init__(self, rule_name: str, message: str | None,
                 foreach_values: Mapping[str, Sequence[Any]] | None = None) -> None:
        self.rule_name = rule_name
        self.message = message or ""
        self.foreach_values = foreach_values or {}

    def run(self, block: Mapping[str, Any], context: dict[str, Any], target: Any, nesting: int = 0,
            preconditions: Any = None, entries: Sequence[Mapping[str, Any]] | None = None) -> Outcome | None:
        """Context, preconditions, then deny, pattern/anyPattern or foreach."""
        try:
            load_context(entries, context)
        except SubstitutionError as exc:
            return Outcome("error", f"failed to load context: {exc}")
        try:
            if not evaluate_conditions(preconditions, context):
                return Outcome("skip", "preconditions not met")
        except ConditionError as exc:
            return Outcome("error", f"failed to evaluate preconditions: {exc}")
        if block.get("deny") is not None:
            return self._deny(block["deny"], context)
        if block.get("pattern") is not None or block.get("anyPattern") is not None:
            return self._patterns(block, context, target)
        if block.get("foreach") is not None:
            return self._foreach(block["foreach"], context, target, nesting)
        return None

    def _render_message(self, context: Mapping[str, Any], fallback: str) -> str:
        if not self.message:
            return fallback
        try:
            rendered = substitute(self.message, context)
        except SubstitutionError:
            return fallback
        return rendered if isinstance(rendered, str) else fallback

    def _deny(self, deny: Mapping[str, Any], context: dict[str, Any]) -> Outcome:
        try:
            denied = evaluate_conditions(deny.get("conditions"), context)
        except ConditionError as exc:
            return Outcome("error", f"failed to check deny conditions: {exc}")
        if denied:
            return Outcome("fail", self._render_message(context, f"validation error: rule {self.rule_name} failed"))
        return Outcome("pass", f"validation rule '{self.rule_name}' passed.")

    def _patterns(self, block: Mapping[str, Any], context: dict[str, Any], target: Any) -> Outcome:
        try:
            pattern = substitute(block.get("pattern"), context)
            any_pattern = substitute(block.get("anyPattern"), context)
        except SubstitutionError as exc:
            return Outcome("error", f"variable substitution failed: {exc}")
        if pattern is not None:
            result = match_pattern(target, pattern)
            if result.status == "pass":
                return Outcome("pass", f"validation rule '{self.rule_name}' passed.")
            if result.status in ("skip", "error"):
                return Outcome(result.status, result.message)
            text = self._render_message(context, "validation error")
            return Outcome("fail", f"{text} rule {self.rule_name} failed at path {result.path}")
        if not isinstance(any_pattern, list):
            return Outcome("error", "failed to deserialize anyPattern, expected type array")
        failed, skipped = [], []
        for index, candidate in enumerate(any_pattern):
            result = match_pattern(target, candidate)
            if result.status == "pass":
                return Outcome("pass", f"validation rule '{self.rule_name}' anyPattern[{index}] passed.")
            (skipped if result.status == "skip" else failed).append(
                f"rule {self.rule_name}[{index}] {'skipped' if result.status == 'skip' else 'failed'}"
                f" at path {result.path}"
            )
        if skipped and not failed:
            return Outcome("skip", " ".join(skipped))
        return Outcome("fail", f"{self._render_message(context, 'validation error')} {' '.join(failed)}")

    def _foreach(self, foreach: Sequence[Mapping[str, Any]], context: dict[str, Any], target: Any,
                 nesting: int) -> Outcome:
        applied = 0
        for entry in foreach:
            try:
                expression = entry.get("list", "")
                if "{{" in expression:
                    expression = substitute(expression, context)
                elements = query(context, expression)
            except SubstitutionError:
                continue
            if not isinstance(elements, list):
                elements = [elements]
            outcome, count = self._elements(entry, elements, context, target, nesting)
            if outcome.status != "pass":
                return outcome
            applied += count
        if applied == 0:
            return Outcome("skip", "rule skipped")
        return Outcome("pass", "rule passed")

    def _elements(self, entry: Mapping[str, Any], elements: list[Any], context: dict[str, Any], target: Any,
                  nesting: int) -> tuple[Outcome, int]:
        applied = 0
        for index, element in enumerate(elements):
            if element is None:
                continue
            scoped = isinstance(element, dict)
            if entry.get("elementScope") is not None:
                if entry["elementScope"] and not scoped:
                    return Outcome("error", "cannot use elementScope=true foreach rules for elements that are not maps"), applied
                scoped = bool(entry["elementScope"])
            scope = dict(context)
            for key in ("element", f"element{nesting}"):
                scope[key] = element
            for key in ("elementIndex", f"elementIndex{nesting}"):
                scope[key] = index
            for name, series in self.foreach_values.items():
                if index < len(series):
                    set_variable(scope, name, series[index])
            outcome = self.run(entry, scope, element if scoped else target, nesting + 1,
                               entry.get("preconditions"), entry.get("context"))
            if outcome is None or outcome.status == "skip":
                continue
            if outcome.status == "error" and index < len(elements) - 1:
                continue
            if outcome.status != "pass":
                return Outcome(outcome.status, f"validation failure: {outcome.message}"), applied
            applied += 1
        return Outcome("pass"), applied
