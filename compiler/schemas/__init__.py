"""The JSON Schemas that rendered artifacts must validate against, strictly (an unknown field is an error)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs


class StrictSchema:
    """One draft 2020-12 schema, with the resources its `$ref`s name (each identified by its `$id`).

    jsonschema-rs decides whether a document validates (python-jsonschema spent most of the compile
    time of 2,000 exemptions validating them; jsonschema-rs is ~80x faster on the same documents);
    python-jsonschema's `best_match` names the field and the reason when one does not.
    """

    def __init__(self, schema: dict[str, Any], resources: Sequence[dict[str, Any]] = ()) -> None:
        self.schema, self.resources = schema, tuple(resources)
        registry = jsonschema_rs.Registry([(r["$id"], r) for r in resources]) if resources else None
        self.fast = jsonschema_rs.Draft202012Validator(schema, registry=registry)

    @cached_property
    def explainer(self) -> Any:
        """python-jsonschema's validator, built (and imported) only to explain a failure."""
        import jsonschema
        from referencing import Registry, Resource

        registry: Registry = Registry()
        for resource in self.resources:
            registry = Resource.from_contents(resource) @ registry
        return jsonschema.Draft202012Validator(self.schema, registry=registry)

    def error(self, document: Any) -> tuple[str, str] | None:
        """(field, reason) when the document does not validate; None when it does."""
        if self.fast.is_valid(document):
            return None
        from jsonschema.exceptions import best_match

        error = best_match(self.explainer.iter_errors(document))
        if error is not None:
            return "/".join(str(p) for p in error.absolute_path) or "(root)", error.message
        fast = next(iter(self.fast.iter_errors(document)))  # the validators disagree: refuse all the same
        return "/".join(str(p) for p in fast.instance_path) or "(root)", fast.message


_RELEASE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$")


@cache
def kubernetes_schema(version: str, name: str) -> Any:
    """One strict JSON Schema file that kubernetes-validate ships for the newest patch release of
    Kubernetes `version` (major.minor), from where the package is installed, without
    importing it: it imports python-jsonschema, a tenth of the time of a small compile. Each file is
    read once and shared: callers must not modify it."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("kubernetes-validate is not installed")
    root = Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema"
    releases = sorted((tuple(map(int, m.groups())), entry) for entry in root.iterdir() if (m := _RELEASE.match(entry.name)))
    wanted = tuple(map(int, version.split(".")))
    folders = [entry for release, entry in releases if release[:2] == wanted]
    if not folders:
        raise ValueError(f"kubernetes-validate ships no schemas for Kubernetes {version}")
    return json.loads((folders[-1] / name).read_text())
