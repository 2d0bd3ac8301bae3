"""A thin CEL evaluation layer over the CEL C++ runtime (cel-expr-python), shaped like Kubernetes.

Why it exists: the conformance harness must evaluate the CEL our backends emit with a real CEL
runtime, in an environment as close as possible to the one the Kubernetes API server builds for
ValidatingAdmissionPolicy (and that Gatekeeper's K8sNativeValidation engine reuses). It knows
nothing about admission: callers choose the variable names and bind the values.

Environment
    Every variable is declared ``dyn`` (the API server type-checks against OpenAPI schemas; we do
    not, so a misspelt field is a runtime NOT_FOUND error here, a compile error there).
    Extensions: strings, optional (``?.``, ``orValue``), bindings (``cel.bind``), math, encoders.
    Heterogeneous numeric equality and ordering (``1 == 1.0``, ``1 < 1.5``) behave as in Kubernetes.

Kubernetes CEL library functions implemented here (the runtime lacks them), each to the
Kubernetes CEL documentation:
    lists:  ``<list>.isSorted()``, ``<list>.sum()``, ``<list>.min()``, ``<list>.max()``,
            ``<list>.indexOf(x)``, ``<list>.lastIndexOf(x)``
            (sum/min/max of durations or timestamps are not supported: the Python bridge cannot
            return them from a ``dyn`` function)
    sets:   ``sets.contains(a, b)``, ``sets.equivalent(a, b)``, ``sets.intersects(a, b)``
    regex:  ``<string>.find(re)``, ``<string>.findAll(re)``, ``<string>.findAll(re, limit)``
            (Python ``re`` stands in for RE2; the common syntax agrees, ``\\z`` is translated)
Not available (using one is a compile error, a CelCompileError): quantity, url, ip/cidr, format,
authorizer, and the ``strings`` additions newer than the runtime's extension.

Values
    ``to_cel`` turns decoded JSON/YAML into what the API server would show CEL: map keys holding
    null are dropped recursively (typed decoding never keeps a null field, and ``has()`` is true on
    a null here), list elements are kept, integers stay ``int`` (beyond int64 they become double,
    as Go's JSON decoding does), YAML dates become RFC 3339 strings. Not emulated: defaulting and
    the dropping of empty ``omitempty`` fields (``hostNetwork: false`` is still visible here).

cel-go's ``orValue`` on a value that is not an optional
    cel-go (as Kubernetes and Kyverno build it) returns such a receiver unchanged:
    ``container.securityContext.capabilities.add.orValue([])`` is the list. The CEL C++ runtime
    has no such overload ("No matching overloads found : orValue"), and its Python bridge cannot
    take an optional argument, so ``with_go_or_value`` rewrites each call whose receiver is not
    syntactically optional into ``cel.bind(v, <receiver>, type(v) == optional_type ?
    dyn(v).orValue(<default>) : dyn(v))`` before compiling: the receiver is evaluated once, as in cel-go.
    A receiver whose last links are optional selections (``.?f``, ``[?k]``) is left as written
    (our own CEL calls ``orValue`` only there).

Errors
    Runtime errors (missing map key, no matching overload, division by zero, ...) raise
    ``CelError``; expressions that do not compile raise ``CelCompileError`` (a ``CelError``). The
    API server turns both into failurePolicy outcomes; so do our callers.

Cost
    Kubernetes bounds each expression by a static and a runtime cost budget (per expression and
    per admission call). They are not emulated: an expression that Kubernetes would reject as too
    expensive is evaluated here.

Each expression is compiled once per evaluator (cached by its text); evaluators are cached by
their variable names (``evaluator_for``).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

__all__ = [
    "CelCompileError",
    "CelError",
    "CelEvaluator",
    "KUBERNETES_LIBRARY_FUNCTIONS",
    "cel_equal",
    "evaluator_for",
    "to_cel",
]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class CelError(Exception):
    """A CEL expression failed to evaluate (the API server's evaluation error)."""


class CelCompileError(CelError):
    """A CEL expression does not compile in this environment."""


# --- values -------------------------------------------------------------------------------


def to_cel(value: Any, *, drop_nulls: bool = True) -> Any:
    """Convert decoded JSON/YAML into the value the API server would hand to CEL."""
    if value is None or isinstance(value, (bool, str, float, bytes)):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else float(value)
    if isinstance(value, Mapping):
        return {
            _json_key(k): to_cel(v, drop_nulls=drop_nulls)
            for k, v in value.items()
            if not (drop_nulls and v is None)
        }
    if isinstance(value, (list, tuple)):
        return [to_cel(v, drop_nulls=drop_nulls) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot convert {type(value).__name__} to a CEL value")


def _json_key(key: Any) -> str:
    """JSON object keys are strings; YAML may decode `on:` or `1:` keys as bool or int."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return key if isinstance(key, str) else str(key)


def cel_equal(a: Any, b: Any) -> bool:
    """CEL equality on plain values: numbers compare across int/double, bool is never a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        return all(any(cel_equal(k, k2) and cel_equal(v, b[k2]) for k2 in b) for k, v in a.items())
    return type(a) is type(b) and a == b


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# --- Kubernetes library: lists ----------------------------------------------------------------


def _comparable_kind(x: Any) -> str:
    """The ordering family of a value; ints and doubles order together, as in Kubernetes."""
    if _is_number(x):
        return "number"
    for kind, types in (("bool", bool), ("string", str), ("bytes", bytes),
                        ("timestamp", dt.datetime), ("duration", dt.timedelta)):
        if isinstance(x, types):
            return kind
    raise ValueError(f"no such overload: {type(x).__name__} is not comparable")


def _check_comparable(items: list[Any]) -> None:
    kinds = {_comparable_kind(x) for x in items}
    if len(kinds) > 1:
        raise ValueError("no such overload: list elements of different types are not comparable")


def _list_is_sorted(items: list[Any]) -> bool:
    _check_comparable(items)
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _list_sum(items: list[Any]) -> Any:
    if not items:
        return 0
    kinds = {type(x) for x in items}
    if len(kinds) != 1 or not (kinds <= {int, float}):
        raise ValueError("no such overload: sum() needs a list of int or of double")
    return sum(items)


def _list_min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    _check_comparable(items)
    return min(items)


def _list_max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    _check_comparable(items)
    return max(items)


def _list_index_of(items: list[Any], x: Any) -> int:
    return next((i for i, v in enumerate(items) if cel_equal(v, x)), -1)


def _list_last_index_of(items: list[Any], x: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if cel_equal(items[i], x)), -1)


# --- Kubernetes library: sets -------------------------------------------------------------------


def _sets_contains(a: list[Any], b: list[Any]) -> bool:
    return all(any(cel_equal(x, y) for y in a) for x in b)


def _sets_equivalent(a: list[Any], b: list[Any]) -> bool:
    return _sets_contains(a, b) and _sets_contains(b, a)


def _sets_intersects(a: list[Any], b: list[Any]) -> bool:
    return any(any(cel_equal(x, y) for y in b) for x in a)


# --- Kubernetes library: regex ------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern with Python's engine (RE2's `\\z` is Python's `\\Z`)."""
    try:
        return re.compile(re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern))
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None


