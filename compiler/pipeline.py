"""The compilation pipeline: policies/ → IR → passes → backends → artifacts."""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from . import ir, loader, passes
from .backends import EXACT, Support, all_backends
from .catalog import catalog
from .errors import InputError, PolicyError

CATALOG = "POLICIES.md"


def build_program(policies_dir: Path, as_of: dt.date) -> tuple[ir.Program, list[str]]:
    """Load the policy sources and resolve them as of `as_of`; returns warnings to show.

    Source locations are relative to the folder holding `policies/`, so artifacts do not
    depend on where the compiler runs from.
    """
    policy_sets, exemptions = loader.load(policies_dir, policies_dir.resolve().parent)
    if not any(ps.rules for ps in policy_sets):
        raise PolicyError("declares no rule: nothing to compile (declare one with PolicySet(...).rule(...))", str(policies_dir))
    return passes.resolve(policy_sets, exemptions, as_of)


def select_backends(names: tuple[str, ...] | list[str]) -> list[str]:
    known = list(all_backends())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown backend(s) {unknown}; known: {known}")
    return [n for n in known if n in names] if names else known


# Above this much work (rules + exemptions), backends compile in parallel worker processes:
# parse-back dominates large sets, while starting workers would cost a small set more than it saves.
PARALLEL_FROM = 400


def compile_backend(program: ir.Program, name: str) -> dict[str, str]:
    """One backend's artifacts (a worker process runs this for large policy sets)."""
    return all_backends()[name]().compile(program)


def compile_program(program: ir.Program, backends: list[str], *, workers: int | None = None) -> dict[str, str]:
    """Every artifact of the chosen backends plus the catalog (with the support matrix of every backend)."""
    files = compile_backends(program, backends, workers=workers)
    files[CATALOG] = catalog(program, support_matrix(program, backends))
    return files


def support_matrix(program: ir.Program, compiled: list[str]) -> dict[str, dict[str, Support]]:
    """backend → rule → how it is expressed. A backend just compiled expresses every rule it applies
    to exactly (else compiling failed); any other backend is asked, which never fails."""
    matrix: dict[str, dict[str, Support]] = {}
    for name, backend_type in all_backends().items():
        backend = backend_type()
        matrix[name] = {rule.id: (Support("not applicable", why) if (why := backend.not_applicable(rule)) else EXACT)
                        if name in compiled else backend.supports(rule, program) for rule in program.rules}
    return matrix


def compile_backends(program: ir.Program, backends: list[str], *, workers: int | None = None) -> dict[str, str]:
    """Every artifact of the chosen backends, keyed by path under out/.

    `workers` defaults to one per core for large programs and to none (in-process) otherwise;
    the result is the same either way.
    """
    if workers is None:
        large = len(program.rules) + len(program.exemptions) >= PARALLEL_FROM
        workers = min(len(backends), os.cpu_count() or 1) if large else 1
    # The costliest first, so that no long compile starts last; results are merged in backend order.
    registry = all_backends()
    order = sorted(backends, key=lambda name: -registry[name].relative_cost)
    if workers > 1 and len(backends) > 1:
        # spawn, not fork: the native engines must not be copied mid-state into a child.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = dict(zip(order, pool.map(compile_backend, [program] * len(order), order)))
    else:
        # rego-cpp releases the GIL while it builds a bundle (a third of a small compile): a
        # second thread compiles the next backend meanwhile.
        with ThreadPoolExecutor(max_workers=2) as threads:
            parts = dict(zip(order, threads.map(functools.partial(compile_backend, program), order)))
    return {path: text for name in backends for path, text in parts[name].items()}


def output_roots(backends: list[str]) -> list[str]:
    """What under out/ a compilation of these backends owns."""
    return [*backends, CATALOG]
