"""Shared fixtures: a throw-away copy of the project's policies, the CLI runner, and small programs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler import ir, passes
from compiler.cli import main
from compiler.dsl import PolicySet

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)

# Every test checks every artifact: a remembered pass (compiler.proven) would skip the checks a
# test patches or breaks. tests/test_proven.py turns remembering on in a folder of its own.
os.environ["KUPE_POLICY_CACHE"] = "off"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project folder holding a copy of policies/, as the current directory."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)


def run_cli(*args: str) -> Result:
    """Invoke the CLI in-process; an uncaught exception fails the test instead of printing a traceback."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def program(*rules_and_exemptions: object, audit_action: str = "dryrun") -> ir.Program:
    """A program of one policy set: each callable declares rules on it; the exemptions are in force."""
    ps = PolicySet("demo", title="Demo", audit_action=audit_action)
    for build in rules_and_exemptions:
        if callable(build):
            build(ps)
    exemptions = tuple(e for e in rules_and_exemptions if isinstance(e, ir.Exemption))
    return passes.resolve((ps.build(),), exemptions, AS_OF)[0]