def _regex_find(s: str, pattern: str) -> str:
    m = _regex(pattern).search(s)
    return m.group(0) if m else ""


def _regex_find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = [m.group(0) for m in _regex(pattern).finditer(s)]
    return found if limit < 0 else found[:limit]


# --- environment ------------------------------------------------------------------------------

_T = cel.Type
_LIST = _T.List(_T.DYN)


def _member(oid: str, ret: cel.Type, params: list[cel.Type], impl: Any) -> cel.Overload:
    return cel.Overload(oid, ret, params, is_member=True, impl=impl)


# name -> overloads; the names are also the list in the module docstring.
_LIBRARY: dict[str, list[cel.Overload]] = {
    "isSorted": [_member("k8s_list_is_sorted", _T.BOOL, [_LIST], _list_is_sorted)],
    "sum": [_member("k8s_list_sum", _T.DYN, [_LIST], _list_sum)],
    "min": [_member("k8s_list_min", _T.DYN, [_LIST], _list_min)],
    "max": [_member("k8s_list_max", _T.DYN, [_LIST], _list_max)],
    "indexOf": [_member("k8s_list_index_of", _T.INT, [_LIST, _T.DYN], _list_index_of)],
    "lastIndexOf": [_member("k8s_list_last_index_of", _T.INT, [_LIST, _T.DYN],
                            _list_last_index_of)],
    "sets.contains": [cel.Overload("k8s_sets_contains", _T.BOOL, [_LIST, _LIST], impl=_sets_contains)],
    "sets.equivalent": [cel.Overload("k8s_sets_equivalent", _T.BOOL, [_LIST, _LIST],
                                     impl=_sets_equivalent)],
    "sets.intersects": [cel.Overload("k8s_sets_intersects", _T.BOOL, [_LIST, _LIST],
                                     impl=_sets_intersects)],
    "find": [_member("k8s_string_find", _T.STRING, [_T.STRING, _T.STRING], _regex_find)],
    "findAll": [
        _member("k8s_string_find_all", _T.List(_T.STRING), [_T.STRING, _T.STRING],
                _regex_find_all),
        _member("k8s_string_find_all_n", _T.List(_T.STRING),
                [_T.STRING, _T.STRING, _T.INT], _regex_find_all),
    ],
}

