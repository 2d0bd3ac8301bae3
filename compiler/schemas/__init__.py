"""The JSON Schemas that rendered artifacts must validate against, strictly (an unknown field is an error)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource


class StrictSchema:
    """One draft 2020-12 schema, with the resources its `$ref`s name (each identified by its `$id`).

    jsonschema-rs decides whether a document validates (python-jsonschema spent most of the compile
    time of 2,000 exemptions validating them; jsonschema-rs is ~80x faster on the same documents);
    python-jsonschema's `best_match` names the field and the reason when one does not.
    """

    def __init__(self, schema: dict[str, Any], resources: Sequence[dict[str, Any]] = ()) -> None:
        registry: Registry = Registry()
        for resource in resources:
            registry = Resource.from_contents(resource) @ registry
        self.explainer = jsonschema.Draft202012Validator(schema, registry=registry)
        fast_registry = jsonschema_rs.Registry([(r["$id"], r) for r in resources]) if resources else None
        self.fast = jsonschema_rs.Draft202012Validator(schema, registry=fast_registry)

    def error(self, document: Any) -> tuple[str, str] | None:
        """(field, reason) when the document does not validate; None when it does."""
        if self.fast.is_valid(document):
            return None
        error = jsonschema.exceptions.best_match(self.explainer.iter_errors(document))
        if error is not None:
            return "/".join(str(p) for p in error.absolute_path) or "(root)", error.message
        fast = next(iter(self.fast.iter_errors(document)))  # the validators disagree: refuse all the same
        return "/".join(str(p) for p in fast.instance_path) or "(root)", fast.message
