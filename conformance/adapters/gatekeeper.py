"""The Gatekeeper backend evaluated by the Gatekeeper emulator (template Rego in regopy, Gatekeeper's match).

Each ConstraintTemplate is compiled once; every object is reviewed against every Constraint as
the admission webhook would see it: the AdmissionRequest of `admission_request` (namespace
defaulted to "default") and the request's Namespace, which Gatekeeper's namespace criteria
(`excludedNamespaces`) judge.
"""

from __future__ import annotations

from typing import Any

import regopy
import yaml

from ..engines.gatekeeper import ConstraintTemplateEngine, EvaluationError, MatchError, TemplateError
from . import Adapter, AdapterError, admission_request

_VERDICT = {"deny": "deny", "dryrun": "audit", "warn": "audit"}


def _documents(artifacts: dict[str, str], folder: str) -> dict[str, dict[str, Any]]:
    """Objects of one folder of out/gatekeeper, by file name, kustomizations left out."""
    prefix = f"gatekeeper/{folder}/"
    return {path.removeprefix(prefix): yaml.safe_load(text) for path, text in sorted(artifacts.items())
            if path.startswith(prefix) and not path.endswith("/kustomization.yaml")}


def _namespace(request: dict[str, Any]) -> dict[str, Any] | None:
    name = request.get("namespace")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} if name else None


class GatekeeperAdapter(Adapter):
    backend = "gatekeeper"
    engine = f"Gatekeeper emulator (regopy {regopy.__version__})"

    def __init__(self, artifacts: dict[str, str]) -> None:
        templates = _documents(artifacts, "templates")
        constraints = _documents(artifacts, "constraints")
        if set(templates) != set(constraints):
            raise AdapterError(f"templates and constraints differ: {sorted(set(templates) ^ set(constraints))}")
        try:
            self.pairs = [(ConstraintTemplateEngine(templates[name]), constraints[name]) for name in sorted(templates)]
        except TemplateError as error:
            raise AdapterError(f"Gatekeeper would refuse a template: {error}") from None

    def evaluate(self, obj: dict[str, Any]) -> dict[str, str]:
        request = admission_request(obj)
        verdicts: dict[str, str] = {}
        for engine, constraint in self.pairs:
            try:
                violations = engine.review_request(constraint, request, namespace=_namespace(request))
            except (EvaluationError, MatchError) as error:
                raise AdapterError(f"{constraint['metadata']['name']}: {error}") from None
            for violation in violations:
                rule = violation.details.get("rule") if isinstance(violation.details, dict) else None
                if rule != constraint["metadata"]["name"]:
                    raise AdapterError(f"constraint {constraint['metadata']['name']} reported rule {rule!r}")
                verdicts[rule] = _VERDICT[violation.enforcement_action]
        return verdicts
