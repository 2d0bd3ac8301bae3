"""The Gatekeeper backend's artifacts evaluated by the emulator's CEL engine (K8sNativeValidation).

The same ConstraintTemplates and Constraints as the `gatekeeper` adapter, judged by the templates'
K8sNativeValidation entries instead of their Rego (Gatekeeper 3.17+ prefers the CEL when a
template has both), so the two adapters prove both engines give identical verdicts.

The object is reviewed as the admission webhook receives it: the API server decodes it into typed
structs first, which drops null fields, so nulls are dropped here too (`to_cel`); Gatekeeper's CEL
would otherwise see them (gator reviewing raw manifests does). An expression that errors makes
Gatekeeper report a violation carrying the error (failurePolicy Fail): here it is an
`AdapterError`, never counted as a verdict, let alone a pass.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from ..engines.cel import to_cel
from ..engines.gatekeeper import ConstraintTemplateEngine, EvaluationError, MatchError, TemplateError
from . import Adapter, AdapterError, admission_request
from .gatekeeper import _VERDICT, RULE_LABEL, _namespace, _objects


class GatekeeperCelAdapter(Adapter):
    backend = "gatekeeper-cel"
    artifacts_of = "gatekeeper"
    engine = f"Gatekeeper emulator, K8sNativeValidation engine, on cel-expr-python {version('cel-expr-python')} (CEL C++)"

    def __init__(self, artifacts: dict[str, str]) -> None:
        try:
            engines = {t["spec"]["crd"]["spec"]["names"]["kind"]: ConstraintTemplateEngine(t, engine="cel")
                       for t in _objects(artifacts, "templates")}
        except TemplateError as error:
            raise AdapterError(f"Gatekeeper would refuse a template's CEL: {error}") from None
        constraints = _objects(artifacts, "constraints")
        orphans = [c["metadata"]["name"] for c in constraints if c["kind"] not in engines]
        if orphans:
            raise AdapterError(f"constraints without a template: {orphans}")
        self.pairs = [(engines[c["kind"]], c) for c in constraints]

    def evaluate(self, obj: dict[str, Any]) -> dict[str, str]:
        request = admission_request(to_cel(obj))
        verdicts: dict[str, str] = {}
        for engine, constraint in self.pairs:
            name, rule = constraint["metadata"]["name"], constraint["metadata"]["labels"][RULE_LABEL]
            try:
                violations = engine.review_request(constraint, request, namespace=_namespace(request))
            except (EvaluationError, MatchError) as error:
                raise AdapterError(f"{name}: {error}") from None
            failed = [v.msg for v in violations if v.error]
            if failed:
                raise AdapterError(f"{name}: the CEL fails to evaluate: {failed[0]}")
            for violation in violations:
                verdict = _VERDICT[violation.enforcement_action]
                if verdicts.setdefault(rule, verdict) != verdict:
                    raise AdapterError(f"rule {rule} both denies and audits")
        return verdicts
