"""The kyverno-vpol backend evaluated by the ValidatingPolicy emulator (conformance.engines.kyverno_vpol).

Every compiled ValidatingPolicy is evaluated against the request with every compiled
PolicyException, as Kyverno's admission webhook would, at the moment of the request (an
exception past its `expiresAt` no longer applies). The request's Namespace carries the label
Kubernetes always sets (`kubernetes.io/metadata.name`), a manifest without a namespace being in
`default`. A failure (or error) under `Deny` is `deny`, under `Audit`/`Warn` `audit`; an error is
an `AdapterError` whatever the actions, never a pass.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.metadata import version
from typing import Any

from compiler.ir import DEFAULT_NAMESPACE
from compiler.names import RULE_LABEL
from compiler.render import parse_yaml

from ..engines import kyverno_vpol as engine
from . import Adapter, AdapterError, Request

_FOLDER = "kyverno-vpol/"


class KyvernoVpolAdapter(Adapter):
    backend = "kyverno-vpol"
    engine = f"Kyverno ValidatingPolicy emulator (conformance.engines.kyverno_vpol) on cel-expr-python {version('cel-expr-python')}"

    def __init__(self, artifacts: dict[str, str]) -> None:
        self.policies: list[tuple[str, dict[str, Any]]] = []
        self.exceptions: list[dict[str, Any]] = []
        for path, text in sorted(artifacts.items()):
            if not path.startswith(_FOLDER) or path.endswith("kustomization.yaml"):
                continue
            for document in parse_yaml(text):
                if document["kind"] in engine.POLICY_KINDS:
                    rule = (document["metadata"].get("labels") or {}).get(RULE_LABEL)
                    if not rule:
                        raise AdapterError(f"{path}: policy {document['metadata']['name']} has no {RULE_LABEL} label")
                    self.policies.append((rule, document))
                elif document["kind"] == "PolicyException":
                    self.exceptions.append(document)
                else:
                    raise AdapterError(f"{path}: unexpected kind {document['kind']}")

    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        ns = request.namespace or DEFAULT_NAMESPACE
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
        verdicts: dict[str, str] = {}
        for rule, policy in self.policies:
            if rules is not None and rule not in rules:
                continue
            result = engine.evaluate(policy, request.object, operation=request.operation, old_object=request.old_object,
                                     namespace=namespace, exceptions=self.exceptions, subresource=request.subresource,
                                     now=request.at)
            if result.status == "error":
                raise AdapterError(f"rule {rule}: policy {policy['metadata']['name']} fails to evaluate: {'; '.join(result.messages)}")
            if result.status == "fail":
                verdict = "deny" if result.denied else "audit"
                if verdict == "deny" or verdicts.get(rule) != "deny":
                    verdicts[rule] = verdict
        return verdicts
