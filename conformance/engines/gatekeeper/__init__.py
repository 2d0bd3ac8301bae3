"""Gatekeeper emulator: ConstraintTemplate Rego in regopy plus Gatekeeper's match and enforcement."""
from .engine import (
    GATOR_POINT,
    WEBHOOK_POINT,
    ConstraintTemplateEngine,
    EvaluationError,
    TemplateError,
    Violation,
    admission_request,
    inventory_tree,
    matches,
    review,
)
from .match import MatchError, selector_matches, wildcard_matches
from .rego_source import RegoSourceError, UnsupportedBuiltinError

__all__ = [
    "GATOR_POINT",
    "WEBHOOK_POINT",
    "ConstraintTemplateEngine",
    "EvaluationError",
    "MatchError",
    "RegoSourceError",
    "TemplateError",
    "UnsupportedBuiltinError",
    "Violation",
    "admission_request",
    "inventory_tree",
    "matches",
    "review",
    "selector_matches",
    "wildcard_matches",
]
