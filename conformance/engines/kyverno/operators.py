"""Condition operators (preconditions, ``deny.conditions``, exception conditions).

Kyverno decodes conditions from JSON, so every number is a float64 by the time an
operator sees it; operands are normalised the same way before comparison.  Each
operator follows the type rules of Kyverno's operator handlers: the key's type
picks the comparison, mismatched types are simply "not satisfied".
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, Callable

from .gotypes import is_number, parse_duration, parse_float, parse_int, parse_quantity, sprint, wildcard_match
from .pattern import IN_RANGE, operator_of, validate_value


def normalise(value: Any) -> Any:
    """JSON round trip as Go does it: all numbers become floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    return value


def _durations(key: Any, value: Any) -> tuple[Fraction, Fraction] | None:
    """Kyverno's ``parseDuration``: at least one side must be a duration string."""

    def as_duration(operand: Any) -> Fraction | None:
        if isinstance(operand, str) and operand != "0":
            return parse_duration(operand)
        return None

    key_d, value_d = as_duration(key), as_duration(value)
    if key_d is None and value_d is None:
        return None

    def seconds(operand: Any) -> Fraction | None:
        return Fraction(int(operand)) if is_number(operand) else None

    key_d = key_d if key_d is not None else seconds(key)
    value_d = value_d if value_d is not None else seconds(value)
    if key_d is None or value_d is None:
        return None
    return key_d, value_d


def _equal(key: Any, value: Any) -> bool | None:
    """Equality by the key's type; None for an unsupported key type."""
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if isinstance(key, float):
        if isinstance(value, bool):
            return False
        if isinstance(value, float):
            return value == key
        if isinstance(value, str):
            number = parse_float(value)
            return number is not None and number == key
        return False
    if isinstance(key, str):
        durations = _durations(key, value)
        if durations is not None:
            return durations[0] == durations[1]
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str):
            return key_quantity == parse_quantity(value)
        return isinstance(value, str) and wildcard_match(value, key)
    if isinstance(key, (dict, list)):
        return type(value) is type(key) and key == value
    return None


def equals(key: Any, value: Any) -> bool:
    return bool(_equal(key, value))


def not_equals(key: Any, value: Any) -> bool:
    if isinstance(key, str):
        durations = _durations(key, value)
        if durations is not None:
            return durations[0] != durations[1]
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str) and value != "":
            # A non-empty, non-quantity value is "not satisfied"; "" compares as text.
            value_quantity = parse_quantity(value)
            return value_quantity is not None and value_quantity != key_quantity
        return not (isinstance(value, str) and wildcard_match(value, key))
    if isinstance(key, float) and isinstance(value, str):
        number = parse_float(value)
        return number is None or number != key
    if isinstance(key, (bool, float, dict, list)):
        return not _equal(key, value)
    return False


def _compare(op: str, a: Any, b: Any) -> bool:
    return {
        "greaterthanorequals": a >= b,
        "greaterthan": a > b,
        "lessthanorequals": a <= b,
        "lessthan": a < b,
    }[op]


def _numeric(op: str, key: Any, value: Any) -> bool:
    if isinstance(key, bool) or isinstance(value, bool):
        return False
    if isinstance(key, float):
        if isinstance(value, float):
            return _compare(op, key, value)
        if isinstance(value, str):
            durations = _durations(key, value)
            if durations is not None:
                return _compare(op, *durations)
            number = parse_float(value)
            if number is None:
                number = parse_int(value)
            return number is not None and _compare(op, key, float(number))
        return False
    if isinstance(key, str):
        durations = _durations(key, value)
        if durations is not None:
            return _compare(op, *durations)
        number = parse_float(key)
        if number is None and parse_int(key) is not None:
            number = float(parse_int(key))
        if number is not None:
            return _numeric(op, number, value)
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str):
            value_quantity = parse_quantity(value)
            return value_quantity is not None and _compare(op, key_quantity, value_quantity)
    return False


def _duration_op(op: str, key: Any, value: Any) -> bool:
    def as_seconds(operand: Any) -> Fraction | None:
        if isinstance(operand, str):
            return parse_duration(operand)
        if is_number(operand):
            return Fraction(int(operand))
        return None

    k, v = as_seconds(key), as_seconds(value)
    return k is not None and v is not None and _compare(op, k, v)


