"""The lowering contract every backend follows, after sqlglot's Generator.

A lowering turns one resolved rule's IR into one engine's language. `lower(node, check, ...)`
dispatches on the node's type to the method `lower_<Type>`; a node without such a method is
refused with `unsupported`: an UnsupportedError naming the rule, the construct, the backend and
the policy file:line. A backend declares only what differs: the nodes it can lower, and where
it refuses a node it cannot express exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ir
from .errors import UnsupportedError


@dataclass(frozen=True)
class Lowering:
    rule: ir.ResolvedRule
    backend: str

    def lower(self, node: object, check: ir.Check | None, *args: Any) -> Any:
        """`lower_<type of node>(node, check, *args)`, or the refusal of a node this backend has no lowering for."""
        method = getattr(self, f"lower_{type(node).__name__}", None)
        if method is None:
            raise self.unsupported(node, check, f"no {self.backend} lowering for {type(node).__name__}")
        return method(node, check, *args)

    def unsupported(self, node: object, at: ir.Check | ir.Loc | None, why: str) -> UnsupportedError:
        """The refusal of `node` (an IR node, or the name of a construct) at a check, a location, or the rule."""
        loc = at.loc if isinstance(at, ir.Check) else at if isinstance(at, ir.Loc) else self.rule.rule.loc
        construct = node if isinstance(node, str) else type(node).__name__
        return UnsupportedError(rule=self.rule.id, construct=construct, backend=self.backend, loc=loc, why=why)
