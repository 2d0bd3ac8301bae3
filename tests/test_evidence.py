"""Cluster evidence: Kyverno/OpenReports policy reports and Gatekeeper constraint status, mapped to rule ids."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from compiler import pipeline
from conformance.audit import evidence, reading
from conftest import REPO, run_cli

EVIDENCE = REPO / "tests" / "fixtures" / "evidence"


@pytest.fixture(scope="module")
def rules() -> dict:
    program, _ = pipeline.build_program(REPO / "policies", dt.date(2026, 11, 1))
    return {r.id: r for r in program.rules}


def violations(path: Path, rules: dict) -> set[tuple[str, str, str, str, str]]:
    inputs = reading.read([path], rules)
    return {(v.rule, v.kind, v.namespace, v.name, v.verdict) for v in inputs.evidence}


def test_kyverno_policy_report_scoped_to_its_resource(rules: dict) -> None:
    inputs = reading.read([EVIDENCE / "kyverno-policyreport.yaml"], rules)
    assert [(v.rule, v.kind, v.namespace, v.name, v.verdict, v.line) for v in inputs.evidence] == [
        ("read-only-root-filesystem", "Deployment", "web", "frontend", "audit", 22)]
    assert inputs.foreign_results == 1, "disallow-latest-tag is not a kupe rule"
    assert "autogen-read-only-root-filesystem failed" in inputs.evidence[0].message


def test_cluster_policy_report_list_foreign_results_and_engine_errors(rules: dict) -> None:
    inputs = reading.read([EVIDENCE / "kyverno-clusterpolicyreport.yaml"], rules)
    assert inputs.evidence == [] and inputs.foreign_results == 1
    assert [str(p) for p in inputs.problems] == [
        f"{(EVIDENCE / 'kyverno-clusterpolicyreport.yaml').as_posix()}:29: ClusterPolicyReport 8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0: "
        "the engine could not evaluate disallow-privileged: failed to evaluate preconditions: JMESPath query failed: Unknown key \"spec\" in path"]


def test_openreports_report_fail_and_warn_are_violations(rules: dict) -> None:
    assert violations(EVIDENCE / "openreports-report.yaml", rules) == {
        ("run-as-non-root", "Pod", "ops", "debug-shell", "deny"),
        ("seccomp-runtime-default", "Pod", "ops", "debug-shell", "audit"),
    }


def test_gatekeeper_constraint_status(rules: dict) -> None:
    inputs = reading.read([EVIDENCE / "gatekeeper-constraints.yaml"], rules)
    assert {(v.rule, v.kind, v.namespace, v.name, v.source) for v in inputs.evidence} == {
        ("read-only-root-filesystem", "Deployment", "web", "frontend", "gatekeeper audit (dryrun)"),
        ("read-only-root-filesystem", "Pod", "ops", "debug-shell", "gatekeeper audit (dryrun)"),
    }
    assert inputs.foreign_results == 1 and inputs.problems == []
    assert inputs.notes and "lists 2 of 3 violations" in inputs.notes[0]


@pytest.mark.parametrize("name, message", [
    ("wrong-kind.yaml", "wrong-kind.yaml:1: wgpolicyk8s.io/v1alpha2 has no kind PolicyReporter"),
    ("truncated-report.yaml", "truncated-report.yaml:9: invalid YAML"),
    ("missing-fields.yaml", "missing-fields.yaml:7: PolicyReport incomplete: results[0] has no policy"),
    ("missing-fields.yaml", "missing-fields.yaml:10: PolicyReport incomplete: results[1] (policy drop-all-capabilities, fail) names no resource"),
    ("missing-fields.yaml", "missing-fields.yaml:15: constraint disallow-privileged has no status"),
])
def test_bad_evidence_is_a_located_problem(rules: dict, name: str, message: str) -> None:
    inputs = reading.read([EVIDENCE / "bad" / name], rules)
    assert inputs.evidence == []
    assert any(message in str(p) for p in inputs.problems), [str(p) for p in inputs.problems]


def test_rule_names_must_be_kupe_rule_or_autogen(rules: dict) -> None:
    report = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "r"},
              "results": [{"policy": "run-as-non-root", "rule": "something-else", "result": "fail",
                           "resources": [{"kind": "Pod", "name": "p", "namespace": "a"}]}]}
    found = evidence.read(report, "r.yaml", 1, rules)
    assert found.violations == [] and "is not one of kupe's rules for policy run-as-non-root" in found.problems[0].message
    assert evidence.kyverno_rule_names("run-as-non-root") == (
        "run-as-non-root", "autogen-run-as-non-root", "autogen-cronjob-run-as-non-root")


def test_gatekeeper_constraint_of_the_wrong_kind(rules: dict) -> None:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sPSPPrivileged",
                  "metadata": {"name": "disallow-privileged"}, "status": {"violations": []}}
    found = evidence.read(constraint, "c.yaml", 3, rules)
    assert found.problems[0].where == "c.yaml:3" and "is KupeDisallowPrivileged" in found.problems[0].message


def test_audit_reports_evidence_alongside_manifests(project: Path) -> None:
    result = run_cli("audit", "--as-of", "2026-11-01", "--format", "json", str(EVIDENCE),
                     str(REPO / "tests" / "fixtures" / "manifests" / "mixed" / "apps.yaml"))
    report = json.loads(result.stdout)
    assert result.exit_code == 2, "bad evidence files are input problems (the violations are reported all the same)"
    sources = {v["source"] for v in report["violations"]}
    assert {"rego", "gatekeeper audit (dryrun)", "kyverno PolicyReport (fail)", "kyverno Report (fail)",
            "KyvernoValidatingPolicy PolicyReport (fail)"} <= sources
    assert report["summary"]["evidence_documents"] == 10 and report["summary"]["foreign_results"] == 4
    assert len(report["problems"]) == 6, "bad files are reported, and the run goes on"


def test_validating_policy_results_map_to_their_rule_stage_included(rules: dict) -> None:
    inputs = reading.read([EVIDENCE / "kyverno-vpol-policyreport.yaml"], rules)
    assert [(v.rule, v.kind, v.namespace, v.name, v.verdict) for v in inputs.evidence] == [
        ("read-only-root-filesystem", "Pod", "payments", "checkout", "deny")]  # payments is the rule's stage
    assert inputs.foreign_results == 1 and not inputs.problems
