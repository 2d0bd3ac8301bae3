"""The Gatekeeper backend evaluated by the Gatekeeper emulator (template Rego in regopy, Gatekeeper's match).

Each ConstraintTemplate is compiled once; every request is reviewed against every Constraint as
the admission webhook would see it: the AdmissionRequest of `admission_request` (namespace
defaulted to "default") and the request's Namespace, which Gatekeeper's namespace criteria
(`namespaces`, `excludedNamespaces`) judge. Every request reaches the templates, DELETE and
subresources included (Gatekeeper's default webhook sends CREATE and UPDATE, `pods/ephemeralcontainers`
among the subresources; `enableDeleteOperations` adds DELETE): the templates must judge each
one right whatever the webhook is configured to send.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import regopy

from compiler.names import RULE_LABEL
from compiler.render import parse_yaml

from ..engines.gatekeeper import ConstraintTemplateEngine, EvaluationError, MatchError, TemplateError, Violation
from . import Adapter, AdapterError, Request, admission_request

VERDICTS = {"deny": "deny", "dryrun": "audit", "warn": "audit"}  # enforcementAction → the suite's verdict


def _objects(artifacts: dict[str, str], folder: str) -> list[dict[str, Any]]:
    """Every object of one folder of out/gatekeeper, kustomizations left out."""
    prefix = f"gatekeeper/{folder}/"
    return [document for path, text in sorted(artifacts.items())
            if path.startswith(prefix) and not path.endswith("/kustomization.yaml")
            for document in parse_yaml(text)]


def _namespace(request: dict[str, Any]) -> dict[str, Any] | None:
    name = request.get("namespace")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} if name else None


class GatekeeperAdapter(Adapter):
    backend = "gatekeeper"
    engine = f"Gatekeeper emulator (regopy {regopy.__version__})"
    template_engine = "rego"  # which engine of each ConstraintTemplate judges

    def __init__(self, artifacts: dict[str, str]) -> None:
        try:
            engines = {t["spec"]["crd"]["spec"]["names"]["kind"]: ConstraintTemplateEngine(t, engine=self.template_engine)
                       for t in _objects(artifacts, "templates")}
        except TemplateError as error:
            raise AdapterError(f"Gatekeeper would refuse a template ({self.template_engine}): {error}") from None
        constraints = _objects(artifacts, "constraints")
        orphans = [c["metadata"]["name"] for c in constraints if c["kind"] not in engines]
        if orphans:
            raise AdapterError(f"constraints without a template: {orphans}")
        self.pairs = [(engines[c["kind"]], c) for c in constraints]

    def request(self, request: Request) -> dict[str, Any]:
        return admission_request(request)

    def check(self, constraint: str, rule: str, violation: Violation) -> None:
        """A violation must come from the constraint's own rule."""
        reported = violation.details.get("rule") if isinstance(violation.details, dict) else None
        if reported != rule:
            raise AdapterError(f"constraint {constraint} (rule {rule}) reported rule {reported!r}")

    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        review = self.request(request)
        verdicts: dict[str, str] = {}
        for engine, constraint in self.pairs:
            name, rule = constraint["metadata"]["name"], constraint["metadata"]["labels"][RULE_LABEL]
            if rules is not None and rule not in rules:
                continue
            try:
                violations = engine.review_request(constraint, review, namespace=_namespace(review))
            except (EvaluationError, MatchError) as error:
                raise AdapterError(f"{name}: {error}") from None
            for violation in violations:
                self.check(name, rule, violation)
                verdict = VERDICTS[violation.enforcement_action]
                if verdicts.setdefault(rule, verdict) != verdict:
                    raise AdapterError(f"rule {rule} both denies and audits")
        return verdicts
