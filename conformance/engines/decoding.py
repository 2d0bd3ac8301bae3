"""The API server's typed decoding of an object, emulated from the Kubernetes OpenAPI schemas.

Why: no admission engine ever sees a raw manifest. The API server first decodes the request body
into the kind's Go struct: a value of the wrong JSON type is refused (HTTP 400, no admission at
all), and nulls are rewritten the way Go's encoding/json leaves them. Offline, the conformance
harness and `kupe-policy audit` decode the same way before any engine runs, so their verdicts
are the cluster's (measured with the real API server: ../shared/ENGINE-NOTES.md).

What decoding does, read off the schema of the kind (kubernetes-validate's strict schemas):
- a field the schema does not know is dropped (the API server drops unknown fields, or refuses
  the whole request under `fieldValidation=Strict`: either way no engine sees the field);
- a null optional field (a Go pointer or `omitempty` field: not in the schema's `required`) is
  dropped;
- a null required field (no `omitempty`), a null map value and a null list item become the zero
  value of their Go type: `""`, `0`, `false`, a struct holding its required fields' zero values,
  the quantity `"0"` (so `resources.requests.cpu: null` is a present zero quantity, and
  `seccompProfile: {type: null}` is `{type: ""}`);
- a value of another JSON type refuses the object, and so do a number with a fraction where an
  integer is expected, an integer out of range for its format, NaN and infinities (JSON has
  neither, so no client can send them) and a quantity that does not parse;
- YAML-only values become their JSON form (timestamps → RFC 3339 strings, non-string map keys →
  strings), as `kubectl` converts YAML to JSON before sending it.

A kind of a built-in API group that this Kubernetes version does not serve (say
`extensions/v1beta1` DaemonSet) is refused; a kind of any other group is a custom resource, left
as it is. Validation after decoding (`ValidatePod`: names, enums, immutable fields) is not
emulated.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from compiler.schemas import kubernetes_schema

__all__ = ["KUBERNETES_VERSION", "Rejected", "decode"]

KUBERNETES_VERSION = "1.30"  # the oldest release every backend supports (admissionregistration.k8s.io/v1 VAP)
_REF = "#/$defs/"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
# resource.Quantity's canonical syntax: a signed decimal, then a binary/decimal suffix or an exponent.
_QUANTITY_SYNTAX = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_DROP = object()  # a Go nil: the field is not shown to engines


@dataclass(frozen=True)
class Rejected:
    """The API server refuses the object before any admission engine sees it."""

    path: tuple[str | int, ...]
    reason: str

    @property
    def field(self) -> str:
        """`spec.containers[0].securityContext.runAsNonRoot`, as the API server names fields."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(object)"

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class _Refused(Exception):
    """A refusal; each level it passes on the way up puts its key or index in front of `path`
    (so no path is built for the values that decode)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: tuple[str | int, ...] = ()

    def under(self, part: str | int) -> _Refused:
        self.path = (part, *self.path)
        return self


def decode(obj: Any, version: str = KUBERNETES_VERSION) -> Any:
    """The object as the API server decodes it, or `Rejected` naming the field and the reason.

    Objects that are not mappings with a string apiVersion and kind, and custom resources, are
    returned unchanged: they are no workloads, and no built-in schema describes them.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str) or not isinstance(obj.get("apiVersion"), str):
        return obj
    group, _, api_version = obj["apiVersion"].rpartition("/")
    schema = _kind_schema(version, group, api_version, obj["kind"])
    if schema is None:
        if group in _builtin_groups(version) or group == "extensions":
            return Rejected(("apiVersion",), f"{obj['apiVersion']} {obj['kind']} is not served by Kubernetes {version}")
        return obj
    try:
        return _node(schema, version).run(obj)
    except _Refused as refused:
        return Rejected(refused.path, refused.reason)


# --- schemas ---------------------------------------------------------------------------------


def _definitions(version: str) -> dict[str, Any]:
    return kubernetes_schema(version, "_definitions.json")["$defs"]


@cache
def _builtin_groups(version: str) -> frozenset[str]:
    return frozenset(gvk["group"] for d in _definitions(version).values() for gvk in d.get("x-kubernetes-group-version-kind", ()))


