"""Load `policies/`: run each policy file and collect what it declared.

A policy file that fails to parse or raises gives one PolicyError naming the file and line.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from . import dsl, ir
from .errors import KupeError, PolicyError


def policy_files(policies_dir: Path) -> list[Path]:
    """Policy files in a stable order; files starting with `_` are helpers, not entry points."""
    if not policies_dir.is_dir():
        raise PolicyError(f"policy directory {policies_dir} does not exist")
    return sorted(p for p in policies_dir.rglob("*.py") if not p.name.startswith("_"))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _run(path: Path, root: Path) -> None:
    shown = _relative(path, root)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"cannot read policy file: {error}", shown) from None
    try:
        code = compile(source, str(path.resolve()), "exec")
    except SyntaxError as error:
        raise PolicyError(f"syntax error: {error.msg}", ir.Loc(shown, error.lineno or 0)) from None
    try:
        exec(code, {"__name__": f"kupe_policies.{path.stem}", "__file__": str(path)})
    except KupeError:
        raise
    except Exception as error:  # a policy file is user code: any failure becomes a located message
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = frames[-1].lineno if frames else 0
        raise PolicyError(f"{type(error).__name__}: {error}", ir.Loc(shown, line or 0)) from None


def load(policies_dir: Path, root: Path) -> tuple[tuple[ir.PolicySet, ...], tuple[ir.Exemption, ...]]:
    """Run every policy file under `policies_dir`; return the policy sets and exemptions declared."""
    collector, token = dsl.collecting(root)
    try:
        for path in policy_files(policies_dir):
            _run(path, root)
    finally:
        dsl.stop_collecting(token)
    return tuple(ps.build() for ps in collector.policy_sets), tuple(collector.exemptions)
