"""An object's metadata read as Kubernetes' unstructured accessors read it (GetName, GetLabels, ...).

Why: engines meet raw objects (offline tools, the conformance suite's refused shapes) whose
`metadata` is a string, or whose labels are a list. Go's accessors give the zero value for a field
of the wrong type instead of failing; the emulators read metadata through this one function so
they do the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_STRINGS = ("name", "namespace", "generateName")
_MAPS = ("labels", "annotations")


def object_meta(obj: Any) -> dict[str, Any]:
    """`metadata` with its string fields as strings ("" otherwise) and its labels and annotations as
    string maps ({} otherwise); other fields as they are."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(metadata, Mapping):
        return {}
    meta = dict(metadata)
    for key in _STRINGS:
        if key in meta and not isinstance(meta[key], str):
            meta[key] = ""
    for key in _MAPS:
        if key in meta and not (isinstance(meta[key], Mapping) and all(isinstance(v, str) for v in meta[key].values())):
            meta[key] = {}
    return meta
