"""The committed Kyverno CRD schemas are the installed cloudcoil models' schemas, made strict."""

from __future__ import annotations

import pytest

from compiler.schemas.kyverno_schemas import SCHEMA_DIR, generate, strict


def test_committed_schemas_match_the_installed_models() -> None:
    pytest.importorskip("cloudcoil.models.kyverno", reason="cloudcoil-models-kyverno is a test dependency")
    for name, text in generate().items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m compiler.schemas.kyverno_schemas")


def test_strict_refuses_unknown_properties_everywhere() -> None:
    schema = strict({"properties": {"a": {"anyOf": [{"properties": {"b": {}}}]}}, "$defs": {"X": {"properties": {}}}})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["anyOf"][0]["additionalProperties"] is False
    assert schema["$defs"]["X"]["additionalProperties"] is False
