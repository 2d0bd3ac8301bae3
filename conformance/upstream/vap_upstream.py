"""Run the kyverno CLI's ValidatingAdmissionPolicy test cases through our VAP emulator.

Why: the emulator stands in for the API server, so it must reach the verdicts the Kyverno
maintainers recorded for real VAPs. Every record of `<shared>/upstream/expected.json` whose policy
is a ValidatingAdmissionPolicy is replayed the way `kyverno test` replays it:

- the request is a CREATE of the resource (no old object); a resource without a namespace is in
  `default`; the Namespace object has the labels the test's values file (`namespaceSelector`) gives;
- the policy's bindings are those in the test's policy files; with none, the policy is evaluated
  on its own (an implicit binding with `validationActions: [Deny]`); otherwise the first binding
  that selects the resource is used;
- param objects are looked up among the documents of the test's policy and resource files by
  the policy's `paramKind`, then filtered by the binding's `paramRef` (name or selector);
- the verdict maps as Kyverno maps a VAP evaluation: `skip` when not selected or a matchCondition
  is false, `error` when an evaluation error decides, `fail` when a validation fails (whatever the
  binding's validationActions), `pass` otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from conformance.engines.vap import Decision, admit, selector_matches

from . import Outcome, Suite

_VAP = "ValidatingAdmissionPolicy"
_BINDING = "ValidatingAdmissionPolicyBinding"


def vap_records(upstream: Path) -> list[dict[str, Any]]:
    """The expected.json records whose policy is a ValidatingAdmissionPolicy."""
    records = json.loads((upstream / "expected.json").read_text())
    return [r for r in records if r.get("policy_kind") == _VAP and r.get("test_format") == "kyverno-test"]


def case_key(record: dict[str, Any]) -> str:
    ns = f"{record['resource_namespace']}/" if record.get("resource_namespace") else ""
    return f"{record['test_file']}/{record['policy']}/{record['resource_kind']}/{ns}{record['resource_name']}"


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]


def _params_for(policy: dict, binding: dict, candidates: list[dict]) -> list[dict] | None:
    kind = (policy.get("spec") or {}).get("paramKind")
    ref = (binding.get("spec") or {}).get("paramRef")
    if not kind or not ref:
        return None
    of_kind = [d for d in candidates
               if d.get("kind") == kind.get("kind") and d.get("apiVersion") == kind.get("apiVersion")]
    if ref.get("name"):
        return [d for d in of_kind if (d.get("metadata") or {}).get("name") == ref["name"]]
    return [d for d in of_kind
            if selector_matches(ref.get("selector") or {}, (d.get("metadata") or {}).get("labels") or {})]


def kyverno_verdict(decision: Decision) -> str:
    """pass/fail/skip/error as the kyverno CLI reports a VAP evaluation."""
    if not decision.matched:
        return "skip"
    if decision.results:
        return "error" if decision.results[0].evaluation_error else "fail"
    return "error" if decision.ignored_errors else "pass"


def run_record(upstream: Path, record: dict[str, Any]) -> Outcome:
    """Replay one upstream expectation through the emulator."""
    test_file = upstream / record["test_file"]
    test = yaml.safe_load(test_file.read_text())
    base = test_file.parent
    policy_docs = [d for p in test.get("policies") or [] for d in _documents(base / p)]
    resource_docs = [d for p in test.get("resources") or [] for d in _documents(base / p)]

    policy = next(d for d in policy_docs
                  if d.get("kind") == _VAP and d["metadata"]["name"] == record["policy"])
    bindings = [d for d in policy_docs
                if d.get("kind") == _BINDING and (d.get("spec") or {}).get("policyName") == record["policy"]]
    resource = next(
        d for d in resource_docs
        if d.get("kind") == record["resource_kind"]
        and d["metadata"]["name"] == record["resource_name"]
        and (record.get("resource_namespace") is None
             or d["metadata"].get("namespace") == record["resource_namespace"])
    )

    namespaces: dict[str, dict[str, Any]] = {}
    if record.get("variables_file"):
        values = yaml.safe_load((upstream / record["variables_file"]).read_text()) or {}
        for entry in values.get("namespaceSelector") or []:
            namespaces[entry["name"]] = {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": entry["name"],
                                                      "labels": dict(entry.get("labels") or {})}}
    ns_name = resource["metadata"].get("namespace") or "default"

    if not bindings:
        bindings = [{"metadata": {"name": f"{record['policy']}-implicit"},
                     "spec": {"policyName": record["policy"], "validationActions": ["Deny"]}}]
    decision = Decision(matched=False)
    for binding in bindings:
        decision = admit(policy, binding, resource, operation="CREATE",
                         namespace=namespaces.get(ns_name),
                         params=_params_for(policy, binding, policy_docs + resource_docs))
        if decision.selected:
            break
    actual = kyverno_verdict(decision)
    detail = "; ".join(r.message for r in decision.results) or decision.error or ""
    agrees = actual == record["expected"]
    return Outcome(case_key(record), agrees, "" if agrees else f"expected {record['expected']}, emulator {actual} ({detail})")


SUITE = Suite("vap", "ValidatingAdmissionPolicy", "the Kyverno CLI's VAP tests",
              lambda upstream: [run_record(upstream, r) for r in vap_records(upstream)])
