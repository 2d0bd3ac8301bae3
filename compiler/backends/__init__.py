"""Backends: one module per engine, each lowering the resolved IR into that engine's files.

A backend returns its artifacts as `{relative path: text}` under its own folder of `out/`,
after parsing every artifact back. Backends never import each other; Rego lowering that
two backends share lives in `compiler.lang`.
"""

from __future__ import annotations

import importlib
import pkgutil
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
    """Every backend module of this package, imported (which registers it), in a stable order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(Backend.registry.items()))
