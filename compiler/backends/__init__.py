"""Backends: one module per engine, each lowering the resolved IR into that engine's files.

A backend returns its artifacts as `{relative path: text}` under its own folder of `out/`,
after parsing every artifact back. Backends never import each other; Rego lowering that
two backends share lives in `compiler.lang`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..ir import Program


class Backend(ABC):
    """An engine target. Subclasses register themselves by `name`."""

    name: ClassVar[str]
    title: ClassVar[str]
    registry: ClassVar[dict[str, type[Backend]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        Backend.registry[cls.name] = cls

    @abstractmethod
    def compile(self, program: Program) -> dict[str, str]:
        """Every artifact of this backend, parsed back and validated, keyed by path under out/."""


def all_backends() -> dict[str, type[Backend]]:
    """Every backend, in a stable order (importing the modules registers them)."""
    from . import rego  # noqa: F401  (registration by import)

    return dict(sorted(Backend.registry.items()))
