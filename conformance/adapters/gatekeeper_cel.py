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
from ..engines.gatekeeper import Violation
from . import AdapterError, Request, admission_request
from .gatekeeper import GatekeeperAdapter


def _cel(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if obj is None else to_cel(obj)


class GatekeeperCelAdapter(GatekeeperAdapter):
    backend = "gatekeeper-cel"
    artifacts_of = "gatekeeper"
    engine = f"Gatekeeper emulator, K8sNativeValidation engine, on cel-expr-python {version('cel-expr-python')} (CEL C++)"
    template_engine = "cel"

    def request(self, request: Request) -> dict[str, Any]:
        return admission_request(Request(request.operation, _cel(request.object), _cel(request.old_object), request.subresource))

    def check(self, constraint: str, rule: str, violation: Violation) -> None:
        if violation.error:
            raise AdapterError(f"{constraint}: the CEL fails to evaluate: {violation.msg}")
