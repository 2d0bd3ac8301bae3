"""Kyverno's custom JMESPath functions on top of the reference ``jmespath`` package.

Only functions whose semantics are clear without a cluster are provided (string,
regex, wildcard, label, arithmetic with quantities/durations, JSON/YAML/base64).
Time, x509, image and random functions are deliberately absent: a policy using them
fails with an "unknown function" error rather than a guessed verdict.
"""

from __future__ import annotations

import base64
import json
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

import jmespath
import yaml
from jmespath import functions
from jmespath.exceptions import JMESPathError

from .gotypes import format_float, parse_duration, parse_quantity, wildcard_match

_STR_OR_NUM = {"types": ["string", "number"]}


class FunctionError(JMESPathError):
    """A Kyverno function was called with operands it rejects."""


def _operand(value: Any) -> tuple[str, Fraction]:
    """Classify an arithmetic operand as number, quantity or duration."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number", Fraction(value)
    if isinstance(value, str):
        quantity = parse_quantity(value)
        if quantity is not None:
            return "quantity", quantity
        duration = parse_duration(value)
        if duration is not None:
            return "duration", duration
    raise FunctionError(f"invalid arithmetic operand {value!r}")


def _number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _format_duration(seconds: Fraction) -> str:
    nanos = int(seconds * 10**9)
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    hours, rest = divmod(nanos, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs = Fraction(rest, 10**9)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + text + f"{format_float(float(secs))}s"


def _format_quantity(value: Fraction) -> str:
    for suffix, factor in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value != 0 and (value / factor).denominator == 1:
            return f"{int(value / factor)}{suffix}"
    if value.denominator == 1:
        return str(int(value))
    milli = value * 1000
    if milli.denominator == 1:
        return f"{int(milli)}m"
    return format_float(float(value))


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    (lkind, lval), (rkind, rval) = _operand(left), _operand(right)
    if op in ("add", "subtract"):
        if lkind != rkind:
            raise FunctionError(f"{op}: operands of different types")
        result = lval + rval if op == "add" else lval - rval
        return {"number": _number, "quantity": _format_quantity, "duration": _format_duration}[lkind](result)
    if op == "multiply":
        if lkind != "number" and rkind != "number":
            raise FunctionError("multiply: at least one operand must be a number")
        kind = lkind if lkind != "number" else rkind
        result = lval * rval
        return {"number": _number, "quantity": _format_quantity, "duration": _format_duration}[kind](result)
    if rval == 0:
        raise FunctionError(f"{op}: division by zero")
    if op == "divide":
        if lkind == rkind:
            return _number(lval / rval)
        if rkind != "number":
            raise FunctionError("divide: divisor must be a number or of the dividend's type")
        return {"quantity": _format_quantity, "duration": _format_duration}[lkind](lval / rval)
    if lkind != rkind:
        raise FunctionError("modulo: operands of different types")
    result = lval - rval * int(lval / rval)
    return {"number": _number, "quantity": _format_quantity, "duration": _format_duration}[lkind](result)


@lru_cache(maxsize=1024)
def _regex(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else format_float(float(value))


class KyvernoFunctions(functions.Functions):
    """Custom functions registered under Kyverno's names."""

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_compare(self, a: str, b: str) -> int:
        return (a > b) - (a < b)

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_equal_fold(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold()

    @functions.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]}, {"types": ["number"]})
    def _func_replace(self, text: str, old: str, new: str, count: float) -> str:
        return text.replace(old, new, int(count)) if count >= 0 else text.replace(old, new)

    @functions.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace_all(self, text: str, old: str, new: str) -> str:
        return text.replace(old, new)

    @functions.signature({"types": ["string"]})
    def _func_to_upper(self, text: str) -> str:
        return text.upper()

    @functions.signature({"types": ["string"]})
    def _func_to_lower(self, text: str) -> str:
        return text.lower()

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim(self, text: str, cutset: str) -> str:
        return text.strip(cutset)

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim_prefix(self, text: str, prefix: str) -> str:
        return text[len(prefix):] if prefix and text.startswith(prefix) else text

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim_suffix(self, text: str, suffix: str) -> str:
        return text[: -len(suffix)] if suffix and text.endswith(suffix) else text

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, sep: str) -> list[str]:
        return list(text) if sep == "" else text.split(sep)

    @functions.signature({"types": ["string"]}, _STR_OR_NUM)
    def _func_regex_match(self, expression: str, value: Any) -> bool:
        return _regex(expression).search(_text(value)) is not None

    @functions.signature({"types": ["string"]}, _STR_OR_NUM, _STR_OR_NUM)
    def _func_regex_replace_all(self, expression: str, value: Any, replacement: Any) -> str:
        template = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", _text(replacement))
        return _regex(expression).sub(template, _text(value))

    @functions.signature({"types": ["string"]}, _STR_OR_NUM, _STR_OR_NUM)
    def _func_regex_replace_all_literal(self, expression: str, value: Any, replacement: Any) -> str:
        return _regex(expression).sub(lambda _: _text(replacement), _text(value))

    @functions.signature({"types": ["string"]}, _STR_OR_NUM)
    def _func_pattern_match(self, pattern: str, value: Any) -> bool:
        return wildcard_match(pattern, _text(value))

    @functions.signature({"types": ["object"]}, {"types": ["object"]})
    def _func_label_match(self, selector: dict[str, Any], labels: dict[str, Any]) -> bool:
        return all(k in labels and labels[k] == v for k, v in selector.items())

    @functions.signature(_STR_OR_NUM, _STR_OR_NUM)
    def _func_add(self, a: Any, b: Any) -> Any:
        return _arithmetic("add", a, b)

    @functions.signature(_STR_OR_NUM, _STR_OR_NUM)
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return _arithmetic("subtract", a, b)

    @functions.signature(_STR_OR_NUM, _STR_OR_NUM)
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return _arithmetic("multiply", a, b)

    @functions.signature(_STR_OR_NUM, _STR_OR_NUM)
    def _func_divide(self, a: Any, b: Any) -> Any:
        return _arithmetic("divide", a, b)

    @functions.signature(_STR_OR_NUM, _STR_OR_NUM)
    def _func_modulo(self, a: Any, b: Any) -> Any:
        return _arithmetic("modulo", a, b)

    @functions.signature({"types": ["number"]}, {"types": ["number"]})
    def _func_round(self, value: float, digits: float) -> float:
        return round(value, int(digits))

    @functions.signature({"types": ["string"]}, {"types": ["number"]})
    def _func_truncate(self, text: str, length: float) -> str:
        return text[: max(int(length), 0)]

    @functions.signature({"types": ["string"]})
    def _func_base64_decode(self, text: str) -> str:
        return base64.b64decode(text).decode()

    @functions.signature({"types": ["string"]})
    def _func_base64_encode(self, text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    @functions.signature({"types": ["string"]})
    def _func_parse_json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FunctionError(f"parse_json: {exc}") from None

    @functions.signature({"types": ["string"]})
    def _func_parse_yaml(self, text: str) -> Any:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FunctionError(f"parse_yaml: {exc}") from None

    @functions.signature({"types": ["object", "array"]}, {"types": ["string", "number"]})
    def _func_lookup(self, collection: Any, key: Any) -> Any:
        if isinstance(collection, dict):
            return collection.get(key) if isinstance(key, str) else None
        index = int(key) if not isinstance(key, str) and float(key).is_integer() else None
        return collection[index] if index is not None and 0 <= index < len(collection) else None

    @functions.signature({"types": ["array"]}, {"types": ["array"]})
    def _func_object_from_lists(self, keys: list[Any], values: list[Any]) -> dict[str, Any]:
        return {str(k): (values[i] if i < len(values) else None) for i, k in enumerate(keys)}

    @functions.signature({"types": ["object", "array"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_items(self, collection: Any, key_name: str, value_name: str) -> list[dict[str, Any]]:
        pairs = sorted(collection.items()) if isinstance(collection, dict) else list(enumerate(collection))
        return [{key_name: k, value_name: v} for k, v in pairs]


OPTIONS = jmespath.Options(custom_functions=KyvernoFunctions())


@lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Any:
    """Parse a JMESPath expression once; parsing is the expensive part."""
    return jmespath.compile(expression)


def search(expression: str, data: Any) -> Any:
    """Evaluate a JMESPath expression with Kyverno's functions available."""
    return compile_expression(expression).search(data, options=OPTIONS)
