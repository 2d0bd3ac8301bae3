"""Leaf-value checks of ``validate.pattern``: operators, ranges, wildcards, types.

A pattern leaf is compared with the resource value the way Kyverno's
``pattern.Validate`` does it: the pattern's JSON type decides the comparison;
string patterns support ``|`` (or), ``&`` (and), ``!``, ``<``, ``>``, ``<=``,
``>=``, ranges ``a-b`` / ``a!-b`` and wildcards, comparing durations first, then
Kubernetes quantities, then (for ``=``/``!``) strings.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .gotypes import is_number, parse_duration, parse_float, parse_int, parse_quantity, wildcard_match

EQUAL, NOT_EQUAL, MORE, LESS, MORE_EQUAL, LESS_EQUAL = "", "!", ">", "<", ">=", "<="
IN_RANGE, NOT_IN_RANGE = "-", "!-"

IN_RANGE_RE = re.compile(r"^([-|+]?\d+(?:\.\d+)?[A-Za-z]*)-([-|+]?\d+(?:\.\d+)?[A-Za-z]*)$")
NOT_IN_RANGE_RE = re.compile(r"^([-|+]?\d+(?:\.\d+)?[A-Za-z]*)!-([-|+]?\d+(?:\.\d+)?[A-Za-z]*)$")


def operator_of(pattern: str) -> str:
    """The operator prefix of a string pattern (Kyverno's precedence order)."""
    if len(pattern) < 2:
        return EQUAL
    for op in (MORE_EQUAL, LESS_EQUAL, MORE, LESS, NOT_EQUAL):
        if pattern.startswith(op):
            return op
    if NOT_IN_RANGE_RE.match(pattern):
        return NOT_IN_RANGE
    if IN_RANGE_RE.match(pattern):
        return IN_RANGE
    return EQUAL


def validate_value(value: Any, pattern: Any) -> bool:
    """True when a resource ``value`` satisfies a leaf ``pattern``."""
    if isinstance(pattern, bool):
        return isinstance(value, bool) and value == pattern
    if isinstance(pattern, int):
        return _int_pattern(value, pattern)
    if isinstance(pattern, float):
        return _float_pattern(value, pattern)
    if pattern is None:
        return _nil_pattern(value)
    if isinstance(pattern, dict):
        return isinstance(value, dict)
    if isinstance(pattern, str):
        return _string_patterns(value, pattern)
    return False


def _int_pattern(value: Any, pattern: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == pattern
    if isinstance(value, float):
        return value.is_integer() and int(value) == pattern
    if isinstance(value, str):
        number = parse_int(value)
        return number is not None and number == pattern
    return False


def _float_pattern(value: Any, pattern: float) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return pattern.is_integer() and int(pattern) == value
    if isinstance(value, float):
        return value == pattern
    if isinstance(value, str):
        number = parse_float(value)
        return number is not None and number == pattern
    return False


def _nil_pattern(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if is_number(value):
        return value == 0
    if isinstance(value, str):
        return value == ""
    return False


def _string_patterns(value: Any, pattern: str) -> bool:
    if isinstance(value, str) and value == pattern:
        return True
    for alternative in pattern.split("|"):
        if all(_string_pattern(value, part.strip(" ")) for part in alternative.strip(" ").split("&")):
            return True
    return False


def _string_pattern(value: Any, pattern: str) -> bool:
    op = operator_of(pattern)
    if op == IN_RANGE:
        left, right = IN_RANGE_RE.match(pattern).groups()  # type: ignore[union-attr]
        return _string_pattern(value, f">= {left}") and _string_pattern(value, f"<= {right}")
    if op == NOT_IN_RANGE:
        left, right = NOT_IN_RANGE_RE.match(pattern).groups()  # type: ignore[union-attr]
        return _string_pattern(value, f"< {left}") or _string_pattern(value, f"> {right}")
    return _compare(value, pattern[len(op):].strip(), op)


def number_to_string(value: Any) -> str | None:
    """Kyverno's ``convertNumberToString``: nil is "0", floats use ``%f``."""
    if value is None:
        return "0"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    return None


def _ordered(result: int, op: str) -> bool | None:
    return {
        EQUAL: result == 0,
        NOT_EQUAL: result != 0,
        MORE: result > 0,
        LESS: result < 0,
        MORE_EQUAL: result >= 0,
        LESS_EQUAL: result <= 0,
    }.get(op)


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _compare(value: Any, pattern: str, op: str) -> bool:
    text = number_to_string(value)
    for parse in (parse_duration, parse_quantity):  # as durations first, then as quantities, then as text
        expected = parse(pattern)
        found = parse(text) if expected is not None and text is not None else None
        if found is not None:
            outcome = _ordered(_cmp(found, expected), op)
            if outcome is not None:
                return outcome
    return _compare_string(value, pattern, op)


def _compare_string(value: Any, pattern: str, op: str) -> bool:
    if op not in (EQUAL, NOT_EQUAL):
        return False
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = _format_e(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        return False
    matched = wildcard_match(pattern, text)
    return not matched if op == NOT_EQUAL else matched


@lru_cache(maxsize=1024)
def _format_e(value: float) -> str:
    """``strconv.FormatFloat(v, 'E', -1, 64)``: shortest mantissa, ``E+00`` exponent."""
    shortest = next(
        candidate
        for candidate in (f"{value:.{precision}E}" for precision in range(17))
        if float(candidate) == value
    )
    mantissa, exponent = shortest.split("E")
    exp = int(exponent)
    return f"{mantissa}E{'+' if exp >= 0 else '-'}{abs(exp):02d}"
