"""One audit: read the inputs, evaluate every workload with the chosen backends, collect what was found."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.util
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import click

from compiler import ir

from .docker import DockerJudge
from .model import Disagreement, Problem, Violation, Workload
from .reading import Inputs, files_under, read_file
from ..engines.decoding import Rejected
from .shared import SharedCache, remote_caches, serve_caches
from .verdicts import Auditor, Judgement, Outcome, artifacts_for, disagreement, violations

# Draw a progress bar (on a terminal only) from this many files on.
PROGRESS_FROM = 50
# From this much work on (bytes of input times engines), one worker process per core reads and
# evaluates; each builds the engines once (~1 s). Measured with the shared cache: every engine on
# 1,000 workloads (1.2 MB) took 11 to 12 s instead of 16 s, and on 300 (0.34 MB) 8 s instead of 9 s;
# one engine on 300 was slower in two processes, and on 1,000 no faster for 60% more CPU.
PARALLEL_FROM = 2_000_000
CHUNK = 200_000  # bytes of input per task


def worker_count(files: list[Path], engines: int) -> int:
    """One worker per core when the engines have enough to do, else one process."""
    return (os.cpu_count() or 1) if sum(f.stat().st_size for f in files) * engines >= PARALLEL_FROM else 1


@dataclass
class AuditRun:
    program: ir.Program
    backends: list[str]
    inputs: Inputs
    results: list[tuple[Workload, dict[str, Outcome]]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    rejected: list[Workload] = field(default_factory=list)  # objects the API server would not decode
    evaluations: int = 0  # single-rule evaluations handed to the engines (each by every chosen backend)

    @cached_property
    def rules(self) -> dict[str, ir.ResolvedRule]:
        """Rule id → rule (the program does not change: asked once per workload and per violation)."""
        return {r.id: r for r in self.program.rules}

    @property
    def unevaluated(self) -> int:
        """Workloads some engine could not judge (its error stands where a verdict would)."""
        return sum(any(isinstance(o, str) for o in outcome.values()) for _, outcome in self.results)

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.verdict == "deny"]


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """Advance a progress bar on stderr when stderr is a terminal and the run is long; otherwise draw nothing."""
    if total >= PROGRESS_FROM and sys.stderr.isatty():
        with click.progressbar(length=total, label="auditing", file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda done: None


_worker: tuple[Auditor, dict[str, ir.ResolvedRule], DockerJudge] | None = None


def _start_worker(program: ir.Program, backends: list[str], artifacts: dict[str, dict[str, str]],
                  shared: tuple[SharedCache, SharedCache] | None = None) -> None:
    global _worker
    _worker = Auditor(program, backends, artifacts=artifacts, shared=shared), {r.id: r for r in program.rules}, DockerJudge(program)


def _exit_without_teardown() -> None:
    """End this worker, once the pool lets it go, without tearing its interpreter down: freeing the
    engines and the caches took 0.1 to 0.2 s that the audit waited for, and every result has
    been sent by then. (multiprocessing runs this last among the finalizers of the process.)"""
    multiprocessing.util.Finalize(None, os._exit, (0,), exitpriority=-1_000_000)


def _started() -> None:
    """Nothing: a first task that makes the pool start a worker, which imports this module meanwhile."""


def _audit_share(setup: Path, caches: str, files: list[Path]) -> Part:
    """`_audit_files` in a worker process, which builds its auditor on its first share: from the program,
    backends and artifacts pickled in `setup`, with the shared caches served at `caches`.

    The pool starts its workers before `setup` is written, so that they import (~0.3 s) while the
    artifacts compile; a share carries the setup's path, not the setup (the artifacts alone are
    160 KB for one engine, 640 KB for all)."""
    if _worker is None:
        program, backends, artifacts = pickle.loads(setup.read_bytes())
        verdicts, findings = remote_caches(caches, 2)
        _start_worker(program, backends, artifacts, (verdicts, findings))
        _exit_without_teardown()
    return _audit_files(files)


Part = tuple[int, Inputs, list[Judgement], int]  # files, what they held, their judgements, evaluations


def _audit_files(files: list[Path]) -> Part:
    """Read some files and evaluate their workloads (in a worker process for large runs)."""
    assert _worker is not None
    auditor, rules, docker = _worker
    before = auditor.evaluations
    inputs = Inputs()
    for file in files:
        try:
            inputs.extend(read_file(file, rules))
        except Exception as error:  # noqa: BLE001 - one file's failure must not end the run
            inputs.problems.append(Problem(str(file), f"internal error reading this file: {type(error).__name__}: {error}"))
    for found in inputs.docker:
        violations, problems = docker.judge(found)
        inputs.docker_violations += violations
        inputs.problems += problems
    inputs.docker = []  # judged here
    outcomes = [_judged(auditor, w) for w in inputs.workloads]
    auditor.flush()
    inputs.workloads = [w.identity() for w in inputs.workloads]  # judged here: reports need only who and where
    return len(files), inputs, outcomes, auditor.evaluations - before


def _judged(auditor: Auditor, workload: Workload) -> Judgement:
    """One object's outcome and findings; an unexpected failure is that object's problem, and the run goes on."""
    try:
        return auditor.judge(workload.request)
    except Exception as error:  # noqa: BLE001 - per-object isolation
        return {backend: f"internal error judging this object: {type(error).__name__}: {error}" for backend in auditor.backends}, []


def _chunks(files: list[Path]) -> list[list[Path]]:
    """Groups of files of about CHUNK bytes, in order, so workers share the work evenly."""
    chunks: list[list[Path]] = [[]]
    size = 0
    for file in files:
        if size >= CHUNK and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(file)
        size += file.stat().st_size
    return chunks


def _parts(files: list[Path], program: ir.Program, backends: list[str], workers: int) -> Iterator[Part]:
    """Each chunk's inputs and outcomes, in order: in this process, or in `workers` spawned processes."""
    if workers <= 1:
        _start_worker(program, backends, artifacts_for(program, backends))
        yield from map(_audit_files, _chunks(files))
        return
    context = multiprocessing.get_context("spawn")  # the native engines must not be forked mid-state
    with tempfile.TemporaryDirectory(prefix="kupe-audit-") as folder, serve_caches(2) as caches, \
            ProcessPoolExecutor(workers, mp_context=context) as pool:
        for _ in range(workers):
            pool.submit(_started)  # each submission while no worker is idle starts one
        setup = Path(folder) / "worker-setup.pickle"
        setup.write_bytes(pickle.dumps((program, backends, artifacts_for(program, backends))))  # compiled once, for every worker
        yield from pool.map(functools.partial(_audit_share, setup, caches), _chunks(files))


