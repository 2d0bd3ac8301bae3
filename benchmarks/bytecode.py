"""Measure kupe-policy as installed: with its bytecode compiled.

An installed package, or a checkout run once, imports its modules from `__pycache__`. Where
PYTHONDONTWRITEBYTECODE is set (as on the machines these benchmarks were first run on) and the
package is installed in editable mode, nothing ever writes that cache, so every process would
compile kupe-policy's sources again (0.1 to 0.25 s each here), and the benchmarks would time that.
"""

from __future__ import annotations

import compileall
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("compiler", "conformance")


def compile_packages() -> None:
    """Write the bytecode of kupe-policy's packages, as `pip install` does, before anything is timed."""
    for package in PACKAGES:
        if not compileall.compile_dir(REPO / package, quiet=1):
            raise SystemExit(f"{package}: some module does not compile")
    print(f"bytecode: compiled for {', '.join(PACKAGES)} (as installed)", flush=True)
