"""regopy and the CEL runtime in one process: `compiler` gives them one C++ allocator (compiler/__init__.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CRASH = """
import {first}
import regopy
interpreter = regopy.Interpreter()
interpreter.add_module("m", "package m\\nimport rego.v1\\nx := 1")
assert str(interpreter.query("data.m.x")) == '{{"expressions":[1]}}'
from cel_expr_python import cel
env = cel.NewEnv(variables={{"object": cel.Type.DYN}})
print(env.compile("object.missing").eval(data={{"object": {{}}}}))
"""

# Resident memory growth (MiB; the current resident set: a spawned process inherits its parent's peak) over 300 rego-cpp queries with the CEL runtime loaded first.
LEAK = """
import {first}
import json, os
from cel_expr_python import cel
import regopy
interpreter = regopy.Interpreter()
for r in range(30):
    interpreter.add_module("m%d.rego" % r, "package m%d\\nimport rego.v1\\nv contains c.name if {{ some c in input.containers; not c.ok }}" % r)
bundle = interpreter.build("result = data")
def rss(): return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
for n in range(300):
    interpreter.set_input_term(json.dumps({{"containers": [{{"name": "c%d" % i}} for i in range(5)]}}))
    assert interpreter.query_bundle(bundle).ok()
    if n == 49:
        start = rss()
print(rss() - start)
"""


LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the shared allocator is a Linux matter")


def run(script: str, first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script.format(first=first)], capture_output=True, text=True, timeout=120)


def test_compiler_and_conformance_let_regopy_load_before_the_cel_runtime() -> None:
    for package in ("compiler", "conformance"):
        result = run(CRASH, package)
        assert result.returncode == 0, result.stderr
        assert "Key not found" in result.stdout


@LINUX
def test_rego_queries_do_not_grow_memory_with_the_cel_runtime_loaded() -> None:
    result = run(LEAK, "compiler")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 2


@LINUX
def test_without_one_allocator_the_engines_still_crash_and_leak() -> None:
    """If this starts failing, the engines were fixed and `compiler._one_operator_new` can go."""
    assert run(CRASH, "json").returncode != 0
    leaked = run(LEAK, "json")
    assert leaked.returncode == 0, leaked.stderr
    assert float(leaked.stdout) > 5
