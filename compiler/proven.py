"""Which backends' artifacts have passed their checks before, so an unchanged compile is not checked again.

Checking every artifact (parse-back: YAML, strict schemas, rego-cpp bundle builds, CEL compiles)
is most of the time of a compile of a large policy set. It is a pure function of the artifacts
and of the code and engines that check them, so a pass is remembered under a SHA-256 of:
- the backend's name, and every artifact's path and bytes;
- the checker: every file of the `compiler` package (its code and schemas), the Python version,
  and the versions of the installed packages the checks run (CHECKER_DISTRIBUTIONS).
A compile whose artifacts hash to a remembered pass skips parse-back; anything else, a failure
included, is checked in full (a failure is never remembered, so it reports its exact error).
Only built-in backends are remembered: a plugin's checks live outside `compiler`.

Each pass is an empty file named by its key in the cache folder: $KUPE_POLICY_CACHE, else
$XDG_CACHE_HOME/kupe-policy/proven, else ~/.cache/kupe-policy/proven. KUPE_POLICY_CACHE=off
turns remembering off. A folder that cannot be read or written is ignored: the compile checks
everything, as without a cache.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The installed packages whose code decides whether an artifact passes its checks.
CHECKER_DISTRIBUTIONS = ("regopy", "cel-expr-python", "PyYAML", "jsonschema-rs", "kubernetes-validate")
PACKAGE_DIR = Path(__file__).resolve().parent
KEPT = 1_000  # passes kept; beyond this the oldest half is forgotten


def folder() -> Path | None:
    """Where passes are remembered, or None when remembering is off."""
    chosen = os.environ.get("KUPE_POLICY_CACHE", "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home folder to be found
        return None
    return Path(base) / "kupe-policy" / "proven"


@cache
def checker_fingerprint() -> bytes:
    """A digest of everything besides the artifacts that decides whether they pass."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"\0{path.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    for distribution in CHECKER_DISTRIBUTIONS:
        try:
            found = version(distribution)
        except PackageNotFoundError:
            found = "absent"
        digest.update(f"\0{distribution}=={found}".encode())
    return digest.digest()


def key(backend: type, files: dict[str, str]) -> str | None:
    """The key of a pass of `backend` on `files`, or None when it is not to be remembered."""
    if folder() is None or not backend.__module__.startswith(f"{__package__}."):
        return None
    digest = hashlib.sha256(checker_fingerprint())
    digest.update(f"{backend.__module__}.{backend.__qualname__}".encode())
    for path, text in sorted(files.items()):
        data = text.encode("utf-8")
        digest.update(f"\0{path}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def known(pass_key: str | None) -> bool:
    """Whether this pass is remembered (then it is marked as used now: the least recently used
    passes are the ones forgotten)."""
    where = folder()
    if pass_key is None or where is None:
        return False
    try:
        os.utime(where / pass_key)
    except OSError:
        return False
    return True


def remember(pass_key: str | None) -> None:
    """Remember a pass; a folder that cannot be written is ignored."""
    where = folder()
    if pass_key is None or where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        (where / pass_key).touch()
        entries = list(where.iterdir())
        if len(entries) > KEPT:
            for old in sorted(entries, key=lambda entry: entry.stat().st_mtime)[: len(entries) // 2]:
                old.unlink(missing_ok=True)
    except OSError:
        pass