def _string_list(value: str) -> list[str] | None:
    """A condition value string: a JSON array of strings, or itself; None if invalid."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return [value]
    if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def _either_match(a: str, b: str) -> bool:
    return wildcard_match(a, b) or wildcard_match(b, a)


def _key_in(key: str, value: Any) -> bool | None:
    """Is a scalar key in the value set (list, range, JSON list or string)?"""
    if isinstance(value, list):
        return any(_either_match(sprint(v), key) for v in value)
    if isinstance(value, str):
        if wildcard_match(value, key):
            return True
        if operator_of(value) == IN_RANGE:
            return validate_value(key, value)
        candidates = _string_list(value)
        if candidates is None:
            return None
        return key in candidates
    return None


def _keys_and_values(key: Any, value: Any) -> tuple[list[str], list[str] | str] | None:
    keys = [sprint(k) for k in key]
    if isinstance(value, list):
        return keys, [sprint(v) for v in value]
    if isinstance(value, str):
        if operator_of(value) == IN_RANGE:
            return keys, value
        candidates = _string_list(value)
        return None if candidates is None else (keys, candidates)
    return None


def _found(key: str, values: list[str] | str) -> bool:
    if isinstance(values, str):
        return validate_value(key, values)
    return any(_either_match(key, v) for v in values)


def _scalar(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, (bool, float)):
        return sprint(key)
    return None


def _set_operator(quantifier: Callable[[list[bool]], bool], negate: bool) -> Callable[[Any, Any], bool]:
    def evaluate(key: Any, value: Any) -> bool:
        scalar = _scalar(key)
        if scalar is not None:
            found = _key_in(scalar, value)
            return False if found is None else (not found if negate else found)
        if isinstance(key, list):
            if isinstance(value, str) and len(key) == 1 and sprint(key[0]) == value:
                return not negate
            prepared = _keys_and_values(key, value)
            if prepared is None:
                return False
            keys, values = prepared
            hits = [_found(k, values) != negate for k in keys]
            return quantifier(hits)
        return False

    return evaluate


def _strict_string_list(value: str) -> list[str] | None:
    """``json.Unmarshal`` into ``[]string``; None when that fails."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def _legacy_candidates(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return list(value) if all(isinstance(v, str) for v in value) else None
    if isinstance(value, str):
        return _strict_string_list(value)
    return None


def _legacy_in(negate: bool) -> Callable[[Any, Any], bool]:
    """Deprecated In/NotIn: exact membership (wildcards only in the string form)."""

    def evaluate(key: Any, value: Any) -> bool:
        scalar = _scalar(key)
        if scalar is not None:
            if isinstance(value, list):
                found = any(wildcard_match(scalar, sprint(v)) for v in value)
            elif isinstance(value, str) and wildcard_match(value, scalar):
                found = True
            else:
                candidates = _legacy_candidates(value)
                if candidates is None:
                    return False
                found = scalar in candidates
            return not found if negate else found
        if isinstance(key, list):
            keys = [sprint(k) for k in key]
            if isinstance(value, str) and len(keys) == 1 and keys[0] == value:
                return True
            candidates = _legacy_candidates(value)
            if candidates is None:
                return False
            if negate:
                return any(k not in candidates for k in keys)
            return all(k in candidates for k in keys)
        return False

    return evaluate


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equal": equals,
    "equals": equals,
    "notequal": not_equals,
    "notequals": not_equals,
    "in": _legacy_in(False),
    "notin": _legacy_in(True),
    "anyin": _set_operator(any, False),
    "allin": _set_operator(all, False),
    "anynotin": _set_operator(any, True),
    "allnotin": _set_operator(all, True),
    **{name: (lambda op: lambda k, v: _numeric(op, k, v))(name)
       for name in ("greaterthanorequals", "greaterthan", "lessthanorequals", "lessthan")},
    **{"duration" + name: (lambda op: lambda k, v: _duration_op(op, k, v))(name)
       for name in ("greaterthanorequals", "greaterthan", "lessthanorequals", "lessthan")},
}


class UnknownOperator(ValueError):
    """Raised for an operator Kyverno does not know."""


def evaluate_operator(operator: str, key: Any, value: Any) -> bool:
    """Apply a condition operator (case-insensitive name) to substituted operands."""
    handler = OPERATORS.get(str(operator).lower())
    if handler is None:
        raise UnknownOperator(f"unsupported operator {operator!r}")
    return handler(normalise(key), normalise(value))
