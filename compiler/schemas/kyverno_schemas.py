"""Kyverno's CRD schemas for the Kyverno backend's parse-back, exported from cloudcoil-models-kyverno.

Importing the cloudcoil models takes about 2 s, longer than a whole compile, so the compiler
validates against JSON Schemas exported from those models once and committed beside this
file. They are made strict: an unknown field is refused, where the models would drop it.
Refresh after upgrading the models: `python -m compiler.schemas.kyverno_schemas`;
tests/test_kyverno_schemas.py fails while the committed files differ from the installed models.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "kyverno"
MODELS = {  # file stem → (cloudcoil module, model): the kinds the backend emits
    "clusterpolicy": ("v1", "ClusterPolicy"),
    "policyexception": ("v2", "PolicyException"),
}


def strict(node: Any) -> Any:
    """Refuse unknown fields in every object schema that lists its properties."""
    if isinstance(node, dict):
        node = {key: strict(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(item) for item in node]
    return node


def generate() -> dict[str, str]:
    """The schema files' text, from the installed cloudcoil-models-kyverno."""
    files = {}
    for stem, (module, model) in MODELS.items():
        models = importlib.import_module(f"cloudcoil.models.kyverno.{module}")
        schema = strict(getattr(models, model).model_json_schema(by_alias=True, mode="validation"))
        files[f"{stem}.schema.json"] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    return files


if __name__ == "__main__":
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in generate().items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")
