"""The JSON Schemas that rendered artifacts must validate against, strictly (an unknown field is an error)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
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
