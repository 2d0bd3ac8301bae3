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

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by state, so an error raised in a compile worker process reaches the CLI intact."""
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[KupeError], args: tuple[object, ...], state: dict[str, object]) -> KupeError:
    error = Exception.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


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