@cache
def _kind_schema(version: str, group: str, api_version: str, kind: str) -> dict[str, Any] | None:
    """The definition of (group, version, kind), found by its x-kubernetes-group-version-kind."""
    for name, definition in _definitions(version).items():
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, api_version, kind) and "properties" in definition:
                return {"$ref": _REF + name}
    return None


def _resolve(schema: dict[str, Any], version: str) -> tuple[str, dict[str, Any]]:
    """(definition name or "", the schema with its $ref followed)."""
    ref = schema.get("$ref")
    if ref is None:
        return "", schema
    name = ref.rsplit("/", 1)[-1]
    return name, _definitions(version)[name]


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    return {declared} if isinstance(declared, str) else set(declared or ()) - {"null"}


# --- decoding ----------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (str, dt.date)):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    else:
        text = json.dumps(value, default=lambda v: _timestamp(v) if isinstance(v, dt.date) else str(v))
    return text if len(text) <= 40 else text[:37] + "..."


def _expected(wanted: str, value: Any) -> _Refused:
    return _Refused(f"expected {wanted}, got {_json_type(value)} {_shown(value)}")


_ANY: dict[str, Any] = {}  # the schema of array items that declare none
_NODES: dict[tuple[int, str], _Node] = {}


class _Node:
    """How a value of one schema decodes, found once per schema (every object of a run decodes
    against the same few hundred), not once per value: `run` is the decoding of its type; the
    nodes of its fields, items and map values are made on first use, then kept."""

    __slots__ = ("schema", "version", "how", "properties", "required", "values", "items", "fmt", "children", "run")

    def __init__(self, schema: dict[str, Any], version: str) -> None:
        self.schema, self.version = schema, version  # holds `schema`, so its id is not reused
        name, resolved = _resolve(schema, version)
        if name == _QUANTITY:
            how = "quantity"
        elif name == _INT_OR_STRING:
            how = "int-or-string"
        else:  # the first type that applies, in this order
            types = _types(resolved)
            how = next((t for t in ("object", "array", "string", "boolean", "integer", "number") if t in types), "free-form")
        self.properties: dict[str, Any] | None = resolved.get("properties")
        self.values: Any = resolved.get("additionalProperties")
        if how == "object" and self.properties is None:
            how = "map" if isinstance(self.values, dict) else "free-form object"  # (x-kubernetes-preserve-unknown-fields)
        self.how = how
        self.required = frozenset(resolved.get("required") or ())
        self.items: dict[str, Any] = resolved.get("items") or _ANY
        self.fmt: str = resolved.get("format", "int64")
        self.children: dict[str | None, _Node] = {}
        self.run: Callable[[Any], Any] = getattr(self, "_" + how.replace("-", "_").replace(" ", "_"))

    def child(self, field: str | None) -> _Node:
        """The node of a field (of an object), or of the items (of an array) or values (of a map): None."""
        found = self.children.get(field)
        if found is None:
            schema = self.items if self.how == "array" else self.values if field is None else self.properties[field]  # type: ignore[index]
            found = self.children[field] = _node(schema, self.version)
        return found

    # Each `_<how>` decodes a value that is not None; raises _Refused.

    def _object(self, value: Any) -> dict[str, Any]:
        """A struct: unknown fields dropped, a null optional field dropped, a null required one its zero value."""
        if not isinstance(value, dict):
            raise _expected("an object", value)
        properties, children = self.properties, self.children
        assert properties is not None
        decoded: dict[str, Any] = {}
        dropped = False
        for key, item in value.items():
            if type(key) is not str:
                key = _key(key)
            if key not in properties:
                continue
            if item is None:
                zero = decoded[key] = _zero(properties[key], self.version) if key in self.required else _DROP
                dropped = dropped or zero is _DROP
                continue
            node = children.get(key) or self.child(key)
            if (type(item) is str and node.how == "string") or (type(item) is bool and node.how == "boolean"):
                decoded[key] = item  # the most common fields, decoded without a call
                continue
            try:
                decoded[key] = node.run(item)
            except _Refused as refused:
                raise refused.under(key) from None
        return {k: v for k, v in decoded.items() if v is not _DROP} if dropped else decoded

    def _array(self, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _expected("an array", value)
        run = (self.children.get(None) or self.child(None)).run
        decoded = []
        for index, item in enumerate(value):
            try:
                decoded.append(run(item) if item is not None else _zero(self.items, self.version))
            except _Refused as refused:
                raise refused.under(index) from None
        return decoded

    def _map(self, value: Any) -> dict[str, Any]:
        """A map: every key a string, a null value the zero value."""
        if not isinstance(value, dict):
            raise _expected("an object", value)
        decoded: dict[str, Any] = {}
        values = self.children.get(None) or self.child(None)
        dropped = False
        for key, item in value.items():
            if type(key) is not str:
                key = _key(key)
            if type(item) is str and values.how == "string":
                decoded[key] = item
                continue
            try:
                found = decoded[key] = _zero(self.values, self.version) if item is None else values.run(item)
            except _Refused as refused:
                raise refused.under(key) from None
            dropped = dropped or found is _DROP
        return {k: v for k, v in decoded.items() if v is not _DROP} if dropped else decoded

    @staticmethod
    def _string(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dt.date):
            return _timestamp(value)
        raise _expected("a string", value)

    @staticmethod
    def _boolean(value: Any) -> bool:
        if not isinstance(value, bool):
            raise _expected("a boolean", value)
        return value

    @staticmethod
    def _quantity(value: Any) -> str | int | float:
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"{value} is not a JSON number")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _expected("a quantity", value)
        if isinstance(value, str) and not _QUANTITY_SYNTAX.match(value):
            raise _Refused(f"quantity {_shown(value)} does not parse (e.g. 100m, 1.5, 128Mi)")
        return value

    def _integer(self, value: Any) -> int:
        return _integer(value, self.fmt, "an integer")

    @staticmethod
    def _int_or_string(value: Any) -> int | str:
        return value if isinstance(value, str) else _integer(value, "int32", "an integer or a string")

    @staticmethod
    def _number(value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _expected("a number", value)
        return value

    @staticmethod
    def _free_form_object(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _expected("an object", value)
        return _json(value)

    @staticmethod
    def _free_form(value: Any) -> Any:
        """A free-form value (RawExtension, JSON): kept as it is, in its JSON form."""
        return _json(value)


def _node(schema: dict[str, Any], version: str) -> _Node:
    found = _NODES.get((id(schema), version))
    if found is None or found.schema is not schema:
        found = _NODES[(id(schema), version)] = _Node(schema, version)
    return found


def _json(value: Any) -> Any:
    """A free-form YAML value in its JSON form, as kubectl sends it; refused when it has none
    (NaN, a !!binary or a !!set value), as every typed value is."""
    if isinstance(value, dict):
        return {_key(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dt.date):
        return _timestamp(value)
    if value is None or isinstance(value, (str, int, bool)) or isinstance(value, float) and math.isfinite(value):
        return value
    raise _expected("a JSON value", value)


def _timestamp(value: dt.date) -> str:
    """A YAML date or timestamp as an RFC 3339 string."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _key(key: Any) -> str:
    """A YAML key as kubectl's YAML-to-JSON conversion writes it."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return key if isinstance(key, str) else str(key)


def _integer(value: Any, fmt: str, wanted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _expected(wanted, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value} is not a JSON number")
        if not value.is_integer():
            raise _expected(wanted, value)
        value = int(value)  # YAML `1.0` reaches the API server as the JSON number 1
    low, high = _INT_RANGE.get(fmt, _INT_RANGE["int64"])
    if not low <= value <= high:
        raise _Refused(f"{value} is out of range for {fmt}")
    return value



def _zero(schema: dict[str, Any], version: str) -> Any:
    """The JSON form of a Go zero value; _DROP for nil (pointers, slices, maps, timestamps)."""
    name, schema = _resolve(schema, version)
    if name == _QUANTITY:
        return "0"
    if name == _INT_OR_STRING:
        return 0
    types = _types(schema)
    if "object" in types and schema.get("properties") is not None:
        fields = {key: _zero(schema["properties"][key], version) for key in schema.get("required") or ()}
        return {k: v for k, v in fields.items() if v is not _DROP}
    if "string" in types and schema.get("format") != "date-time":
        return ""
    if "boolean" in types:
        return False
    if "integer" in types or "number" in types:
        return 0
    return _DROP
