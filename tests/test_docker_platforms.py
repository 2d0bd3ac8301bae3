"""The rules on Docker's platforms: every Compose and Dockerfile case gives its expected verdict in
regopy, as `conftest test -p out/<platform>` would; every mapping row is proven by a passing and a
failing case; what a platform cannot mean is not applicable, and a mapped field read otherwise is refused."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import pytest

from conftest import program
from compiler import ir, pipeline
from compiler.backends.compose import PLATFORM as COMPOSE, ComposeBackend
from compiler.backends.dockerfile import PLATFORM as DOCKERFILE, DockerfileBackend
from compiler.dsl import PolicySet, Required, containers
from compiler.errors import UnsupportedError
from compiler.lang.docker import field_of
from conformance.docker import Conftest, DockerCase, load_cases
from conformance.engines.dockerfile import DockerfileError, parse

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)
CASES = load_cases()
PLATFORMS = {"compose": COMPOSE, "dockerfile": DOCKERFILE}


@cache
def _program() -> ir.Program:
    return pipeline.build_program(REPO / "policies", AS_OF)[0]


@cache
def engine(platform: str) -> Conftest:
    return Conftest(pipeline.compile_backends(_program(), [platform]), platform)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.platform}-{c.name}")
def test_case_gives_its_expected_verdicts(case: DockerCase) -> None:
    assert engine(case.platform).judge(case.input) == case.expect


def test_the_guides_compose_example_passes_every_required_rule() -> None:
    (guide,) = [c for c in CASES if c.name == "guide-example"]
    assert engine("compose").judge(guide.input) == {"container-resources": "audit"}  # conftest exits 0: a warning


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_mapping_row_has_a_passing_and_a_failing_case(platform: str) -> None:
    rules = {r.id: r for r in _program().rules}
    for row in PLATFORMS[platform].rows:
        reading = {rule_id for rule_id, rule in rules.items() if any(field_of(c) == row.field for c in rule.rule.checks)}
        cases = [c for c in CASES if c.platform == platform and c.row == row.field]
        assert any(not reading & set(c.expect) for c in cases), f"{platform} {row.field}: no passing case"
        assert any(reading & set(c.expect) for c in cases), f"{platform} {row.field}: no failing case"


def test_the_support_matrix_says_what_each_platform_means() -> None:
    compiled = _program()
    assert all(ComposeBackend().supports(rule, compiled).state == "exact" for rule in compiled.rules)
    states = {rule.id: DockerfileBackend().supports(rule, compiled) for rule in compiled.rules}
    assert {r for r, s in states.items() if s.state == "exact"} == {"run-as-non-root", "run-as-non-root-user"}
    assert str(states["disallow-privileged"]).startswith(
        "not applicable: no Dockerfile counterpart for securityContext.privileged (policies/runtime_security.py:")


def test_a_mapped_field_read_with_another_predicate_is_refused() -> None:
    def lenient(ps: PolicySet) -> None:
        ps.rule("lenient", Required, title="t", rationale="r", fix="f",
                check=containers().field("securityContext.readOnlyRootFilesystem").not_equals(False))
    with pytest.raises(UnsupportedError) as error:
        ComposeBackend().compile(program(lenient))
    message = str(error.value)
    assert "rule 'lenient': backend 'compose' cannot express NotEquals exactly" in message
    assert "only as FieldRef/EffectiveRef Equals true" in message


def test_the_dockerfile_reader_gives_conftests_instructions() -> None:
    assert parse("# escape=`\nFROM golang:1.22 AS build\nRUN go build `\n  -o /app\nFROM scratch\n"
                 "COPY --from=build /app /app\nUSER 65532:65532\nCMD [\"/app\"]\n") == [
        {"Cmd": "from", "SubCmd": "", "JSON": False, "Flags": [], "Value": ["golang:1.22", "AS", "build"], "Stage": 0},
        {"Cmd": "run", "SubCmd": "", "JSON": False, "Flags": [], "Value": ["go build -o /app"], "Stage": 0},
        {"Cmd": "from", "SubCmd": "", "JSON": False, "Flags": [], "Value": ["scratch"], "Stage": 1},
        {"Cmd": "copy", "SubCmd": "", "JSON": False, "Flags": ["--from=build"], "Value": ["/app", "/app"], "Stage": 1},
        {"Cmd": "user", "SubCmd": "", "JSON": False, "Flags": [], "Value": ["65532:65532"], "Stage": 1},
        {"Cmd": "cmd", "SubCmd": "", "JSON": True, "Flags": [], "Value": ["/app"], "Stage": 1},
    ]
    with pytest.raises(DockerfileError, match="line 2: heredocs are not read"):
        parse("FROM alpine\nRUN <<EOF\necho\nEOF\n")
    with pytest.raises(DockerfileError, match="line 1: '{' is not a Dockerfile instruction"):
        parse("{ \"not\": \"a dockerfile\" }\n")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_docs_state_every_row_of_the_mapping(platform: str) -> None:
    doc = (REPO / "docs" / "docker.md").read_text(encoding="utf-8")
    for row in PLATFORMS[platform].rows:
        assert f"| {row.meaning} |" in doc, f"docs/docker.md lacks the {platform} row for {row.field}"


# --- exemptions of Compose services ------------------------------------------------------------


def _compose_service(**edits: object) -> dict[str, object]:
    from conformance.docker import COMPLIANT_SERVICE

    return {**COMPLIANT_SERVICE, **edits}


def test_compose_exemptions_select_by_project_service_and_labels() -> None:
    from compiler.dsl import exempt, volumes
    from compiler.dsl import param as list_param

    def sockets(ps: PolicySet) -> None:
        ps.rule("no-socket", Required, title="t", rationale="r", fix="f",
                check=volumes().field("hostPath.path").as_path().none_of(["/var/run/docker.sock"]))

    def caps(ps: PolicySet) -> None:
        ps.rule("caps", Required, title="t", rationale="r", fix="f", params={"allowed": ["NET_BIND_SERVICE"]},
                check=containers().field("securityContext.capabilities.add").subset_of(list_param("allowed")))

    waiver = exempt("traefik-socket", rules=["no-socket"], projects=["edge"], services=["traefik"],
                    labels={"team": "net"}, reason="service discovery", owner="net", expires="2027-01-31")
    widening = exempt("vpn", rules=["caps"], services=["vpn"], allow={"allowed": ["NET_ADMIN"]},
                      reason="tunnel", owner="net", expires="2027-01-31")
    kubernetes = exempt("k8s-only", rules=["no-socket"], namespaces=["edge"], reason="r", owner="o", expires="2027-01-31")
    engine = Conftest(ComposeBackend().compile(program(sockets, caps, waiver, widening, kubernetes)), "compose")
    socket = {"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}

    def judge(project: str | None, services: dict[str, dict[str, object]]) -> dict[str, str]:
        return engine.judge({**({"name": project} if project else {}), "services": services})

    assert judge("edge", {"traefik": _compose_service(**socket, labels={"team": "net"})}) == {}
    assert judge("edge", {"traefik": _compose_service(**socket, labels=["team=net"])}) == {}  # list form
    assert judge("edge", {"traefik": _compose_service(**socket, labels={"team": "web"})}) == {"no-socket": "deny"}
    assert judge("edge", {"proxy": _compose_service(**socket, labels={"team": "net"})}) == {"no-socket": "deny"}
    assert judge(None, {"traefik": _compose_service(**socket, labels={"team": "net"})}) == {"no-socket": "deny"}
    add = {"cap_add": ["NET_ADMIN"]}
    assert judge("any", {"vpn": _compose_service(**add)}) == {}
    assert judge("any", {"web": _compose_service(**add)}) == {"caps": "deny"}
    assert judge("any", {"vpn": _compose_service(cap_add=["SYS_ADMIN"])}) == {"caps": "deny"}


def test_an_exemption_is_for_compose_or_for_kubernetes_not_both() -> None:
    from compiler.dsl import exempt
    from compiler.errors import PolicyError

    with pytest.raises(PolicyError, match="declare one exemption for each"):
        exempt("both", rules=["r"], namespaces=["a"], services=["b"], reason="r", owner="o", expires="2027-01-31")


def test_a_compose_exemption_reaches_no_kubernetes_artifact() -> None:
    from compiler.backends import all_backends
    from compiler.dsl import exempt

    def privileged(ps: PolicySet) -> None:
        ps.rule("no-privileged", Required, title="t", rationale="r", fix="f",
                check=containers().field("securityContext.privileged").not_equals(True))

    waiver = exempt("compose-only-waiver", rules=["no-privileged"], services=["dind"], labels={"a": "b"},
                    reason="r", owner="o", expires="2027-01-31")
    compiled = program(privileged, waiver)
    for name, backend in all_backends().items():
        text = "".join(backend().compile(compiled).values())
        assert ("compose-only-waiver" in text) == (name == "compose"), name


# --- audit: Compose files and Dockerfiles found by name ------------------------------------------


def test_audit_judges_compose_files_and_dockerfiles_found_by_name(project: Path) -> None:
    import json as json_module

    from conftest import run_cli

    (project / "app").mkdir()
    (project / "app" / "docker-compose.yml").write_text(
        "name: shop\nservices:\n  api:\n    image: api\n    user: '10001'\n    read_only: true\n    cap_drop: [ALL]\n"
        "    security_opt: [no-new-privileges]\n    cpus: 1\n    mem_limit: 1g\n    mem_reservation: 512m\n"
        "    deploy: {resources: {reservations: {cpus: '0.5'}}}\n"
        "  proxy:\n    image: traefik\n    user: '10001'\n    read_only: true\n    cap_drop: [ALL]\n"
        "    security_opt: [no-new-privileges]\n    cpus: 1\n    mem_limit: 1g\n    mem_reservation: 512m\n"
        "    deploy: {resources: {reservations: {cpus: '0.5'}}}\n    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n",
        encoding="utf-8")
    (project / "app" / "Dockerfile").write_text("FROM golang AS build\nRUN go build\nFROM scratch\nUSER 65532\n", encoding="utf-8")
    (project / "app" / "tools.Dockerfile").write_text("FROM alpine\nUSER root\n", encoding="utf-8")
    (project / "app" / "notes.txt").write_text("not read\n", encoding="utf-8")
    result = run_cli("audit", "--format", "json", "app")
    report = json_module.loads(result.stdout)
    assert result.exit_code == 1
    found = {(v["kind"], v["namespace"], v["name"], v["rule"], v["verdict"], v["line"], v["field"]) for v in report["violations"]}
    assert found == {
        ("Compose service", "shop", "proxy", "disallow-runtime-socket-mounts", "deny", 14, "volumes"),  # its mapping starts on 14
        ("Dockerfile", "", "final stage 0 (FROM alpine)", "run-as-non-root", "deny", 1, "USER"),
        ("Dockerfile", "", "final stage 0 (FROM alpine)", "run-as-non-root-user", "deny", 1, "USER"),
    }
    assert (report["summary"]["compose_files"], report["summary"]["dockerfiles"]) == (1, 2)


def test_audit_reports_unreadable_compose_files_and_dockerfiles_with_their_line(project: Path) -> None:
    import json as json_module

    from conftest import run_cli

    (project / "compose.yaml").write_text("services: [not, a, mapping]\n", encoding="utf-8")
    (project / "Dockerfile").write_text("FROM alpine\nRUN <<EOF\necho hi\nEOF\n", encoding="utf-8")
    result = run_cli("audit", "--format", "json", "compose.yaml", "Dockerfile")
    report = json_module.loads(result.stdout)
    assert result.exit_code == 2
    assert sorted(p["where"] for p in report["problems"]) == ["Dockerfile:2", "compose.yaml:1"]


def test_kupe_policy_test_runs_the_docker_cases(project: Path) -> None:
    from conftest import run_cli

    result = run_cli("test", "--backend", "compose", "--backend", "dockerfile")
    assert result.exit_code == 0, result.output
    assert f"compose: {sum(c.platform == 'compose' for c in CASES)}/" in result.output
    assert f"dockerfile: {sum(c.platform == 'dockerfile' for c in CASES)}/" in result.output


@pytest.mark.parametrize("check", [
    lambda: containers().effective("securityContext.runAsUser").not_equals(False),  # False is not UID 0
    lambda: containers().field("securityContext.privileged").not_equals(1),  # 1 is not true
    lambda: __import__("compiler.dsl", fromlist=["volumes"]).volumes().field("hostPath.path").none_of(["/run"]),  # not as a path
], ids=["bool-for-int", "int-for-bool", "path-not-normalised"])
def test_a_row_matches_only_its_exact_value_and_reference(check: object) -> None:
    def rule(ps: PolicySet) -> None:
        ps.rule("near", Required, title="t", rationale="r", fix="f", check=check())  # type: ignore[operator]
    with pytest.raises(UnsupportedError, match="backend 'compose' cannot express"):
        ComposeBackend().compile(program(rule))


def test_a_container_field_and_its_pod_fallback_mean_the_same_for_a_service() -> None:
    def container_only(ps: PolicySet) -> None:
        ps.rule("non-root", Required, title="t", rationale="r", fix="f",
                check=containers().field("securityContext.runAsNonRoot").equals(True))
    engine = Conftest(ComposeBackend().compile(program(container_only)), "compose")
    assert engine.judge({"services": {"api": {"user": "0"}}}) == {"non-root": "deny"}
    assert engine.judge({"services": {"api": {"user": "10001"}}}) == {}
