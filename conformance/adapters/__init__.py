"""Backend adapters: evaluate a backend's compiled artifacts with a real engine, normalise verdicts.

An adapter receives the artifacts exactly as `kupe-policy compile` would write them, builds
its engine once, then answers `evaluate(object)` with the verdict of every rule that does
not pass: `deny` (blocks admission) or `audit` (reported, admitted).
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from typing import Any, ClassVar


class AdapterError(Exception):
    """The engine failed, or gave an answer the adapter cannot normalise."""


def admission_request(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """The AdmissionRequest the API server would send for `obj` (namespace defaulted as kubectl does)."""
    api_version = obj.get("apiVersion", "")
    group, _, version = api_version.rpartition("/")
    metadata = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    namespaced = kind != "Namespace"
    return {
        "uid": "00000000-0000-0000-0000-000000000000",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "name": metadata.get("name", ""),
        "namespace": (metadata.get("namespace") or "default") if namespaced else "",
        "operation": operation,
        "userInfo": {"username": "kupe-conformance", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
    }


class Adapter(ABC):
    """One backend's engine. Subclasses register themselves by `backend` name."""

    backend: ClassVar[str]
    engine: ClassVar[str]  # what really evaluates, for the matrix legend
    artifacts_of: ClassVar[str | None] = None  # the compiler backend whose artifacts it reads; None: `backend`
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

    @abstractmethod
    def evaluate(self, obj: dict[str, Any]) -> dict[str, str]:
        """Rule id → `deny` or `audit` for every rule the object violates; passing rules are absent."""


def all_adapters() -> dict[str, type[Adapter]]:
    """Every adapter module of this package, imported (which registers it), in a stable order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(Adapter.registry.items()))
