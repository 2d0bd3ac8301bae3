"""Kyverno's CRD schemas for the Kyverno backends' parse-back, exported from cloudcoil-models-kyverno.

Importing the cloudcoil models takes about 2 s, longer than a whole compile, so the compiler
validates against JSON Schemas exported from those models once and committed beside this
file. They are made strict: an unknown field is refused, where the models would drop it.

Two releases of the models are the sources, one per Kyverno API:
- `kyverno.io` (ClusterPolicy v1, PolicyException v2): cloudcoil-models-kyverno 1.13.4.0, the
  test extra, so tests/test_kyverno_schemas.py checks the committed files against it;
- `policies.kyverno.io/v1` (ValidatingPolicy, PolicyException with `expiresAt`): 1.19.0.1, the
  first release with that API and `expiresAt`, which requires Python >= 3.14; the drift test
  skips those files under an older Python. Refresh them with that interpreter:
  `pip install cloudcoil-models-kyverno==1.19.0.1 && python -m compiler.schemas.kyverno_schemas
  validatingpolicy policyexception-v1`.
Refresh the others after upgrading the 1.13 models: `python -m compiler.schemas.kyverno_schemas
clusterpolicy policyexception`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "kyverno"
MODELS = {  # file stem → (cloudcoil module, model): the kinds the backends emit
    "clusterpolicy": ("v1", "ClusterPolicy"),
    "policyexception": ("v2", "PolicyException"),
    "validatingpolicy": ("policies.v1", "ValidatingPolicy"),
    "policyexception-v1": ("policies.v1", "PolicyException"),
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


def generate(stems: list[str]) -> dict[str, str]:
    """The text of the schema files `stems`, from the installed cloudcoil-models-kyverno."""
    files = {}
    for stem in stems:
        module, model = MODELS[stem]
        models = importlib.import_module(f"cloudcoil.models.kyverno.{module}")
        schema = strict(getattr(models, model).model_json_schema(by_alias=True, mode="validation"))
        files[f"{stem}.schema.json"] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    return files


if __name__ == "__main__":
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in generate(sys.argv[1:] or list(MODELS)).items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")
