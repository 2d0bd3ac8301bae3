"""Errors that reach the user as one line naming where the problem is."""

from __future__ import annotations

from .ir import Loc


class KupeError(Exception):
    """A user-facing error. The CLI prints `str(error)` and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, loc: Loc | str | None = None) -> None:
        self.message = message
        self.loc = loc
        super().__init__(f"{loc}: {message}" if loc else message)


class PolicyError(KupeError):
    """A policy source file is malformed: bad Python, a bad DSL call, an inconsistent reference."""


class InputError(KupeError):
    """A fixture, manifest or other input file cannot be used."""


class UnsupportedError(KupeError):
    """A backend cannot express a construct exactly, so compilation refuses it."""

    def __init__(self, *, rule: str, construct: str, backend: str, loc: Loc, why: str = "") -> None:
        detail = f": {why}" if why else ""
        super().__init__(f"rule {rule!r}: backend {backend!r} cannot express {construct} exactly{detail}", loc)
        self.rule, self.construct, self.backend = rule, construct, backend


class ArtifactError(KupeError):
    """A rendered artifact failed to parse back or to validate: a compiler bug, never written out."""

    exit_code = 3
