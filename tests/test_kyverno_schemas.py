"""The committed Kyverno CRD schemas are the installed cloudcoil models' schemas, made strict."""

from __future__ import annotations

import importlib

import pytest

from compiler.schemas.kyverno_schemas import MODELS, SCHEMA_DIR, generate, strict


@pytest.mark.parametrize("stem", MODELS)
def test_committed_schemas_match_the_installed_models(stem: str) -> None:
    pytest.importorskip("cloudcoil.models.kyverno", reason="cloudcoil-models-kyverno is a test dependency")
    module = MODELS[stem][0]
    try:
        importlib.import_module(f"cloudcoil.models.kyverno.{module}")
    except (ImportError, SyntaxError, NameError) as error:
        pytest.skip(f"{stem}: the installed cloudcoil-models-kyverno has no importable {module} ({error!r}); "
                    "policies.kyverno.io/v1 comes with 1.19.0.1, which needs Python >= 3.14")
    for name, text in generate([stem]).items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m compiler.schemas.kyverno_schemas {stem}")


def test_strict_refuses_unknown_properties_everywhere() -> None:
    schema = strict({"properties": {"a": {"anyOf": [{"properties": {"b": {}}}]}}, "$defs": {"X": {"properties": {}}}})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["anyOf"][0]["additionalProperties"] is False
    assert schema["$defs"]["X"]["additionalProperties"] is False
