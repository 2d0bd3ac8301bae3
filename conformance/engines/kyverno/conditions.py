"""``any``/``all`` condition blocks (preconditions, deny, exception conditions).

A block is either the legacy list (all must hold) or ``{any: [...], all: [...]}``:
``any`` (when present) needs one true condition, ``all`` needs every condition.
An empty block is true, so ``deny: {}`` always denies, as in Kyverno.
"""

from __future__ import annotations

from typing import Any, Mapping

from .operators import UnknownOperator, evaluate_operator
from .variables import SubstitutionError, substitute


class ConditionError(Exception):
    """A condition could not be evaluated (bad variable or operator)."""


def _condition(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    try:
        key = substitute(condition.get("key"), context)
        value = substitute(condition.get("value"), context)
        return evaluate_operator(condition.get("operator", ""), key, value)
    except (SubstitutionError, UnknownOperator) as exc:
        raise ConditionError(str(exc)) from None


def evaluate_conditions(block: Any, context: Mapping[str, Any]) -> bool:
    """Evaluate a conditions block; raises ConditionError when Kyverno would error."""
    if block is None:
        return True
    if isinstance(block, list):
        return all(_condition(c, context) for c in block)
    if not isinstance(block, Mapping):
        raise ConditionError(f"invalid conditions block {block!r}")
    any_ok = True
    if block.get("any") is not None:
        any_ok = any(_condition(c, context) for c in block["any"])
    all_ok = all(_condition(c, context) for c in block.get("all") or [])
    return any_ok and all_ok
