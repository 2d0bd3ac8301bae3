"""Backend adapters: evaluate a backend's compiled artifacts with a real engine, normalise verdicts.

An adapter receives the artifacts exactly as `kupe-policy compile` would write them, builds
its engine once, then answers `evaluate(request)` with the verdict of every rule that does
not pass: `deny` (blocks admission) or `audit` (reported, admitted). The request is fed to the
engine the way that engine sees it (an AdmissionReview, a Gatekeeper review, the API server's
admission attributes, Kyverno's policy context).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from compiler.ir import DEFAULT_NAMESPACE

from ..engines.decoding import Rejected, decode


class AdapterError(Exception):
    """The engine failed, or gave an answer the adapter cannot normalise."""


@dataclass(frozen=True)
class Request:
    """An admission request as the API server hands it to admission, objects already decoded
    (conformance.engines.decoding): `object` is None on a DELETE, `old_object` is set on an
    UPDATE and a DELETE. A manifest judged without a request is the CREATE of it. `at` is when
    the request is made (None: now): an engine that lets exemptions expire by themselves (Kyverno's
    PolicyException `expiresAt`) judges it at that moment."""

    operation: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None = None
    subresource: str = ""
    at: dt.datetime | None = None

    @classmethod
    def create(cls, obj: dict[str, Any]) -> Request:
        return cls("CREATE", obj)

    @property
    def subject(self) -> dict[str, Any]:
        """The object the request is about: the deleted one on a DELETE."""
        return (self.object if self.object is not None else self.old_object) or {}

    @property
    def namespace(self) -> str:
        """The request namespace: the object's, or `default` where kubectl would create it; "" for a Namespace."""
        if self.subject.get("kind") == "Namespace":
            return ""
        return namespace_of(self.subject)

    def __str__(self) -> str:
        return self.operation + (f" {self.subresource}" if self.subresource else "")

    def is_json(self) -> bool:
        """Whether the objects are JSON: NaN and infinities are not, so no client sends them and no engine reads them."""
        try:
            json.dumps([self.object, self.old_object], allow_nan=False, default=str)
        except ValueError:
            return False
        return True


def namespace_of(obj: dict[str, Any]) -> str:
    """Where kubectl creates a namespaced object: its `metadata.namespace`, else `default`."""
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE


def resource_of(obj: dict[str, Any]) -> str:
    """The plural resource of a built-in kind (`Pod` → `pods`)."""
    kind = str(obj.get("kind", ""))
    return kind.lower() + ("es" if kind.endswith("s") else "s")


def admitted(request: Request) -> tuple[Request, Rejected | None]:
    """The request as admission sees it, its objects decoded as the API server decodes them; when
    the decoder refuses an object, the request as written and the refusal (offline tools, such as
    conftest on a file, still judge the raw object, so the engines must agree on it too)."""
    decoded = [None if o is None else decode(o) for o in (request.object, request.old_object)]
    refusal = next((d for d in decoded if isinstance(d, Rejected)), None)
    if refusal is not None:
        return request, refusal
    return replace(request, object=decoded[0], old_object=decoded[1]), None


def admission_request(request: Request) -> dict[str, Any]:
    """The AdmissionRequest the API server would send for `request`."""
    api_version = request.subject.get("apiVersion", "")
    group, _, version = str(api_version).rpartition("/")
    metadata = request.subject.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    review: dict[str, Any] = {
        "uid": "00000000-0000-0000-0000-000000000000",
        "kind": {"group": group, "version": version, "kind": request.subject.get("kind", "")},
        "resource": {"group": group, "version": version, "resource": resource_of(request.subject)},
        "name": name if isinstance(name, str) else "",
        "namespace": request.namespace,
        "operation": request.operation,
        "userInfo": {"username": "kupe-conformance", "groups": ["system:authenticated"]},
        "object": request.object,
        "oldObject": request.old_object,
        "dryRun": False,
    }
    if request.subresource:
        review["subResource"] = request.subresource
    return review


class Adapter(ABC):
    """One backend's engine. Subclasses register themselves by `backend` name."""

    backend: ClassVar[str]
    engine: ClassVar[str]  # what really evaluates, for the matrix legend
    artifacts_of: ClassVar[str | None] = None  # the compiler backend whose artifacts it reads; None: `backend`
    # Whether to also judge inputs that must give the same verdicts (a manifest and its AdmissionReview):
    # the conformance suite proves such equivalences; an audit, which needs one verdict per object, skips them.
    equivalences: bool = True
    registry: ClassVar[dict[str, type[Adapter]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        Adapter.registry[cls.backend] = cls

    @classmethod
    def compiled_backend(cls) -> str:
        """The compiler backend to compile for this adapter (another one's, for a second engine of its artifacts)."""
        return cls.artifacts_of or cls.backend

    @abstractmethod
    def __init__(self, artifacts: dict[str, str]) -> None:
        """Build the engine from this backend's artifacts (paths relative to out/)."""

    def judge(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        """`evaluate`, for a request an engine can read at all (JSON: engines read YAML through JSON)."""
        if not request.is_json():
            raise AdapterError("the object is not JSON (NaN or an infinity): no engine can read it")
        return self.evaluate(request, rules)

    @abstractmethod
    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        """Rule id → `deny` or `audit` for every rule the request violates; passing rules are absent.

        `rules`: evaluate only the artifacts of these rules (None: all). Each rule's artifacts are
        judged alone exactly as beside the others (no artifact reads another rule's), so an audit
        evaluates only the rules whose verdict it does not know yet."""


def all_adapters() -> dict[str, type[Adapter]]:
    """Every adapter module of this package, imported (which registers it), in a stable order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(Adapter.registry.items()))
