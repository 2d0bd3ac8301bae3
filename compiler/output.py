"""Writing out/ atomically, and comparing it with what the sources compile to."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def owned_files(out_dir: Path, roots: list[str]) -> dict[str, Path]:
    """Files now under out/ that this compilation owns: whole backend folders, and single files."""
    found: dict[str, Path] = {}
    for root in roots:
        path = out_dir / root
        if path.is_file():
            found[root] = path
        elif path.is_dir():
            found.update({p.relative_to(out_dir).as_posix(): p for p in path.rglob("*") if p.is_file()})
    return found


def stale(out_dir: Path, files: dict[str, str], roots: list[str]) -> list[str]:
    """Paths under out/ that differ from `files`: changed, missing, or no longer generated."""
    existing = owned_files(out_dir, roots)
    problems = []
    for rel in sorted(set(files) | set(existing)):
        if rel not in existing:
            problems.append(f"{rel} (missing)")
        elif rel not in files:
            problems.append(f"{rel} (no longer generated)")
        elif existing[rel].read_bytes() != files[rel].encode("utf-8"):
            problems.append(f"{rel} (differs)")
    return problems


def write_atomically(out_dir: Path, files: dict[str, str], roots: list[str]) -> None:
    """Replace each root under out/ by its new content, so out/ never holds a half-written root.

    Everything is written to a staging folder beside out/ first; each root is then swapped in
    with renames, and the old copy removed only after the new one is in place.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kupe-staging-", dir=out_dir))
    try:
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        for root in roots:
            new, current, old = staging / root, out_dir / root, staging / (root + ".old")
            if current.exists():
                old.parent.mkdir(parents=True, exist_ok=True)
                os.replace(current, old)
            if new.exists():
                os.replace(new, current)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Replace one file's text in a single rename, so readers see the old file or the new one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
