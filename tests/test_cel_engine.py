"""Unit tests of the CEL layer: environment, values, errors, and each Kubernetes library function
(checked against the examples of the Kubernetes CEL library documentation)."""

from __future__ import annotations

import datetime as dt

import pytest

import conformance.engines.cel as celmod
from conformance.engines.cel import (
    KUBERNETES_LIBRARY_FUNCTIONS,
    CelCompileError,
    CelError,
    CelEvaluator,
    cel_equal,
    evaluator_for,
    to_cel,
    with_go_or_value,
)

EV = evaluator_for(("object", "params"))


def ev(expression: str, obj: object = None, params: object = None) -> object:
    return EV.evaluate(expression, {"object": obj, "params": params})


# --- Kubernetes library functions (examples from the Kubernetes documentation) ------------

@pytest.mark.parametrize("expression, expected", [
    ("[1, 2, 3].isSorted()", True),
    ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False),
    ("[1].isSorted()", True),
    ("[].isSorted()", True),
    ("[1, 3].sum()", 4),
    ("[1.0, 3.0].sum()", 4.0),
    ("[].sum()", 0),
    ("[1, 3].min()", 1),
    ("[1].min()", 1),
    ("[1, 3].max()", 3),
    ("[1].max()", 1),
    ("[1, 2, 2, 3].indexOf(2)", 1),
    ("['a', 'b', 'b', 'c'].indexOf('a')", 0),
    ("[1.0].indexOf(1.1)", -1),
    ("[].indexOf(0)", -1),
    ("[1, 2, 2, 3].lastIndexOf(2)", 2),
    ("['a', 'b', 'b', 'c'].lastIndexOf('b')", 2),
    ("[1.0].lastIndexOf(1.1)", -1),
    ("[].lastIndexOf(0)", -1),
])
def test_lists_library(expression: str, expected: object) -> None:
    result = ev(expression)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("expression", ["[].min()", "[].max()", "['a', 'b'].sum()", "[[1], [2]].sum()",
                                        "[1, 'a'].isSorted()"])
def test_lists_library_errors(expression: str) -> None:
    with pytest.raises(CelError):
        ev(expression)


def test_string_index_functions_still_work_beside_list_ones() -> None:
    assert ev("'abcc'.indexOf('c')") == 2
    assert ev("'abcc'.lastIndexOf('c')") == 3


@pytest.mark.parametrize("expression, expected", [
    ("sets.contains([], [])", True),
    ("sets.contains([], [1])", False),
    ("sets.contains([1, 2, 3, 4], [2, 3])", True),
    ("sets.contains([1, 2.0, 3u], [1.0, 2u, 3])", True),
    ("sets.equivalent([], [])", True),
    ("sets.equivalent([1], [1, 1])", True),
    ("sets.equivalent([1], [1u, 1.0])", True),
    ("sets.equivalent([1, 2, 3], [3u, 2.0, 1])", True),
    ("sets.intersects([1], [])", False),
    ("sets.intersects([1], [1, 2])", True),
    ("sets.intersects([[1], [2, 3]], [[1, 2], [2, 3.0]])", True),
    ("sets.contains([true], [1])", False),  # bool is never a number in CEL
])
def test_sets_library(expression: str, expected: bool) -> None:
    assert ev(expression) is expected


@pytest.mark.parametrize("expression, expected", [
    ("'abc 123'.find('[0-9]+')", "123"),
    ("'abc 123'.find('xyz')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('xyz')", []),
    ("'123 abc 456'.findAll('[0-9]+', 0)", []),
    ("'ab'.find('b\\\\z')", "b"),  # RE2's end-of-text anchor
])
def test_regex_library(expression: str, expected: object) -> None:
    assert ev(expression) == expected


def test_regex_library_rejects_a_bad_pattern() -> None:
    with pytest.raises(CelError):
        ev("'abc'.find('(')")


def test_library_functions_apply_to_dyn_values() -> None:
    obj = {"spec": {"names": ["a", "c", "b"], "allowed": ["a", "b", "c", "d"]}}
    assert ev("object.spec.names.isSorted()", obj) is False
    assert ev("sets.contains(object.spec.allowed, object.spec.names)", obj) is True
    with pytest.raises(CelError, match="overload"):
        ev("object.spec.isSorted()", obj)


def test_docstring_lists_every_library_function() -> None:
    doc = celmod.__doc__ or ""
    for name in KUBERNETES_LIBRARY_FUNCTIONS:
        assert name in doc


