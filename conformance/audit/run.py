"""One audit: read the inputs, evaluate every workload with the chosen backends, collect what was found."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from compiler import ir

from .model import Disagreement, Problem, Violation, Workload
from .reading import Inputs, read
from .verdicts import Auditor, Outcome, disagreement, violations

# Draw a progress bar (on a terminal only) from this many workloads on.
PROGRESS_FROM = 500


@dataclass
class AuditRun:
    program: ir.Program
    backends: list[str]
    inputs: Inputs
    results: list[tuple[Workload, dict[str, Outcome]]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    evaluations: int = 0  # distinct verdict keys handed to the engines

    @property
    def rules(self) -> dict[str, ir.ResolvedRule]:
        return {r.id: r for r in self.program.rules}

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.verdict == "deny"]


@contextlib.contextmanager
def _progress(workloads: list[Workload]) -> Iterator[Iterator[Workload]]:
    """A progress bar on stderr when stderr is a terminal and the run is long; otherwise nothing drawn."""
    if len(workloads) >= PROGRESS_FROM and sys.stderr.isatty():
        with click.progressbar(workloads, label="auditing", file=sys.stderr) as bar:
            yield iter(bar)
    else:
        yield iter(workloads)


def audit(paths: list[Path], program: ir.Program, backends: list[str], *, cache: bool = True) -> AuditRun:
    """Compile each backend once, then evaluate the workloads in a loop; evidence violations come as read."""
    rules = {r.id: r for r in program.rules}
    inputs = read(paths, rules)
    run = AuditRun(program, backends, inputs, violations=list(inputs.evidence))
    if inputs.workloads:
        auditor = Auditor(program, backends, cache=cache)
        with _progress(inputs.workloads) as workloads:
            for workload in workloads:
                outcome = auditor.evaluate(workload.obj)
                run.results.append((workload, outcome))
                run.violations.extend(violations(workload, outcome))
                run.inputs.problems.extend(Problem(workload.where, o) for o in outcome.values() if isinstance(o, str))
                drift = disagreement(workload, outcome)
                if drift:
                    run.disagreements.append(drift)
        run.evaluations = auditor.evaluations
    return run
