"""Go-compatible value helpers.

Kyverno is written in Go and its verdicts depend on Go's parsing and formatting
rules (``strconv.ParseFloat``, ``time.ParseDuration``, Kubernetes quantities,
``fmt.Sprint``, ``encoding/json``).  Python's equivalents differ in corner cases
(``float(" 1")`` succeeds, ``str(True)`` is ``True``), so the emulator routes every
such conversion through this module.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

_FLOAT_RE = re.compile(r"^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])$")
_INT_RE = re.compile(r"^[+-]?\d+$")


def is_number(value: Any) -> bool:
    """True for JSON numbers (Python bools are ints, but not JSON numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``; None when Go would return an error."""
    if not _FLOAT_RE.match(text):
        return None
    return float(text)


def parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``; None on error (including overflow)."""
    if not _INT_RE.match(text):
        return None
    number = int(text)
    if not -(2**63) <= number < 2**63:
        return None
    return number


_DURATION_UNITS = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 10**3),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_DURATION_PART = re.compile(r"(\d*(?:\.\d*)?)(ns|us|µs|μs|ms|s|m|h)")


@lru_cache(maxsize=4096)
def parse_duration(text: str) -> Fraction | None:
    """``time.ParseDuration``: seconds as a Fraction, None when invalid."""
    if not isinstance(text, str) or not text:
        return None
    body = text
    sign = 1
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return Fraction(0)
    if not body:
        return None
    total = Fraction(0)
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match or match.group(1) in ("", "."):
            return None
        total += Fraction(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}


@lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Fraction | None:
    """Kubernetes ``resource.ParseQuantity``: exact value, None when invalid."""
    if not isinstance(text, str):
        return None
    match = _QUANTITY_RE.match(text)
    if not match:
        return None
    number = Fraction(match.group(1))
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def format_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` as used by ``fmt.Sprint``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        exp = int(exponent)
        text = f"{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    return text


def sprint(value: Any) -> str:
    """``fmt.Sprint`` for JSON-like values (numbers from JSON are float64 in Go)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(sprint(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{sprint(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _go_json_value(value: Any) -> Any:
    if isinstance(value, float) and value == int(value) and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_go_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _go_json_value(v) for k, v in value.items()}
    return value


def json_dumps(value: Any) -> str:
    """``json.Marshal``: sorted keys, compact, HTML-escaped like Go."""
    text = json.dumps(_go_json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@lru_cache(maxsize=8192)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def wildcard_match(pattern: str, text: str) -> bool:
    """Kyverno's wildcard match: ``*`` any run, ``?`` exactly one character."""
    if pattern == text or pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return False
    return _wildcard_regex(pattern).fullmatch(text) is not None


def has_wildcard(text: str) -> bool:
    """True when ``text`` contains a wildcard character."""
    return "*" in text or "?" in text