# --- environment and extensions -------------------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    ("'ABC'.lowerAscii()", "abc"),                     # strings
    ("['a', 'b'].join('-')", "a-b"),                   # strings
    ("object.?spec.?missing.orValue('d')", "d"),       # optional
    ("cel.bind(x, 2, x * x)", 4),                      # bindings
    ("math.greatest(1, 5, 3)", 5),                     # math
    ("base64.encode(b'a')", "YQ=="),                   # encoders
    ("[1, 2, 3].filter(x, x > 1).map(x, x * 2)", [4, 6]),
    ("[1, 2].exists_one(x, x == 2)", True),
    ("'abc'.matches('^a.c$')", True),
])
def test_extensions(expression: str, expected: object) -> None:
    assert ev(expression, {"spec": {}}) == expected


def test_unsupported_libraries_do_not_compile() -> None:
    for expression in ("quantity('1Gi').isInteger()", "url('https://x').getHost()", "isIP('1.2.3.4')"):
        with pytest.raises(CelCompileError):
            ev(expression)


def test_undeclared_variable_does_not_compile() -> None:
    with pytest.raises(CelCompileError, match="undeclared"):
        ev("request.name == 'x'")


# --- values -------------------------------------------------------------------------------

def test_null_fields_are_dropped_like_typed_decoding() -> None:
    obj = {"spec": {"hostPath": None, "list": [None, 1], "nested": {"a": None, "b": 2}}}
    assert ev("has(object.spec.hostPath)", obj) is False
    assert ev("size(object.spec.list)", obj) == 2
    assert ev("object.spec.nested", obj) == {"b": 2}
    assert to_cel(obj, drop_nulls=False)["spec"]["hostPath"] is None


def test_missing_key_is_an_error_not_false() -> None:
    with pytest.raises(CelError, match="NOT_FOUND"):
        ev("object.spec.replicas > 1", {"spec": {}})


def test_integers_stay_integers() -> None:
    obj = {"spec": {"replicas": 3}}
    assert ev("type(object.spec.replicas) == int", obj) is True
    assert ev("object.spec.replicas == 3.0", obj) is True  # heterogeneous equality, as in Kubernetes
    assert ev("object.spec.replicas < 3.5", obj) is True
    with pytest.raises(CelError):
        ev("object.spec.replicas + 0.5", obj)  # no int + double arithmetic
    assert ev("true == dyn(1)") is False


def test_json_conversion_of_yaml_values() -> None:
    value = to_cel({True: dt.date(2024, 1, 2), 7: dt.datetime(2024, 1, 2, 3, 4, 5), "big": 2**70, "t": (1, 2)})
    assert value == {"true": "2024-01-02", "7": "2024-01-02T03:04:05Z", "big": float(2**70), "t": [1, 2]}
    with pytest.raises(TypeError):
        to_cel({"s": {1, 2}})


def test_cel_equal() -> None:
    assert cel_equal(1, 1.0) and not cel_equal(True, 1) and not cel_equal("1", 1)
    assert cel_equal({"a": [1, 2.0]}, {"a": [1.0, 2]}) and not cel_equal({"a": 1}, {"b": 1})


# --- compilation and errors ---------------------------------------------------------------

def test_compile_once() -> None:
    evaluator = CelEvaluator(("object",))
    assert evaluator.compile("object.a == 1") is evaluator.compile("object.a == 1")
    with pytest.raises(CelCompileError):
        evaluator.compile("object.a ==")
    with pytest.raises(CelCompileError):  # the failure is cached too
        evaluator.compile("object.a ==")
    assert evaluator_for(("object",)) is evaluator_for(("object",))


def test_bound_activation_is_reusable() -> None:
    evaluator = CelEvaluator(("object",))
    activation = evaluator.bind({"object": {"a": 1, "b": None}})
    assert evaluator.evaluate("object.a", activation) == 1
    assert evaluator.evaluate("has(object.b)", activation) is False


@pytest.mark.parametrize("expression", ["1 / 0", "[1][3]", "object.a.b", "int('x')"])
def test_runtime_errors_raise(expression: str) -> None:
    with pytest.raises(CelError):
        ev(expression, {"a": 1})


def test_errors_are_absorbed_by_logical_operators_as_in_cel() -> None:
    assert ev("true || object.missing", {}) is True
    assert ev("object.missing || true", {}) is True
    with pytest.raises(CelError):
        ev("false || object.missing", {})