KUBERNETES_LIBRARY_FUNCTIONS: tuple[str, ...] = tuple(_LIBRARY)


def _new_env(variables: tuple[str, ...]) -> cel.Env:
    # The Kubernetes library goes in as an extension placed after `strings`: that merges
    # list `indexOf`/`lastIndexOf` with the strings overloads of the same names.
    k8s = cel.CelExtension("kubernetes", [cel.FunctionDecl(n, o) for n, o in _LIBRARY.items()])
    return cel.NewEnv(
        variables={name: _T.DYN for name in variables},
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            ext_bindings.ExtBindings(),
            ext_math.ExtMath(),
            ext_encoders.ExtEncoders(),
            k8s,
        ],
    )


class CelEvaluator:
    """Compiles each expression once and evaluates it against bound variables.

    `variables` names what expressions may reference; all are `dyn`. An expression naming
    anything else does not compile (as `params` does not in a VAP without `paramKind`).
    """

    def __init__(self, variables: Iterable[str] = ("object", "oldObject", "request", "params",
                                                   "namespaceObject", "variables")) -> None:
        self.variables = tuple(variables)
        self._env = _new_env(self.variables)
        self._programs: dict[str, cel.Expression | CelCompileError] = {}

    def compile(self, expression: str) -> cel.Expression:
        """The compiled program for `expression` (cached, compile errors included)."""
        program = self._programs.get(expression)
        if program is None:
            try:
                program = self._env.compile(with_go_or_value(expression))
            except RuntimeError as exc:
                program = CelCompileError(f"compilation failed: {_clean(str(exc))}")
            self._programs[expression] = program
        if isinstance(program, CelCompileError):
            raise program
        return program

    def bind(self, data: Mapping[str, Any], *, normalise: bool = True) -> cel.Activation:
        """An activation for `data`, reusable across expressions. Normalises values with `to_cel`
        unless the caller already did (values computed by CEL must keep their nulls)."""
        values = {k: to_cel(v) for k, v in data.items()} if normalise else dict(data)
        return self._env.Activation(data=values)

    def evaluate(self, expression: str, activation: Mapping[str, Any] | cel.Activation) -> Any:
        """Evaluate to a plain Python value; raise CelError on any evaluation error."""
        program = self.compile(expression)
        if isinstance(activation, Mapping):
            activation = self.bind(activation)
        try:
            value = program.eval(activation)
        except RuntimeError as exc:  # the runtime reports some failures by raising
            raise CelError(_clean(str(exc))) from None
        if value.type() == _T.ERROR:
            raise CelError(_clean(str(value.plain_value())))
        if value.type() == _T.NULL:
            return None
        return _owned_nulls(value.plain_value())


# --- variables -------------------------------------------------------------------------------

_SELECTED_VARIABLE = re.compile(r"\bvariables\b(?:\s*\.\s*\??\s*([_a-zA-Z][_a-zA-Z0-9]*)\b(?!\s*\())?")


@functools.cache
def variables_read(expression: str) -> frozenset[str] | None:
    """The variables an expression selects by name (`variables.x`, `variables.?x`); None when it
    reads the `variables` map any other way (a macro, a size, an index, the bare map)."""
    names = set()
    for match in _SELECTED_VARIABLE.finditer(expression):
        if match.group(1) is None:
            return None
        names.add(match.group(1))
    return frozenset(names)


class VariableBindings:
    """Activations for evaluating variables in order (each reads only the ones before it).

    Binding converts every value into CEL again on first use (about 20 µs for a pod), so an
    activation is rebuilt only when an expression may select a variable evaluated since the
    current one was bound; for any other expression the current one reads the same."""

    def __init__(self, evaluator: CelEvaluator, data: Mapping[str, Any]) -> None:
        self.evaluator = evaluator
        self.data = data
        self.values: dict[str, Any] = {}  # the variables evaluated so far
        self._activation: cel.Activation | None = None
        self._bound: set[str] = set()  # the variables the current activation holds, as they are now

    def add(self, name: str, value: Any) -> None:
        """A variable's value (a name given twice takes its latest value, as a fresh binding would)."""
        self.values[name] = value
        self._bound.discard(name)

    def activation(self, expression: str | None) -> cel.Activation:
        """An activation in which `expression` (None: any) reads every variable evaluated so far."""
        unbound = self.values.keys() - self._bound
        reads = None if expression is None else variables_read(expression)
        if self._activation is None or (unbound and (reads is None or not reads.isdisjoint(unbound))):
            self._activation = self.evaluator.bind({**self.data, "variables": dict(self.values)}, normalise=False)
            self._bound = set(self.values)
        return self._activation


