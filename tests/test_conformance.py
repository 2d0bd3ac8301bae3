"""The conformance suite, parametrized over every backend that has an adapter (ibis-style).

Each backend's compiled artifacts are evaluated by its engine (regopy, the CEL runtime, or an
emulator proven on the engine maintainers' own tests); every case × rule verdict must match
the case's expectation, and all backends must agree with each other.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from compiler.pipeline import build_program
from conformance import runner
from conformance.adapters import admitted, all_adapters
from conformance.suite import CONTROLLERS, load_cases, wrap

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"
BACKENDS = list(all_adapters())


@pytest.fixture(scope="session")
def cases() -> list:
    program, _ = build_program(POLICIES, runner.SUITE_AS_OF)
    return load_cases(rules={r.id for r in program.rules})


@pytest.fixture(scope="session")
def results(cases: list) -> dict[str, list[runner.Record]]:
    return {backend: runner.run(cases, [backend], POLICIES) for backend in BACKENDS}


def test_suite_covers_every_rule_kind_and_edge(cases: list) -> None:
    program, _ = build_program(POLICIES, runner.SUITE_AS_OF)
    assert len(cases) >= 300
    assert {c.kind for c in cases} >= {"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}
    violated = {rule for c in cases for rule, verdict in c.expect.items() if verdict != "pass"}
    assert violated == {r.id for r in program.rules}, "every rule needs at least one violating case"
    assert {c.exemption for c in cases if c.exemption} == {e.id for e in program.exemptions}, "every exemption needs an in-scope case"
    assert any(c.as_of for c in cases), "expired-exemption cases compile at a later date"
    for rule in program.rules:
        if rule.enforced_in:
            verdicts = {c.expected(rule.id) for c in cases if c.request.namespace in rule.enforced_in}
            assert verdicts >= {"deny", "pass"}, f"staged rule {rule.id} needs cases inside its stage"
        if rule.rule.enforce_from:
            dated = {c.expected(rule.id) for c in cases if c.as_of and c.as_of >= rule.rule.enforce_from}
            assert "deny" in dated, f"scheduled rule {rule.id} needs a case after its enforce_from date"


def test_the_decoder_refuses_what_the_cases_say_and_nothing_else(cases: list) -> None:
    assert not runner.decoding_failures(cases)


def test_requests_cover_every_rule_and_operation(cases: list) -> None:
    program, _ = build_program(POLICIES, runner.SUITE_AS_OF)
    updates = [c for c in cases if c.request.operation == "UPDATE" and not c.request.subresource]
    assert {rule for c in updates for rule, verdict in c.expect.items() if verdict != "pass"} == {r.id for r in program.rules}
    assert {rule for c in cases if c.name.startswith("requests/") for rule in program.rules
            if f"requests/{rule.id}/" in c.name} == set(program.rules), "every rule has its request cases"
    assert {(c.request.operation, c.request.subresource) for c in cases} >= {
        ("CREATE", ""), ("UPDATE", ""), ("DELETE", ""), ("UPDATE", "status"), ("UPDATE", "ephemeralcontainers")}
    assert {c.kind for c in updates} >= {"Pod", *CONTROLLERS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_gives_every_expected_verdict(backend: str, results: dict[str, list[runner.Record]]) -> None:
    records = results[backend]
    failures = runner.failed(records)
    assert not failures, runner.matrix(failures)
    assert {r.status for r in records} <= {"ok", "xfail"}


def test_backends_agree_with_each_other(results: dict[str, list[runner.Record]], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():  # the rule × backend matrix, as `kupe-policy test` prints it
        print("\n" + runner.matrix([r for records in results.values() for r in records]))
    verdicts: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for backend, records in results.items():
        for r in records:
            verdicts[(r.case, r.kind, r.rule)][backend] = r.actual
    disagreements = {key: by_backend for key, by_backend in verdicts.items() if len(set(by_backend.values())) > 1}
    assert not disagreements, list(disagreements.items())[:10]


def test_controller_wrapping_keeps_the_pod_spec_and_labels() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
           "spec": {"containers": [{"name": "c"}]}}
    cronjob = wrap(pod, "CronJob")
    assert cronjob["apiVersion"] == "batch/v1" and cronjob["metadata"] == pod["metadata"]
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert template["spec"]["containers"] == pod["spec"]["containers"] and template["metadata"]["labels"] == {"a": "b"}
    assert wrap(pod, "Deployment")["spec"]["template"]["spec"] == pod["spec"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_committed_artifacts_judge_kubectl_debug_and_let_a_violating_pod_go(backend: str, cases: list) -> None:
    """On out/ as committed: a privileged container added by `kubectl debug` is denied; removing the
    finalizer of an existing violating Pod (its deletion) and deleting it are admitted."""
    committed = {p.relative_to(REPO / "out").as_posix(): p.read_text(encoding="utf-8")
                 for p in (REPO / "out").rglob("*") if p.is_file()}
    adapter = all_adapters()[backend](committed)
    by_name = {(c.name, c.kind): c for c in cases}
    debug = by_name[("requests/ephemeral-adds-privileged-container", "Pod")]
    assert adapter.evaluate(admitted(debug.request)[0])["disallow-privileged"] == "deny"
    for name in ("requests/disallow-privileged/remove-finalizer-of-violating", "requests/disallow-privileged/delete-violating"):
        assert adapter.evaluate(admitted(by_name[(name, "Pod")].request)[0]) == {}, name
