"""Replay the Kyverno maintainers' ``kyverno-test.yaml`` cases through the emulator.

The shared upstream folder holds ``expected.json``, one record per expected
(resource, policy, rule) verdict.  For every ``kyverno-test`` record in scope this
module loads the policy, resource, exceptions and values files the record names,
evaluates the policy with ``conformance.engines.kyverno.evaluate`` and compares the
verdict. In scope: the pattern policies of kyverno/policies pod-security (their CEL twins in
``pod-security-cel`` are CEL, not patterns) and every Kyverno CLI test.

Two CLI conventions are reproduced here rather than in the emulator:

* The CLI reports a rule that did not apply to a resource as ``skip``; the emulator
  returns no result for it, so "no result" is read as ``skip``.
* The CLI places a namespaced resource without a namespace in ``default``.

kyverno/policies names autogen results by the base rule while the CLI tests use
``autogen-<rule>`` / ``autogen-cronjob-<rule>``; either name is accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from conformance.engines.kyverno import RuleResult, evaluate, policy_key

from . import Outcome, Suite

IN_SCOPE = ("kyverno-policies/pod-security/", "kyverno-cli/")

CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "ClusterPolicy", "PriorityClass", "IngressClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CSIDriver",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterPolicyReport",
}


@dataclass(frozen=True)
class Record:
    """One expected verdict from ``expected.json``."""

    raw: Mapping[str, Any]

    @property
    def folder(self) -> str:
        return str(self.raw["source_folder"])

    @property
    def key(self) -> str:
        """folder/policy/rule/kind/[namespace/]name: a known gap names a prefix of it."""
        namespace = self.raw.get("resource_namespace")
        resource = f"{namespace}/{self.raw['resource_name']}" if namespace else self.raw["resource_name"]
        return f"{self.folder}/{self.raw['policy']}/{self.raw.get('rule')}/{self.raw['resource_kind']}/{resource}"


def load_records(upstream: Path) -> list[Record]:
    """All ``kyverno-test`` records of expected.json."""
    data = json.loads((upstream / "expected.json").read_text())
    return [Record(r) for r in data if r.get("test_format") == "kyverno-test"]


@lru_cache(maxsize=None)
def _documents(path: Path) -> tuple[Any, ...]:
    docs = []
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            docs.extend(doc.get("items") or [])
        elif isinstance(doc, dict):
            docs.append(doc)
    return tuple(docs)


def _find_policy(upstream: Path, record: Record) -> dict[str, Any] | None:
    for doc in _documents(upstream / record.raw["policy_file"]):
        if doc.get("kind") in ("ClusterPolicy", "Policy") and policy_key(doc) == record.raw["policy"]:
            return doc
    return None


def _with_default_namespace(resource: dict[str, Any]) -> dict[str, Any]:
    metadata = resource.get("metadata") or {}
    if metadata.get("namespace") or resource.get("kind") in CLUSTER_SCOPED:
        return resource
    return {**resource, "metadata": {**metadata, "namespace": "default"}}


def _find_resource(upstream: Path, record: Record) -> dict[str, Any] | None:
    namespace = record.raw.get("resource_namespace")
    for doc in _documents(upstream / record.raw["resource_file"]):
        metadata = doc.get("metadata") or {}
        if doc.get("kind") != record.raw["resource_kind"] or metadata.get("name") != record.raw["resource_name"]:
            continue
        resource = _with_default_namespace(doc)
        if namespace and resource["metadata"].get("namespace") != namespace:
            continue
        return resource
    return None


@dataclass(frozen=True)
class Values:
    """A kyverno-test ``Values`` document, resolved for one policy and resource."""

    variables: dict[str, Any]
    rule_variables: dict[str, dict[str, Any]]
    foreach_values: dict[str, dict[str, list[Any]]]
    namespace_labels: dict[str, dict[str, str]]


def load_values(path: Path | None, policy_name: str, resource_name: str) -> Values:
    """Global values, then the resource's values, as the CLI computes them."""
    doc: Mapping[str, Any] = {}
    if path is not None:
        doc = next(iter(_documents(path)), {})
    variables = dict(doc.get("globalValues") or {})
    rule_variables: dict[str, dict[str, Any]] = {}
    foreach_values: dict[str, dict[str, list[Any]]] = {}
    for policy in doc.get("policies") or []:
        if policy.get("name") != policy_name:
            continue
        for resource in policy.get("resources") or []:
            if resource.get("name") == resource_name:
                variables.update(resource.get("values") or {})
        for rule in policy.get("rules") or []:
            rule_variables[rule["name"]] = dict(rule.get("values") or {})
            foreach_values[rule["name"]] = dict(rule.get("foreachValues") or {})
    namespace_labels = {n["name"]: dict(n.get("labels") or {}) for n in doc.get("namespaceSelector") or []}
    return Values(variables, rule_variables, foreach_values, namespace_labels)


def _user_info(upstream: Path, record: Record) -> dict[str, Any] | None:
    test = _documents(upstream / record.raw["test_file"])[0]
    name = test.get("userinfo")
    if not name:
        return None
    doc = _documents(upstream / record.folder / name)[0]
    return {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}


def run_record(upstream: Path, record: Record) -> list[RuleResult] | None:
    """Evaluate the record's policy on its resource; None when it cannot be run."""
    policy = _find_policy(upstream, record)
    resource = _find_resource(upstream, record)
    if policy is None or resource is None:
        return None
    variables_file = record.raw.get("variables_file")
    values = load_values(upstream / variables_file if variables_file else None,
                         str((policy.get("metadata") or {}).get("name")), record.raw["resource_name"])
    exceptions = [doc for f in record.raw.get("exception_files") or [] for doc in _documents(upstream / f)
                  if doc.get("kind") == "PolicyException"]
    namespace = (resource.get("metadata") or {}).get("namespace")
    return evaluate(
        policy,
        resource,
        operation="CREATE",
        exceptions=exceptions,
        namespace_labels=values.namespace_labels.get(namespace or ""),
        variables=values.variables,
        user_info=_user_info(upstream, record),
        rule_variables=values.rule_variables,
        foreach_values=values.foreach_values,
    )


def observed_verdict(results: list[RuleResult] | None, rule: str | None) -> str | None:
    """The emulator's verdict for ``rule``: base or autogen names; no result = skip."""
    if results is None or rule is None:
        return None
    base = rule
    for prefix in ("autogen-cronjob-", "autogen-"):
        if rule.startswith(prefix):
            base = rule[len(prefix):]
            break
    names = [rule, base, f"autogen-{base}", f"autogen-cronjob-{base}"]
    for name in names:
        for result in results:
            if result.rule == name:
                return result.result
    return "skip"


def run(upstream: Path) -> list[Outcome]:
    """Every in-scope record, replayed."""
    outcomes = []
    for record in load_records(upstream):
        if not record.folder.startswith(IN_SCOPE):
            continue
        expected = record.raw["expected"]
        observed = observed_verdict(run_record(upstream, record), record.raw.get("rule"))
        agrees = observed == expected
        outcomes.append(Outcome(record.key, agrees, "" if agrees else f"expected {expected}, emulator {observed}"))
    return outcomes


SUITE = Suite("kyverno", "Kyverno", "kyverno/policies pod-security and the Kyverno CLI tests", run)
