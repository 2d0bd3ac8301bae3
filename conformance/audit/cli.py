"""`kupe-policy audit` and `kupe-policy promote` (plugged into the CLI by entry point).

Exit codes: 0 every input read and clean; 1 a required rule is violated or the engines disagree
(audit), or a rule is not ready (promote --write); 2 usage errors, or any input that could not
be read or judged (a file, a document, an object the API server would refuse, an engine
error). When both 1 and 2 apply, 2 wins: an incomplete audit is no verdict.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import click

from compiler import ir, pipeline
from compiler.output import write_text_atomically
from compiler.cli import as_of_option, policies_option, warn
from compiler.errors import InputError, KupeError
from compiler.output import write_atomically

from ..adapters import all_adapters
from . import formats, promotion, reading
from .run import AuditRun, audit as run_audit


def adapter_backends(choice: str) -> list[str]:
    """The backends `--backend` names: one with an adapter, or `all` of them."""
    available = list(all_adapters())  # every engine: compiler backends, and Gatekeeper's CEL engine
    if choice == "all":
        return available
    if choice not in available:
        raise click.BadParameter(f"{choice!r}: expected `all` or a backend with an adapter: {', '.join(available)}", param_hint="--backend")
    return [choice]


def report_problems(run: AuditRun) -> None:
    """Problems and notes on stderr, so that stdout stays one document."""
    for problem in run.inputs.problems:
        click.echo(f"error: {problem}", err=True)
    warn(run.inputs.notes)


def incomplete(run: AuditRun) -> str | None:
    """Why the run is no verdict (exit 2): an input it could not read, or an object it could not judge."""
    if not run.inputs.files_read:
        return "no input file could be read"
    if run.inputs.problems:
        return (f"{len(run.inputs.problems)} input problem(s) (see above): the audit is incomplete, and nothing it "
                "could not read or judge counts as compliant")
    return None


@click.command("audit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--backend", "backend", default="rego", show_default=True, metavar="BACKEND|all",
              help="The engine that judges manifests; `all` uses every adapter and reports where they disagree.")
@click.option("--format", "output_format", type=click.Choice(formats.FORMATS), default="table", show_default=True)
@as_of_option
@policies_option
def audit(paths: tuple[Path, ...], backend: str, output_format: str, as_of: dt.date, policies_dir: Path) -> None:
    """Evaluate manifests, cluster dumps and policy reports (files or directories) against the compiled rules."""
    backends = adapter_backends(backend)
    program, warnings = pipeline.build_program(policies_dir, as_of)
    warn(warnings)
    run = run_audit(list(paths), program, backends)
    report_problems(run)
    click.echo(formats.RENDER[output_format](run))
    if run.disagreements:
        click.echo(f"warning: engine drift: backends disagree on {len(run.disagreements)} object(s)", err=True)
    reason = incomplete(run)
    if reason:
        raise InputError(reason)  # exit 2 wins over 1: a run that could not read everything is no verdict
    if run.blocking or run.disagreements:
        sys.exit(1)


def parse_ttl(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.timedelta | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)([dw])", value)
    if not match or int(match[1]) == 0:
        raise click.BadParameter(f"expected a duration like 30d or 4w, got {value!r}")
    return dt.timedelta(days=int(match[1]) * (7 if match[2] == "w" else 1))


def _print_readiness(state: promotion.Readiness) -> None:
    rule = state.rule
    status = "READY" if state.ready else "NOT READY"
    click.echo(f"{rule.id} ({rule.level.value}, {rule.rule.loc}): {status} to become required: "
               f"{len(state.uncovered)} uncovered violation(s), {len(state.covered)} covered by exemptions in force")
    groups = [("uncovered (blockers)", [(v, "") for v in state.uncovered]),
              ("covered", [(v, ",".join(ids) or "an exemption in force") for v, ids in state.covered])]
    for title, entries in groups:
        if not entries:
            continue
        click.echo(f"{title}:")
        for namespace in sorted({v.namespace or "-" for v, _ in entries}):
            click.echo(f"  namespace {namespace}:")
            for v, note in sorted((e for e in entries if (e[0].namespace or "-") == namespace), key=lambda e: (e[0].workload, e[0].where)):
                click.echo(f"    {v.workload}  {v.where}  ({v.source}){'  by ' + note if note else ''}")


def _recompile(policies_dir: Path, out_dir: Path, as_of: dt.date) -> str:
    """Compile every backend from the edited sources and swap out/ atomically."""
    backends = pipeline.select_backends(())
    program, warnings = pipeline.build_program(policies_dir, as_of)
    warn(warnings)
    files = pipeline.compile_program(program, backends)
    if write_atomically(out_dir, files, pipeline.output_roots(backends)):
        return f"wrote {len(files)} files to {out_dir}"
    return f"{out_dir} was up to date ({len(files)} files), nothing written"


@click.command("promote")
@click.argument("rule_id", metavar="RULE")
@click.option("--evidence", "evidence", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Manifests, cluster dumps or policy reports (repeatable; files or directories).")
@click.option("--backend", default="rego", show_default=True, help="The engine that judges manifests.")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(path_type=Path))
@as_of_option
@policies_option
@click.option("--write", is_flag=True, help="Make the rule required in its source file and recompile out/ (only when ready).")
@click.option("--exempt-current", is_flag=True, help="First write expiring exemptions for the current violators.")
@click.option("--ttl", callback=parse_ttl, metavar="DURATION", help="Lifetime of --exempt-current exemptions, e.g. 30d.")
@click.option("--owner", default="", help="Owner of the exemptions --exempt-current writes.")
@click.option("--ticket", default="", help="Ticket of the exemptions --exempt-current writes.")
def promote(rule_id: str, evidence: tuple[Path, ...], backend: str, out_dir: Path, as_of: dt.date, policies_dir: Path,
                    write: bool, exempt_current: bool, ttl: dt.timedelta | None, owner: str, ticket: str) -> None:
    """Say whether a recommended RULE can become required; with --write, make it so."""
    backends = adapter_backends(backend)
    if exempt_current and (ttl is None or not (owner.strip() or ticket.strip())):
        raise click.UsageError("--exempt-current needs --ttl and an --owner or a --ticket")
    if not evidence:
        raise click.UsageError("give the evidence to judge readiness on: --evidence PATH (manifests or reports)")
    program, warnings = pipeline.build_program(policies_dir, as_of)
    warn(warnings)
    rules = {r.id: r for r in program.rules}
    if rule_id not in rules:
        raise InputError(f"unknown rule {rule_id!r}; known rules: {sorted(rules)}")
    if rules[rule_id].level is ir.Level.REQUIRED:
        raise InputError(f"rule {rule_id!r} is already required", str(rules[rule_id].rule.loc))
    inputs = reading.read(list(evidence), rules)
    for problem in inputs.problems:
        click.echo(f"error: {problem}", err=True)
    warn(inputs.notes)
    if not inputs.files_read:
        raise InputError("no evidence file could be read")
    state = promotion.readiness(program, rule_id, inputs.workloads, inputs.evidence, backends[0])
    changed = False
    if exempt_current and state.uncovered:
        module = policies_dir / promotion.GENERATED_MODULE
        before = module.read_text(encoding="utf-8") if module.exists() else None
        written = promotion.append_exemptions(policies_dir, rule_id, state.uncovered, expires=as_of + ttl,
                                            owner=owner.strip(), ticket=ticket.strip(), as_of=as_of)
        try:
            program, _ = pipeline.build_program(policies_dir, as_of)
        except KupeError:  # the generated exemptions do not load: leave the policies as they were
            if before is None:
                module.unlink()
            else:
                write_text_atomically(module, before)
            raise
        click.echo(f"wrote {len(written)} exemption(s) to {module}, expiring {as_of + ttl}")
        changed = bool(written)
        state = promotion.readiness(program, rule_id, inputs.workloads, inputs.evidence, backends[0])
    _print_readiness(state)
    if write and not state.ready:
        click.echo(f"refusing to promote {rule_id}: {len(state.uncovered)} violation(s) not covered by an exemption "
                   "(fix them, or use --exempt-current --ttl 30d --owner TEAM)", err=True)
        for v in state.uncovered:
            click.echo(f"  blocker: {v.where} {v.workload} in {v.namespace or '-'} ({v.source})", err=True)
        sys.exit(1)
    if write:
        loc = state.rule.rule.loc
        source_path = policies_dir.resolve().parent / loc.file
        original = source_path.read_text(encoding="utf-8")
        try:
            write_text_atomically(source_path, promotion.set_required(original, rule_id, loc.line))
            pipeline.build_program(policies_dir, as_of)
        except KupeError as error:
            write_text_atomically(source_path, original)
            raise InputError(f"cannot promote {rule_id}, {source_path} left unchanged: {error}", str(loc)) from None
        click.echo(f"{rule_id} is now required ({loc})")
        changed = True
    if changed:
        click.echo(_recompile(policies_dir, out_dir, as_of))
