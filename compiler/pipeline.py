"""The compilation pipeline: policies/ → IR → passes → backends → artifacts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from . import ir, loader, passes
from .backends import all_backends
from .catalog import catalog
from .errors import InputError

CATALOG = "POLICIES.md"


def build_program(policies_dir: Path, as_of: dt.date) -> tuple[ir.Program, list[str]]:
    """Load the policy sources and resolve them as of `as_of`; returns warnings to show.

    Source locations are relative to the folder holding `policies/`, so artifacts do not
    depend on where the compiler runs from.
    """
    policy_sets, exemptions = loader.load(policies_dir, policies_dir.resolve().parent)
    return passes.resolve(policy_sets, exemptions, as_of)


def select_backends(names: tuple[str, ...] | list[str]) -> list[str]:
    known = list(all_backends())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown backend(s) {unknown}; known: {known}")
    return [n for n in known if n in names] if names else known


def compile_program(program: ir.Program, backends: list[str]) -> dict[str, str]:
    """Every artifact of the chosen backends plus the catalog, keyed by path under out/."""
    registry = all_backends()
    files: dict[str, str] = {}
    for name in backends:
        files.update(registry[name]().compile(program))
    files[CATALOG] = catalog(program, list(registry))
    return files


def output_roots(backends: list[str]) -> list[str]:
    """What under out/ a compilation of these backends owns."""
    return [*backends, CATALOG]
