"""The VAP backend evaluated by the ValidatingAdmissionPolicy emulator (conformance.engines.vap).

Every compiled policy is admitted with each of its bindings, as the API server would admit the
request, in its namespace (`default` when the object names none). A failed validation under a `Deny` binding is
`deny`; under `Audit`/`Warn` only it is `audit`. An evaluation or configuration error is an
`AdapterError`, never a pass: with `failurePolicy: Fail` the API server would reject it.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.metadata import version
from typing import Any

from compiler.ir import DEFAULT_NAMESPACE
from compiler.names import RULE_LABEL
from compiler.render import parse_yaml

from ..engines.vap import Decision, admit
from . import Adapter, AdapterError, Request



class VapAdapter(Adapter):
    backend = "vap"
    engine = f"VAP emulator (conformance.engines.vap) on cel-expr-python {version('cel-expr-python')} (CEL C++)"

    def __init__(self, artifacts: dict[str, str]) -> None:
        policies: dict[str, dict[str, Any]] = {}
        bindings: list[dict[str, Any]] = []
        for path, text in sorted(artifacts.items()):
            if not path.startswith("vap/") or path == "vap/kustomization.yaml":
                continue
            for document in parse_yaml(text):
                if document["kind"] == "ValidatingAdmissionPolicy":
                    policies[document["metadata"]["name"]] = document
                elif document["kind"] == "ValidatingAdmissionPolicyBinding":
                    bindings.append(document)
        self.pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for binding in bindings:
            policy = policies.get(binding["spec"]["policyName"])
            if policy is None:
                raise AdapterError(f"binding {binding['metadata']['name']} names no compiled policy")
            rule = (policy["metadata"].get("labels") or {}).get(RULE_LABEL)
            if not rule:
                raise AdapterError(f"policy {policy['metadata']['name']} has no {RULE_LABEL} label")
            self.pairs.append((rule, policy, binding))

    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        ns = request.namespace or DEFAULT_NAMESPACE
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
        verdicts: dict[str, str] = {}
        for rule, policy, binding in self.pairs:
            if rules is not None and rule not in rules:
                continue
            decision = admit(policy, binding, request.object, operation=request.operation, namespace=namespace,
                             old_object=request.old_object, subresource=request.subresource)
            verdict = _verdict(rule, decision)
            if verdict == "deny" or (verdict == "audit" and verdicts.get(rule) != "deny"):
                verdicts[rule] = verdict
        return verdicts


def _verdict(rule: str, decision: Decision) -> str:
    if decision.error is not None or decision.ignored_errors:
        raise AdapterError(f"rule {rule}: the policy fails to evaluate: {decision.error or decision.ignored_errors[0]}")
    if decision.denied:
        return "deny"
    if any({"Audit", "Warn"} & set(r.actions) for r in decision.results):
        return "audit"
    return "pass"