def test_nulls_in_results_keep_none_alive() -> None:
    """cel-expr-python hands out each null of a result without a reference of its own; the layer
    takes one, so thousands of null results do not drive None's reference count to zero."""
    import sys

    evaluator = evaluator_for(("object", "params"))
    for expression in ("object", "[object, 1]", '{"a": object, "b": [object]}'):
        evaluator.evaluate(expression, {"object": None, "params": None})  # compile and warm up
        before = sys.getrefcount(None)
        for _ in range(5000):
            assert evaluator.evaluate(expression, {"object": None, "params": None}) in (None, [None, 1], {"a": None, "b": [None]})
        assert sys.getrefcount(None) >= before - 100, expression


# --- cel-go's orValue on a receiver that is no optional -------------------------------------------

OBJECT = {"x": {"add": ["NET_BIND_SERVICE"], "n": 0, "m": {"k": "v"}, "s": "a.orValue(1)"}}


@pytest.mark.parametrize(("expression", "expected"), [
    # cel-go returns a receiver that is no optional unchanged (Kyverno's disallow-capabilities-strict relies on it)
    ("x.add.orValue([]).size() == 1", True),
    ("x.n.orValue(5)", 0),
    ("x.add[0].orValue('')", "NET_BIND_SERVICE"),
    ("x.m.k.orValue('z') + x.m.?missing.orValue('!')", "v!"),
    # optionals keep their meaning
    ("x.?missing.orValue([]).size()", 0),
    ("x.?m.?k.orValue('z')", "v"),
    ("x.?m.k.orValue('z')", "v"),
    ("x.m[?'missing'].orValue('z')", "z"),
    ("optional.none().orValue(3)", 3),
    ("optional.of(4).orValue(3)", 4),
    ("[1, 2][0].orValue(3)", 1),
    ("{'k': 1}.orValue(3)", {"k": 1}),
    # nested calls, in the default and in the receiver
    ("x.n.orValue(x.m.k.orValue(2))", 0),
    ("x.?m.orValue({}).k.orValue('z')", "v"),
    # text inside a string literal is no call
    ("x.s == 'a.orValue(1)'", True),
])
def test_or_value_behaves_as_in_cel_go(expression: str, expected: object) -> None:
    assert CelEvaluator(("x",)).evaluate(expression, OBJECT) == expected


def test_or_value_rewrite_leaves_optional_receivers_and_strings_alone() -> None:
    for expression in ("x.?a.?b.orValue(null)", "e.allow[?'k'].orValue([])", "'y.orValue(1)' == x.?s.orValue('')"):
        assert with_go_or_value(expression) == expression
    rewritten = with_go_or_value("x.a.orValue(1) == 1")
    assert rewritten == ("cel.bind(kupeOrValue4, x.a, type(kupeOrValue4) == optional_type ? "
                         "dyn(kupeOrValue4).orValue(1) : dyn(kupeOrValue4)) == 1")


# --- variables ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, reads", [
    ("object.spec != null", frozenset()),
    ("variables.a && variables.?b.orValue(false) && variables . c.d", frozenset({"a", "b", "c"})),
    ("variables.exists(v, v == 'a')", None),  # a macro reads every variable
    ("size(variables) > 0", None),
    ("variables['a']", None),
    ("myvariables.a == 'variables'", None),  # a string mentioning the map: read as the whole map
])
def test_variables_read_names_what_an_expression_selects(expression: str, reads: frozenset[str] | None) -> None:
    assert celmod.variables_read(expression) == reads


def test_variable_bindings_rebind_only_for_an_expression_that_selects_a_newer_variable() -> None:
    evaluator = evaluator_for(("object", "variables"))
    bindings = celmod.VariableBindings(evaluator, {"object": {"n": 1}})
    first = bindings.activation("object.n")
    bindings.add("a", evaluator.evaluate("object.n + 1", first))
    assert bindings.activation("object.n * 2") is first, "it reads no variable"
    second = bindings.activation("variables.a + 1")
    assert second is not first and evaluator.evaluate("variables.a + 1", second) == 3
    bindings.add("b", 5)
    assert bindings.activation("variables.a") is second, "a was bound already"
    assert evaluator.evaluate("variables.b", bindings.activation(None)) == 5, "None: any expression"
    assert evaluator.evaluate("variables.exists(v, v == 'b')", bindings.activation("variables.exists(v, v == 'b')"))
    bindings.add("a", 7)  # a name given twice: its latest value, as a fresh binding would give
    assert evaluator.evaluate("variables.a", bindings.activation("variables.a")) == 7