def audit(paths: list[Path], program: ir.Program, backends: list[str], *, workers: int | None = None) -> AuditRun:
    """Read the inputs and evaluate every workload with each backend compiled once (per worker process).

    Large runs (by bytes to read times engines) use one worker process per core, each reading a share
    of the files and sharing one verdict cache.
    """
    entries = list(files_under(paths))
    files = [e for e in entries if isinstance(e, Path)]
    run = AuditRun(program, backends, Inputs(problems=[e for e in entries if isinstance(e, Problem)]))
    if workers is None:
        workers = worker_count(files, len(backends))
    with _progress(len(files)) as advance:
        for count, inputs, outcomes, evaluations in _parts(files, program, backends, workers):
            run.inputs.extend(inputs)
            run.violations.extend(inputs.evidence)
            run.violations.extend(inputs.docker_violations)
            run.evaluations += evaluations
            for workload, (outcome, findings) in zip(inputs.workloads, outcomes):
                if isinstance(outcome, Rejected):
                    run.rejected.append(workload)
                    run.inputs.problems.append(Problem(workload.where, f"the API server would refuse this {workload.kind}: {outcome}"))
                    continue
                run.results.append((workload, outcome))
                run.violations.extend(violations(workload, outcome, findings, run.rules))
                run.inputs.problems.extend(Problem(workload.where, o) for o in outcome.values() if isinstance(o, str))
                drift = disagreement(workload, outcome)
                if drift:
                    run.disagreements.append(drift)
            advance(count)
    return run
