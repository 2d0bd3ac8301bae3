"""The quick construction of YAML documents builds exactly what PyYAML's safe loader builds."""

from __future__ import annotations

import yaml

from compiler.render import parse_yaml
from conformance.yamlio import LineDict, YamlProblem, documents

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


def test_unhashable_keys_are_the_loaders_error() -> None:
    (problem,) = documents("? [a, b]\n: c\n")
    assert isinstance(problem, YamlProblem) and "unhashable" in problem.message
