"""`kupe-policy test`: the conformance suite from the command line (plugged in by entry point)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from compiler import pipeline

from . import docker, gator, runner
from .adapters import all_adapters
from .suite import CASES_DIR, Case, load_cases


@click.command("test")
@click.option("--backend", "backends", multiple=True,
              help="Only this backend or adapter, e.g. gatekeeper-cel (repeatable; default: every adapter).")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per case × backend × rule.")
@click.option("--cases", "cases_dir", default=str(CASES_DIR), show_default=True, type=click.Path(path_type=Path))
@click.option("--policies", "policies_dir", default="policies", show_default=True, type=click.Path(path_type=Path))
@click.option("--gator", "with_gator", is_flag=True,
              help="Also ask a real `gator test` (on PATH) about every creation case, in its CEL and its Rego mode.")
def test(backends: tuple[str, ...], as_json: bool, cases_dir: Path, policies_dir: Path, with_gator: bool) -> None:
    """Run the conformance suite through every backend's engine and print the verdict matrix."""
    available = all_adapters()  # keyed by adapter name: a compiler backend, or e.g. gatekeeper-cel
    pipeline.select_backends([b for b in backends if b not in available])  # refuses names of neither kind
    missing = [b for b in backends if b not in available and b not in docker.PLATFORMS]
    if missing:
        raise click.UsageError(f"no conformance adapter for backend(s) {missing}")
    chosen = [b for b in available if not backends or b in backends]
    platforms = [p for p in docker.PLATFORMS if not backends or p in backends]
    program, _ = pipeline.build_program(policies_dir, runner.SUITE_AS_OF)
    cases = load_cases(cases_dir, {r.id for r in program.rules})
    gator_lines, mismatches = _gator(cases, policies_dir) if with_gator else ([], [])
    docker_results = docker.run(program, platforms) if platforms else []
    if not chosen:  # Docker's platforms only
        click.echo("\n".join([*docker.summary(docker_results), *gator_lines]))
        sys.exit(int(any(got != case.expect for case, got in docker_results) or bool(mismatches)))
    records = runner.run(cases, chosen, policies_dir)
    if as_json:
        for record in records:
            click.echo(json.dumps(record.as_dict(), sort_keys=True))
    else:
        click.echo(runner.matrix(records))
        for name in chosen:
            click.echo(f"  {name}: evaluated by {available[name].engine}")
        click.echo("\n".join([*docker.summary(docker_results), *gator_lines]))
    if runner.failed(records) or any(got != case.expect for case, got in docker_results) or mismatches:
        sys.exit(1)


def _gator(cases: list[Case], policies_dir: Path) -> tuple[list[str], list[gator.Mismatch]]:
    """What a real gator says of the creation cases: a summary line per mode, then each mismatch."""
    try:
        asked, mismatches = gator.cross_check(cases, policies_dir, runner.SUITE_AS_OF)
    except gator.GatorError as error:
        raise click.ClickException(str(error)) from None
    lines = [f"gator ({mode}): {asked - sum(m.mode == mode for m in mismatches)}/{asked} creation cases give their expected verdicts"
             for mode in gator.MODES]
    return lines + [f"  {m}" for m in mismatches], mismatches
