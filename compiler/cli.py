"""The `kupe-policy` command line.

Exit codes: 0 ok, 1 violations or drift, 2 usage, policy or input errors, 3 an internal error
(a generated artifact that fails its own validation, or any other kupe-policy bug). Errors print
one line with file:line, never a traceback. Commands that need an evaluation engine (the conformance suite)
are plugged in through the `kupe_policy.commands` entry point group, so the compiler never
imports the harness.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from . import pipeline
from .catalog import schedule
from .errors import ArtifactError, KupeError
from .output import stale, write_atomically


INTERNAL_ERROR = ArtifactError.exit_code


class KupeGroup(click.Group):
    """Turns KupeError into a one-line message and its exit code; loads plugin commands lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group="kupe_policy.commands"))})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            for ep in entry_points(group="kupe_policy.commands"):
                if ep.name == name:
                    return ep.load()
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KupeError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # the reader left (`| head`): nothing more to say, and no noise at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as error:  # a bug, never the user's: one line, exit 3 (KUPE_DEBUG=1 shows the traceback)
            if os.environ.get("KUPE_DEBUG"):
                raise
            click.echo(f"internal error: {type(error).__name__}: {error} (a kupe-policy bug; KUPE_DEBUG=1 shows where)", err=True)
            ctx.exit(INTERNAL_ERROR)


def parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date like 2026-11-22, got {value!r}") from None


as_of_option = click.option("--as-of", callback=parse_date, metavar="DATE",
                            help="Resolve exemptions as of this date (default: today).")
policies_option = click.option("--policies", "policies_dir", default="policies", show_default=True,
                               type=click.Path(path_type=Path), help="Policy source directory.")


def warn(messages: list[str]) -> None:
    for message in messages:
        click.echo(f"warning: {message}", err=True)


@click.group(cls=KupeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Compile the policy DSL in policies/ into every engine's artifacts, and prove they agree."""


@main.command("compile")
@click.option("--backend", "backends", multiple=True, help="Only this backend (repeatable; default: all).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(path_type=Path))
@as_of_option
@policies_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 naming the files under out/ that are stale.")
def compile_command(backends: tuple[str, ...], out_dir: Path, as_of: dt.date, policies_dir: Path, check: bool) -> None:
    """Compile policies/ into out/ (atomically, byte-for-byte deterministic)."""
    chosen = pipeline.select_backends(backends)
    program, warnings = pipeline.build_program(policies_dir, as_of)
    warn(warnings)
    files = pipeline.compile_program(program, chosen)
    roots = pipeline.output_roots(chosen)
    if check:
        problems = stale(out_dir, files, roots)
        if problems:
            click.echo(f"{out_dir} is stale; run `kupe-policy compile`:", err=True)
            for problem in problems:
                click.echo(f"  {out_dir / problem}", err=True)
            sys.exit(1)
        click.echo(f"{out_dir} is up to date ({len(files)} files, backends: {', '.join(chosen)})")
        return
    done = f"wrote {len(files)} files to {out_dir}" if write_atomically(out_dir, files, roots) else \
        f"{out_dir} was up to date ({len(files)} files), nothing written"
    click.echo(f"{done} ({len(program.rules)} rules, {len(program.exemptions)} exemptions in force; "
               f"backends: {', '.join(chosen)})")


def parse_days(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """`30d` or `2w` → days."""
    if value is None:
        return None
    unit = {"d": 1, "w": 7}.get(value[-1:])
    if unit is None or not value[:-1].isdigit():
        raise click.BadParameter(f"expected a duration like 30d or 2w, got {value!r}")
    return int(value[:-1]) * unit


@main.command("exemptions")
@as_of_option
@policies_option
@click.option("--expiring-within", callback=parse_days, metavar="DURATION", help="Only exemptions in force that expire within this (e.g. 30d).")
@click.option("--expired", is_flag=True, help="Only exemptions that have expired.")
def exemptions_command(as_of: dt.date, policies_dir: Path, expiring_within: int | None, expired: bool) -> None:
    """List exemptions with owner, ticket and expiry."""
    program, _ = pipeline.build_program(policies_dir, as_of)
    if expired:
        chosen = list(program.expired)
    elif expiring_within is not None:
        chosen = [e for e in program.exemptions if (e.expires - as_of).days <= expiring_within]
    else:
        chosen = [*program.exemptions, *program.expired]
    rows = [("EXEMPTION", "RULES", "OWNER", "TICKET", "EXPIRES", "STATUS", "SOURCE")]
    for e in sorted(chosen, key=lambda e: (e.expires, e.id)):
        days = (e.expires - as_of).days
        status = f"expired {-days}d ago" if days < 0 else f"{days}d left"
        rules = ",".join(e.rules) if len(e.rules) <= 3 else f"{len(e.rules)} rules"
        rows.append((e.id, rules, e.owner or "-", e.ticket or "-", e.expires.isoformat(), status, str(e.loc)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@main.command("rules")
@as_of_option
@policies_option
def rules_command(as_of: dt.date, policies_dir: Path) -> None:
    """List rules with their level, stage or schedule, how each backend expresses them, and exemptions in force."""
    program, warnings = pipeline.build_program(policies_dir, as_of)
    warn(warnings)
    matrix = pipeline.support_matrix(program, [])
    rows = [("RULE", "LEVEL", "ENFORCEMENT", *(b.upper() for b in matrix), "EXEMPTIONS")] + [
        (r.id, r.level.value, schedule(r) or "-", *(matrix[b][r.id].state for b in matrix),
         ",".join(e.id for e in r.all_exemptions) or "-") for r in program.rules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    for backend, by_rule in matrix.items():
        for rule, support in by_rule.items():
            if support.reason:
                click.echo(f"  {backend} {rule}: {support}")
