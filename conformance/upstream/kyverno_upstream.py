"""Replay the Kyverno maintainers' ``kyverno-test.yaml`` cases through the emulator.

The shared upstream folder holds ``expected.json``, one record per expected
(resource, policy, rule) verdict.  For every ``kyverno-test`` record in scope this
module loads the policy, resource, exceptions and values files the record names,
evaluates the policy with ``conformance.engines.kyverno.evaluate`` and compares the
verdict, honouring ``kyverno-known-gaps.yaml``.

Two CLI conventions are reproduced here rather than in the emulator:

* The CLI reports a rule that did not apply to a resource as ``skip``; the emulator
  returns no result for it, so "no result" is read as ``skip``.
* The CLI places a namespaced resource without a namespace in ``default``.

kyverno/policies names autogen results by the base rule while the CLI tests use
``autogen-<rule>`` / ``autogen-cronjob-<rule>``; either name is accepted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from conformance.engines.kyverno import RuleResult, evaluate, policy_key

HERE = Path(__file__).resolve().parent
KNOWN_GAPS_FILE = HERE / "kyverno-known-gaps.yaml"
IN_SCOPE = ("kyverno-policies/pod-security/", "kyverno-cli/")

CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "ClusterPolicy", "PriorityClass", "IngressClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CSIDriver",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterPolicyReport",
}


def shared_upstream(repo_root: Path) -> Path:
    """``<repo>/../shared/upstream``, where the upstream fixtures live."""
    return repo_root.resolve().parent / "shared" / "upstream"


@dataclass(frozen=True)
class Record:
    """One expected verdict from ``expected.json``."""

    raw: Mapping[str, Any]

    @property
    def folder(self) -> str:
        return str(self.raw["source_folder"])

    @property
    def label(self) -> str:
        namespace = self.raw.get("resource_namespace")
        resource = f"{namespace}/{self.raw['resource_name']}" if namespace else self.raw["resource_name"]
        return f"{self.folder}: {self.raw['policy']}/{self.raw.get('rule')} {self.raw['resource_kind']} {resource}"


@dataclass
class Comparison:
    """Outcome of replaying every in-scope record."""

    agree: list[str] = field(default_factory=list)
    known_gaps: list[str] = field(default_factory=list)
    stale_gaps: list[str] = field(default_factory=list)
    disagree: list[str] = field(default_factory=list)
    gap_categories: Counter = field(default_factory=Counter)
    out_of_scope: int = 0

    def summary(self) -> str:
        return f"kyverno upstream: {len(self.agree)} agree, {len(self.known_gaps)} known gaps, {len(self.disagree)} disagree"


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


@dataclass(frozen=True)
class Gap:
    """A known-gaps entry: records the emulator cannot reproduce, with a reason."""

    folder: str
    category: str
    reason: str
    policy: str | None = None
    rule: str | None = None
    resources: tuple[str, ...] = ()

    def covers(self, record: Record) -> bool:
        if not (record.folder == self.folder or record.folder.startswith(self.folder.rstrip("/") + "/")):
            return False
        if self.policy is not None and record.raw["policy"] != self.policy:
            return False
        if self.rule is not None and record.raw.get("rule") != self.rule:
            return False
        return not self.resources or record.raw["resource_name"] in self.resources


@dataclass(frozen=True)
class KnownGaps:
    """Out-of-scope folders and per-record gaps from ``kyverno-known-gaps.yaml``."""

    out_of_scope: tuple[Gap, ...]
    gaps: tuple[Gap, ...]

    def gap_for(self, record: Record) -> Gap | None:
        return next((g for g in self.gaps if g.covers(record)), None)

    def excluded(self, record: Record) -> bool:
        return any(g.covers(record) for g in self.out_of_scope)


def _gap(entry: Mapping[str, Any]) -> Gap:
    return Gap(entry["folder"], entry.get("category", "other"), entry["reason"], entry.get("policy"),
               entry.get("rule"), tuple(entry.get("resources") or ()))


def load_known_gaps(path: Path = KNOWN_GAPS_FILE) -> KnownGaps:
    doc = yaml.safe_load(path.read_text()) or {}
    return KnownGaps(tuple(_gap(e) for e in doc.get("out_of_scope") or []),
                     tuple(_gap(e) for e in doc.get("gaps") or []))


def in_scope(record: Record) -> bool:
    return record.folder.startswith(IN_SCOPE)


def compare(upstream: Path, known: KnownGaps, records: Iterable[Record] | None = None) -> Comparison:
    """Replay every in-scope record and classify it."""
    outcome = Comparison()
    for record in records if records is not None else load_records(upstream):
        if not in_scope(record) or known.excluded(record):
            outcome.out_of_scope += 1
            continue
        expected = record.raw["expected"]
        observed = observed_verdict(run_record(upstream, record), record.raw.get("rule"))
        gap = known.gap_for(record)
        line = f"{record.label}: expected {expected}, emulator {observed}"
        if observed == expected:
            (outcome.stale_gaps if gap else outcome.agree).append(line)
        elif gap:
            outcome.known_gaps.append(line)
            outcome.gap_categories[gap.category] += 1
        else:
            outcome.disagree.append(line)
    return outcome


if __name__ == "__main__":
    result = compare(shared_upstream(HERE.parent.parent), load_known_gaps())
    for line in result.disagree + [f"STALE GAP {s}" for s in result.stale_gaps]:
        print(line)
    print(dict(result.gap_categories))
    print(result.summary())
