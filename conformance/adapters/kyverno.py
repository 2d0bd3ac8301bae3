"""The Kyverno backend evaluated by the Kyverno emulator (proven on Kyverno's own test cases).

Every compiled ClusterPolicy is evaluated against the request with every compiled
PolicyException, as the admission webhook would (Kyverno's webhook sends it every operation;
a Pod rule also sees `pods/ephemeralcontainers` updates). The namespace's labels
are the ones Kubernetes always sets (`kubernetes.io/metadata.name`), with a manifest without
a namespace in `default`, as kubectl would create it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from compiler.names import kyverno_rule_names
from compiler.render import parse_yaml
from conformance.engines import kyverno as engine

from . import Adapter, AdapterError, Request

_VERDICT = {"Enforce": "deny", "Audit": "audit"}


def rule_id(policy: str, rule: str) -> str:
    """Our rule id (the policy's name) from a Kyverno result of the rule or one of its autogen rules."""
    if rule not in kyverno_rule_names(policy):
        raise AdapterError(f"policy {policy} reported unexpected rule {rule}")
    return policy


class KyvernoAdapter(Adapter):
    backend = "kyverno"
    engine = "Kyverno emulator (conformance/engines/kyverno)"

    def __init__(self, artifacts: dict[str, str]) -> None:
        self.policies: list[dict[str, Any]] = []
        self.exceptions: list[dict[str, Any]] = []
        for path, text in sorted(artifacts.items()):
            if not (path.startswith("kyverno/") and path.endswith(".yaml")) or path.endswith("kustomization.yaml"):
                continue
            document, = parse_yaml(text)
            kind = document.get("kind")
            if kind == "ClusterPolicy":
                self.policies.append(document)
            elif kind == "PolicyException":
                self.exceptions.append(document)
            else:
                raise AdapterError(f"{path}: unexpected kind {kind}")
        if not self.policies:
            raise AdapterError("no ClusterPolicy among the Kyverno artifacts")

    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        namespace = request.namespace
        labels = {"kubernetes.io/metadata.name": namespace} if namespace else {}
        verdicts: dict[str, str] = {}
        for policy in self.policies:
            if rules is not None and policy["metadata"]["name"] not in rules:  # a policy is named after its rule
                continue
            for result in engine.evaluate(policy, request.subject, operation=request.operation, exceptions=self.exceptions,
                                          namespace_labels=labels, old_resource=request.old_object,
                                          subresource=request.subresource):
                if result.result == "error":
                    raise AdapterError(f"{result.policy}/{result.rule}: {result.message}")
                if result.result in ("pass", "skip"):
                    continue
                if result.result != "fail" or result.action not in _VERDICT:
                    raise AdapterError(f"{result.policy}/{result.rule}: unexpected result {result.result} ({result.action})")
                rule = rule_id(result.policy, result.rule)
                verdict = _VERDICT[result.action]
                if verdicts.get(rule, verdict) != verdict:
                    raise AdapterError(f"rule {rule} both denies and audits")
                verdicts[rule] = verdict
        return verdicts
