"""`kupe-policy promote`: readiness from evidence, the one-token level edit, generated exemptions, recompilation."""

from __future__ import annotations

import difflib
import io
import tokenize
from pathlib import Path

from conformance import runner
from conformance.audit.promotion import exemption_id, set_required
from conformance.suite import load_cases
from conftest import REPO, run_cli, snapshot

FIXTURES = REPO / "tests" / "fixtures"
RULE = "container-resources"  # not staged: promoting it is a one-token edit
STAGED = "read-only-root-filesystem"  # staged in payments: promoting it also drops the stage
AS_OF = "2026-11-01"


def promote(*args: str, rule: str = RULE):
    return run_cli("promote", rule, "--as-of", AS_OF, *args)


def tokens(source: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)]


def test_ready_rule_report_counts_covered_violations(project: Path) -> None:
    result = promote("--evidence", str(FIXTURES / "manifests" / "ready"))
    assert result.exit_code == 0
    assert f"{RULE} (recommended, policies/container_security.py:" in result.stdout and "): READY" in result.stdout
    assert "0 uncovered violation(s), 1 covered" in result.stdout
    assert "DaemonSet/kube-proxy" in result.stdout and "by system-namespaces" in result.stdout


def test_write_on_a_ready_rule_changes_one_token_and_flips_its_verdicts(project: Path) -> None:
    source = project / "policies" / "container_security.py"
    before = source.read_text()
    result = promote("--evidence", str(FIXTURES / "manifests" / "ready"), "--write")
    assert result.exit_code == 0, result.output
    after = source.read_text()
    changed = [d for d in difflib.ndiff(tokens(before), tokens(after)) if d[0] in "+-"]
    assert changed == ["- Recommended", "+ Required"]
    assert f'    "{RULE}", Required,\n' in after
    assert snapshot(project / "policies").keys() == {"container_security.py", "exemptions.py", "runtime_security.py"}
    assert 'level := "required"' in (project / "out" / "rego" / f"{RULE}.rego").read_text()
    assert "wrote" in result.stdout and (project / "out" / "POLICIES.md").is_file()

    records = runner.run(load_cases(), ["rego"], project / "policies")
    flipped = [r for r in records if r.rule == RULE and r.expected == "audit"]
    assert flipped and all(r.actual == "deny" for r in flipped)
    others = [r for r in records if not (r.rule == RULE and r.expected == "audit")]
    assert [r for r in others if r.status not in ("ok", "xfail")] == []


def test_write_on_a_non_ready_rule_refuses_and_lists_blockers(project: Path) -> None:
    source = project / "policies" / "container_security.py"
    before = source.read_text()
    result = promote("--evidence", str(FIXTURES / "manifests" / "mixed"),
                     "--evidence", str(FIXTURES / "evidence" / "gatekeeper-constraints.yaml"), "--write", rule=STAGED)
    assert result.exit_code == 1
    assert "NOT READY" in result.stdout and "namespace web:" in result.stdout and "namespace ops:" in result.stdout
    assert "refusing to promote" in result.stderr
    assert "blocker:" in result.stderr and "Deployment/frontend" in result.stderr and "Pod/debug-shell" in result.stderr
    assert source.read_text() == before and not (project / "out").exists()


def test_exempt_current_writes_expiring_exemptions_then_promotes(project: Path) -> None:
    evidence = ["--evidence", str(FIXTURES / "manifests" / "mixed"), "--evidence", str(FIXTURES / "evidence" / "gatekeeper-constraints.yaml")]
    result = promote(*evidence, "--exempt-current", "--ttl", "30d", "--owner", "web-team", "--ticket", "SEC-200", "--write", rule=STAGED)
    assert result.exit_code == 0, result.output
    generated = (project / "policies" / "generated_exemptions.py").read_text()
    frontend, shell = exemption_id(STAGED, "web", "frontend"), exemption_id(STAGED, "ops", "debug-shell")
    assert generated.count("exempt(\n") == 2 and frontend in generated and shell in generated
    assert 'owner="web-team", ticket="SEC-200", expires="2026-12-01"' in generated
    assert ": READY to become required" in result.stdout and "is now required" in result.stdout
    rules = run_cli("rules", "--as-of", AS_OF)
    assert frontend in rules.stdout and "required" in next(line for line in rules.stdout.splitlines() if line.startswith(STAGED))
    assert "enforced_in" not in (project / "policies" / "container_security.py").read_text()
    # Once required, the rule cannot be promoted again; the generated module is not rewritten.
    again = promote(*evidence, "--exempt-current", "--ttl", "30d", "--owner", "web-team", rule=STAGED)
    assert again.exit_code == 2 and "already required" in again.stderr
    assert (project / "policies" / "generated_exemptions.py").read_text() == generated


def test_exempt_current_needs_an_owner_or_ticket(project: Path) -> None:
    result = promote("--evidence", str(FIXTURES / "manifests" / "mixed"), "--exempt-current", "--ttl", "30d")
    assert result.exit_code == 2 and "--owner or a --ticket" in result.output


def test_unknown_and_required_rules_are_input_errors(project: Path) -> None:
    unknown = run_cli("promote", "no-such-rule", "--evidence", str(FIXTURES / "manifests"))
    assert unknown.exit_code == 2 and "unknown rule 'no-such-rule'" in unknown.stderr
    required = run_cli("promote", "run-as-non-root", "--evidence", str(FIXTURES / "manifests"))
    assert required.exit_code == 2 and "policies/container_security.py:7: rule 'run-as-non-root' is already required" in required.stderr


def test_set_required_keeps_everything_else() -> None:
    source = ('from compiler import dsl\nfrom compiler.dsl import PolicySet, Recommended  # levels\n\n'
              's = PolicySet("s", title="S")\n'
              's.rule(\n    "a", Recommended,  # keep this comment\n    title="t",\n)\n'
              's.rule("b", dsl.Recommended, title="u")\n')
    first = set_required(source, "a", 5)
    assert first == source.replace("Recommended,  # keep", "Required,  # keep").replace("Recommended  # levels", "Recommended, Required  # levels")
    assert set_required(source, "b", 9) == source.replace("dsl.Recommended", "dsl.Required")


def test_promoting_a_staged_rule_drops_its_stage() -> None:
    head = "from compiler.dsl import Recommended, Required\n"
    source = (head + 's.rule(\n    "a", Recommended,\n    fix="f",\n    enforced_in=["payments"],  # stage (PLAT-88)\n)\n'
              's.rule("b", Recommended, fix="g", enforce_from="2027-06-01")\n')
    assert set_required(source, "a", 2) == head + 's.rule(\n    "a", Required,\n    fix="f",\n)\n' + source.splitlines(keepends=True)[-1]
    assert set_required(source, "b", 7).endswith('s.rule("b", Required, fix="g")\n')


def test_exemption_ids_are_valid_and_deterministic() -> None:
    long = exemption_id(RULE, "a-very-long-namespace-name-for-testing", "Workload.With.Dots" * 3)
    assert long == exemption_id(RULE, "a-very-long-namespace-name-for-testing", "Workload.With.Dots" * 3)
    assert len(long) <= 63 and long.startswith("promote-container-resources-") and long.islower()
    assert exemption_id(RULE, "a", "b.c") != exemption_id(RULE, "a", "b-c")
