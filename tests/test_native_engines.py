"""regopy and the CEL runtime in one process: the import order in compiler/__init__.py keeps it alive."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import {first}
import regopy
interpreter = regopy.Interpreter()
interpreter.add_module("m", "package m\\nimport rego.v1\\nx := 1")
assert str(interpreter.query("data.m.x")) == '{{"expressions":[1]}}'
from cel_expr_python import cel
env = cel.NewEnv(variables={{"object": cel.Type.DYN}})
print(env.compile("object.missing").eval(data={{"object": {{}}}}))
"""


def run(first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(first=first)], capture_output=True, text=True, timeout=60)


def test_compiler_and_conformance_load_cel_before_regopy() -> None:
    for package in ("compiler", "conformance"):
        result = run(package)
        assert result.returncode == 0, result.stderr
        assert "Key not found" in result.stdout


def test_the_crash_still_exists_without_the_import_order() -> None:
    """If this starts passing, the engines were fixed and the workaround can go."""
    assert run("json").returncode != 0
