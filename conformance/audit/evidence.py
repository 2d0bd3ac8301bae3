"""Audit evidence from clusters: policy reports and Gatekeeper constraint status, mapped to rule ids.

Read as published (never as one engine's private format):

* `wgpolicyk8s.io/v1alpha2` PolicyReport / ClusterPolicyReport and their successor
  `openreports.io/v1alpha1` Report / ClusterReport: `results[]` with `policy` (required), `rule`,
  `result` (pass | fail | warn | error | skip), `severity`, `message`, and the checked objects
  in `resources[]`, or, when a result names none, the report's `scope` (Kyverno writes one
  report per resource, scoped to it).
* Gatekeeper constraints (`constraints.gatekeeper.sh/*`, as `kubectl get constraints -o yaml`
  lists them): the audit's `status.violations[]` (`kind`, `name`, `namespace`, `message`,
  `enforcementAction`) and `status.totalViolations`, which counts violations beyond the
  `--constraint-violations-limit` that status lists.

Mapping to rule ids follows how kupe names what it generates (compiler/backends/kyverno.py and
gatekeeper.py): one Kyverno ClusterPolicy per rule, named by the rule id, whose rule is named
by the rule id, plus Kyverno's autogen rules `autogen-<id>` and `autogen-cronjob-<id>` (cut to
63 characters) for controllers; one Kyverno ValidatingPolicy per rule, `kupe-<id>` (and
`kupe-<id>-enforced` for a stage), whose results' rule names are Kyverno's own; one Gatekeeper
Constraint per rule, named by the rule id, of kind `Kupe<CamelCaseId>`. Results about other policies are counted as foreign and ignored.

`fail` and `warn` are violations; `error` (the engine could not evaluate) is a Problem;
`pass` and `skip` are not evidence of anything to fix. A violation's verdict is what the rule
gives as compiled now (`deny` if required, or enforced in the namespace by a stage), since the
cluster may still run an older stage of the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler import ir
from compiler.ir import DEFAULT_NAMESPACE
from conformance.yamlio import LineDict

from .model import Problem, Violation
from compiler.names import constraint_kind, kyverno_rule_names, rule_of_validating_policy

REPORT_KINDS = {
    "wgpolicyk8s.io": ("PolicyReport", "ClusterPolicyReport"),
    "openreports.io": ("Report", "ClusterReport"),
}
GATEKEEPER_GROUP = "constraints.gatekeeper.sh"
RESULTS = ("pass", "fail", "warn", "error", "skip")
VIOLATED = ("fail", "warn")


@dataclass
class Evidence:
    """What one evidence document contributes."""

    violations: list[Violation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    foreign: int = 0


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def is_evidence(obj: Mapping[str, Any]) -> bool:
    return _group(obj) in REPORT_KINDS or _group(obj) == GATEKEEPER_GROUP


def verdict(rule: ir.ResolvedRule, namespace: str) -> str:
    """What the rule, as compiled now, does to a violation in `namespace`."""
    return "deny" if rule.level is ir.Level.REQUIRED or namespace in rule.enforced_in else "audit"




def _line(value: Any, default: int) -> int:
    return value.line if isinstance(value, LineDict) and value.line else default


def _subjects(result: dict[str, Any], report: dict[str, Any]) -> list[Any] | None:
    resources = result.get("resources")
    if resources:
        return resources if isinstance(resources, list) else None
    scope = report.get("scope")
    return [scope] if scope else []


def _read_report(report: dict[str, Any], file: str, line: int, rules: Mapping[str, ir.ResolvedRule]) -> Evidence:
    found = Evidence()
    where = f"{file}:{line}"
    title = f"{report['kind']} {(report.get('metadata') or {}).get('name', '?')}"
    results = report.get("results", [])
    if results is None:
        results = []
    if not isinstance(results, list):
        found.problems.append(Problem(where, f"{title}: results must be a list"))
        return found
    for index, result in enumerate(results):
        at_line = _line(result, line)
        at = f"{file}:{at_line}"
        if not isinstance(result, dict):
            found.problems.append(Problem(at, f"{title}: results[{index}] is not a mapping"))
            continue
        policy, rule_name, outcome = result.get("policy"), result.get("rule", ""), result.get("result")
        if not isinstance(policy, str) or not policy:
            found.problems.append(Problem(at, f"{title}: results[{index}] has no policy (a required field)"))
            continue
        vpol_rule = None if policy in rules else rule_of_validating_policy(policy, rules)
        if policy not in rules and vpol_rule is None:
            found.foreign += 1
            continue
        if outcome not in RESULTS:
            found.problems.append(Problem(at, f"{title}: results[{index}] (policy {policy}): result must be one of {list(RESULTS)}, got {outcome!r}"))
            continue
        if vpol_rule is None and rule_name and rule_name not in kyverno_rule_names(policy):
            found.problems.append(Problem(at, f"{title}: results[{index}]: rule {rule_name!r} is not one of kupe's rules for policy {policy} {list(kyverno_rule_names(policy))}"))
            continue
        if outcome == "error":
            found.problems.append(Problem(at, f"{title}: the engine could not evaluate {policy}: {result.get('message', 'no message')}"))
            continue
        if outcome not in VIOLATED:
            continue
        rule_id = vpol_rule or policy
        subjects = _subjects(result, report)
        if subjects is None or not subjects or not all(isinstance(s, dict) and s.get("kind") and s.get("name") for s in subjects):
            found.problems.append(Problem(at, f"{title}: results[{index}] (policy {policy}, {outcome}) names no resource with kind and name (resources[] or the report's scope)"))
            continue
        source = result.get("source") or report.get("source") or "policy report"
        for subject in subjects:
            namespace = subject.get("namespace") or ""
            found.violations.append(Violation(
                rule=rule_id, verdict=verdict(rules[rule_id], namespace or DEFAULT_NAMESPACE), kind=str(subject["kind"]),
                namespace=namespace, name=str(subject["name"]), file=file, line=at_line,
                source=f"{source} {report['kind']} ({outcome})", message=str(result.get("message", "")),
            ))
    return found


def _read_constraint(constraint: dict[str, Any], file: str, line: int, rules: Mapping[str, ir.ResolvedRule]) -> Evidence:
    found = Evidence()
    where = f"{file}:{line}"
    metadata = constraint.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        found.problems.append(Problem(where, f"{constraint['kind']} constraint without metadata.name"))
        return found
    if name not in rules:
        found.foreign += 1
        return found
    if constraint["kind"] != constraint_kind(name):
        found.problems.append(Problem(where, f"constraint {name} has kind {constraint['kind']}; kupe's constraint for rule {name} is {constraint_kind(name)}"))
        return found
    status = constraint.get("status")
    if not isinstance(status, dict):
        found.problems.append(Problem(where, f"constraint {name} has no status: Gatekeeper's audit has not reported on it (yet)"))
        return found
    violations = status.get("violations") or []
    if not isinstance(violations, list):
        found.problems.append(Problem(f"{file}:{_line(status, line)}", f"constraint {name}: status.violations must be a list"))
        return found
    total = status.get("totalViolations")
    if isinstance(total, int) and total > len(violations):
        found.notes.append(f"{where}: constraint {name} lists {len(violations)} of {total} violations "
                           "(Gatekeeper's --constraint-violations-limit); audit the manifests for the rest")
    for index, entry in enumerate(violations):
        at_line = _line(entry, line)
        at = f"{file}:{at_line}"
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str) or not isinstance(entry.get("name"), str):
            found.problems.append(Problem(at, f"constraint {name}: status.violations[{index}] needs a kind and a name"))
            continue
        namespace = entry.get("namespace") or ""
        action = entry.get("enforcementAction", "")
        found.violations.append(Violation(
            rule=name, verdict=verdict(rules[name], namespace or DEFAULT_NAMESPACE), kind=entry["kind"], namespace=namespace,
            name=entry["name"], file=file, line=at_line,
            source=f"gatekeeper audit ({action})" if action else "gatekeeper audit", message=str(entry.get("message", "")),
        ))
    return found


def read(obj: dict[str, Any], file: str, line: int, rules: Mapping[str, ir.ResolvedRule]) -> Evidence:
    """The violations one evidence object reports; a malformed object gives Problems, never an exception."""
    group = _group(obj)
    if group == GATEKEEPER_GROUP:
        return _read_constraint(obj, file, line, rules)
    if obj["kind"] not in REPORT_KINDS[group]:
        return Evidence(problems=[Problem(f"{file}:{line}", f"{obj['apiVersion']} has no kind {obj['kind']}; "
                                                              f"expected one of {list(REPORT_KINDS[group])}")])
    return _read_report(obj, file, line, rules)
