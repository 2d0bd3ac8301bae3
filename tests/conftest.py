"""Shared fixtures: a throw-away copy of the project's policies, and the CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import main

REPO = Path(__file__).resolve().parent.parent


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
