"""Extending kupe-policy: a new rule is one policy file and one case file, nothing else.

Every conformance case starts from the compliant base (conformance/bases.yaml) and an exemption
can cover every rule (`rules=ALL`), so a rule the base complies with leaves every existing
case's verdicts as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REPO, run_cli

RULE = '''"""A rule added by a test: containers may not unmask /proc."""
from compiler.dsl import PolicySet, Required, containers

proc = PolicySet("proc-security", title="Proc Security")
proc.rule(
    "default-proc-mount", Required,
    title="Keep /proc masked",
    rationale="An unmasked /proc exposes kernel interfaces to the container.",
    check=containers().field("securityContext.procMount").none_of(["Unmasked"]),
    fix="Remove securityContext.procMount or set it to Default",
)
'''

CASES = '''- name: default-proc-mount/unmasked
  expect: {default-proc-mount: deny}
  base: compliant-pod
  set: {spec.containers.0.securityContext.procMount: Unmasked}
- name: default-proc-mount/default
  expect: {}
  base: compliant-pod
  set: {spec.containers.0.securityContext.procMount: Default}
'''


def test_a_new_rule_needs_only_its_policy_file_and_its_case_file(project: Path) -> None:
    cases = project / "cases"
    shutil.copytree(REPO / "conformance" / "cases", cases)
    (project / "policies" / "proc_security.py").write_text(RULE, encoding="utf-8")
    (cases / "default-proc-mount.yaml").write_text(CASES, encoding="utf-8")
    result = run_cli("test", "--backend", "rego", "--cases", str(cases))
    assert result.exit_code == 0, result.output[-3000:]
    assert "default-proc-mount" in result.output and "FAIL" not in result.output
    assert run_cli("compile").exit_code == 0, "every backend expresses it"
