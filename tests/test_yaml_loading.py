"""The quick construction of YAML documents builds exactly what PyYAML's safe loader builds."""

from __future__ import annotations

import json

import pytest
import yaml

from compiler.render import parse_yaml
from conformance.yamlio import LineDict, YamlProblem, documents, json_documents

SAMPLES = [
    "a: 1\nb: [x, 'y', 2.5, true, null, ~, 0x1F, 1_000, .inf, 2024-01-02]\nc: {d: {e: f}}\n",
    "when: 2024-01-02T03:04:05Z\nbin: !!binary aGVsbG8=\nset: !!set {a, b}\nstr: !!str 12\nint: !!int '7'\n",
    "base: {x: 1}\nmerged:\n  <<: {x: 2, y: 3}\n  z: 4\n",
    "dup: 1\ndup: 2\nempty: {}\nlist: []\n'quoted key': \"v\"\n? complex\n: value\n",
    "- a\n- {b: [c, {d: e}]}\n",
    "'1': one\n1: int one\ntrue: yes\n",
    "",
    "plain scalar document",
]


def test_rendered_artifacts_load_as_with_the_safe_loader() -> None:
    for text in SAMPLES:
        expected = [d for d in yaml.safe_load_all(text) if d is not None]
        assert parse_yaml(text) == expected, text


def test_audit_documents_load_as_with_the_safe_loader_and_keep_lines() -> None:
    for text in SAMPLES:
        expected = [d for d in yaml.safe_load_all(text) if d is not None]
        assert list(documents(text)) == expected, text
    first, second = documents("a: 1\n---\n# comment\nb:\n  c: 2\n")
    assert isinstance(first, LineDict) and first.line == 1
    assert isinstance(second, LineDict) and second.line == 4 and second["b"].line == 5


STREAM = "a: 1\n---\n# comment\nb:\n  c: [2, {d: 3}]\n...\n%YAML 1.1\n---\n- e\n- f: {g: h}\n---\n---\nlast: 2026-11-01\n"


def test_a_stream_is_cut_into_documents_where_yaml_ends_and_starts_them() -> None:
    """Directives belong to the document after them, and `...` ends the one before it."""
    loaded = list(documents(STREAM))
    assert loaded == [d for d in yaml.safe_load_all(STREAM) if d is not None]
    first, second, items, last = loaded
    assert (first.line, second.line, second["b"].line, items[1].line, last.line) == (1, 4, 5, 10, 13)


def test_a_bad_document_costs_only_itself() -> None:
    first, problem, last = documents("a: 1\n...\n---\nb: [2\n---\nc: 3\n")
    assert first == {"a": 1} and first.line == 1 and last == {"c": 3} and last.line == 6
    assert isinstance(problem, YamlProblem) and problem.line == 5


def test_unhashable_keys_are_the_loaders_error() -> None:
    (problem,) = documents("? [a, b]\n: c\n")
    assert isinstance(problem, YamlProblem) and "unhashable" in problem.message


TRICKY = ["yes", "No", "ON", "y", "null", "~", "", " lead", "trail ", "a: b", "#x", "- x", "1e3", "0x10", "0o7", "1_000",
          "2026-11-01", ".inf", "NaN", "=", "'q'", '"d"', "multi\nline", "tab\there", "ünï", "*alias", "&anchor", "!tag",
          "{x}", "[y]", "%dir", "@at", "`tick", "---", "...", "plain-word", "a.b/c_d"]
SCALARS: list[object] = [*TRICKY, 0, -7, 2**40, 1.5, -0.25, 1234.5, True, False, None]


def _shapes() -> list[object]:
    """Nested data of every shape `to_yaml` writes: mappings and lists, empty and not, in each other."""
    keyed = {key: value for key, value in zip(TRICKY, SCALARS[len(TRICKY):] * 5)}
    return [*SCALARS, {}, [], keyed, list(SCALARS), {"a": {}, "b": [], "c": [[], {}], "d": [{"e": [1, {"f": None}]}, [["g"]]]},
            [{"yes": "no", "list": ["1e3", {"x": []}]}, [], [{}]], {k: [k, {k: k}] for k in TRICKY}]


def test_data_written_as_yaml_reads_back_as_the_same_data_of_the_same_types() -> None:
    from compiler.render import to_yaml

    for value in _shapes():
        for indent in (0, 4):
            text = to_yaml(value, indent)
            read = yaml.safe_load(f"root:\n{text}" if indent and isinstance(value, (dict, list)) and value else text)
            read = read["root"] if indent and isinstance(value, (dict, list)) and value else read
            assert read == value and json.dumps(read, sort_keys=True) == json.dumps(value, sort_keys=True), text


def test_a_scalar_yaml_would_read_differently_is_refused() -> None:
    from compiler.errors import ArtifactError
    from compiler.render import to_yaml

    with pytest.raises(ArtifactError, match="reads back differently"):
        to_yaml({"limit": 1e20})  # JSON writes 1e+20; PyYAML reads that as a string


JSON_SAMPLES = [
    '{"apiVersion": "v1", "kind": "List", "items": [\n  {"kind": "Pod", "metadata": {"name": "a"}},\n'
    '  {"kind": "Pod",\n   "metadata": {"name": "b { [ \\" ] }", "labels": {}}, "spec": {"containers": [{}, {"n": [1, {"x": "}"}]}]}}\n]}\n',
    '[{"a": 1}, [], [[{"b": "\\\\"}]], {"c": {"d": {"e": null}}}]',
    '{}',
    '"just a string"',
]


def _lines(value: object) -> list[object]:
    if isinstance(value, dict):
        return [getattr(value, "line", None), *(line for item in value.values() for line in _lines(item))]
    if isinstance(value, list):
        return [line for item in value for line in _lines(item)]
    return []


def test_json_is_read_as_json_with_every_object_on_the_line_yaml_gives_it() -> None:
    for text in JSON_SAMPLES:
        (as_json,), (as_yaml,) = list(json_documents(text)), list(documents(text))
        assert as_json == as_yaml == json.loads(text) and _lines(as_json) == _lines(as_yaml), text
    (number,) = json_documents('{"replicas": 1e3}')
    assert number == {"replicas": 1000.0}, "JSON reads 1e3 as a number (YAML 1.1 would read a string)"


def test_json_problems_name_their_line() -> None:
    from conformance.yamlio import MAX_DEPTH

    assert list(json_documents('{"a": 1,\n "b": }')) == [YamlProblem(2, "invalid JSON: Expecting value")]
    assert list(json_documents('{"a": NaN}')) == [YamlProblem(1, "invalid JSON: NaN is not JSON")]
    deep = "{\n" + '"a": [' * MAX_DEPTH + "]" * MAX_DEPTH + "}"
    assert list(json_documents(deep)) == [YamlProblem(2, f"nesting deeper than {MAX_DEPTH} levels")]