# --- cel-go's orValue on a non-optional --------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<string>[rRbB]{0,2}(?:"{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<name>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_BOUND = "kupeOrValue"  # the names the rewrite binds (a receiver that is one is done)


def _tokens(expression: str) -> list[re.Match[str]]:
    return [m for m in _TOKEN.finditer(expression) if m.lastgroup != "space"]


def _partners(tokens: list[str]) -> dict[int, int]:
    """Index of each bracket token → index of its partner (an unbalanced text maps nothing)."""
    partners: dict[int, int] = {}
    stack: list[int] = []
    for i, token in enumerate(tokens):
        if token in "([{":
            stack.append(i)
        elif token in ")]}" and stack:
            j = stack.pop()
            partners[i], partners[j] = j, i
    return partners


def _receiver(tokens: list[str], partners: dict[int, int], end: int) -> tuple[int, bool]:
    """Where the member chain that ends before token `end` begins, and whether it is optional:
    an optional selection (`.?f`, `[?k]`) comes after its last call."""
    i, optional, called = end - 1, False, False
    while i >= 0:
        token = tokens[i]
        if token == "}" and i in partners:
            return partners[i], optional  # a map literal
        if token in ")]" and i in partners:
            opening = partners[i]
            optional = optional or (token == "]" and not called and tokens[opening + 1] == "?")
            called = called or token == ")"
            i = opening - 1
            if token == "]":
                continue  # an index: its operand comes right before it
            if i < 0 or not _NAME.fullmatch(tokens[i]):
                return opening, optional  # a parenthesised primary
            i -= 1  # the called function's name
        elif _NAME.fullmatch(token) or token[-1] in "\"'":
            if i >= 2 and tokens[i - 1] == "?" and tokens[i - 2] == ".":
                optional = optional or not called
                i -= 1
            i -= 1
        else:
            return i + 1, optional
        if i < 0 or tokens[i] != ".":
            return i + 1, optional
        i -= 1
    return 0, optional


def with_go_or_value(expression: str) -> str:
    """`expression` with each `<receiver>.orValue(<default>)` whose receiver is not syntactically
    optional guarded so that a receiver that is no optional is returned unchanged (cel-go)."""
    while "orValue" in expression:
        matches = _tokens(expression)
        tokens = [m.group(0) for m in matches]
        partners = _partners(tokens)
        for i in range(1, len(tokens) - 1):
            if tokens[i] != "orValue" or tokens[i - 1] != "." or tokens[i + 1] != "(" or i + 1 not in partners:
                continue
            start, optional = _receiver(tokens, partners, i - 1)
            if optional or start >= i - 1 or "".join(tokens[start:i - 1]).startswith(f"dyn({_BOUND}"):
                continue  # an optional, or a call this rewrite wrote
            bound = f"{_BOUND}{i}"
            receiver = expression[matches[start].start():matches[i - 1].start()]
            default = expression[matches[i + 1].end():matches[partners[i + 1]].start()]
            guarded = (f"cel.bind({bound}, {receiver}, type({bound}) == optional_type ? "
                       f"dyn({bound}).orValue({default}) : dyn({bound}))")
            expression = expression[:matches[start].start()] + guarded + expression[matches[partners[i + 1]].end():]
            break
        else:
            return expression
    return expression


def _owned_nulls(value: Any) -> Any:
    """`value` after taking the references to None that `plain_value()` hands out without owning.

    cel-expr-python 0.1.3 returns each null of a result (at top level, or in a list or map) as a
    None it has not incremented: every such evaluation lowers None's reference count by one, and
    after some thousands the interpreter aborts (`none_dealloc`). Measured in docs/engine-notes.md
    and pinned by tests/test_cel_engine.py.
    """
    nulls = _count_nulls(value)
    for _ in range(nulls):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return value


def _count_nulls(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, dict):
        return sum(_count_nulls(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_nulls(v) for v in value)
    return 0


def _clean(message: str) -> str:
    return " ".join(message.split())


@functools.lru_cache(maxsize=16)
def evaluator_for(variables: tuple[str, ...]) -> CelEvaluator:
    """A shared evaluator per variable set, so compile caches survive across callers."""
    return CelEvaluator(variables)
