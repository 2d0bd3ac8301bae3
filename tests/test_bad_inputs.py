"""Bad input never crashes, hangs or reports clean: audit and compile give one located line and
the documented exit code, the rest of the run is still judged, and out/ is replaced all or nothing.

The corpus is tests/bad_inputs.py; `python3 benchmarks/bench_bad_inputs.py` times each input.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bad_inputs import CORPUS, GOOD, MISSING, make, measured, peak_kib
from compiler import output
from conftest import REPO, run_cli, snapshot

AS_OF = "2026-11-01"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs")
    make(folder)
    return folder


@pytest.fixture(scope="module")
def audited(corpus: Path) -> tuple[int, dict, str]:
    """One audit of the whole corpus, a missing path and a good file beside them."""
    result = run_cli("audit", "--as-of", AS_OF, "--format", "json", str(corpus), str(corpus / MISSING))
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("item", CORPUS, ids=lambda item: item.name)
def test_each_bad_input_is_one_located_problem(item, corpus: Path, audited: tuple[int, dict, str]) -> None:  # type: ignore[no-untyped-def]
    _, report, stderr = audited
    where = str(corpus / item.name) + ("" if item.line is None else f":{item.line}")
    problems = [p for p in report["problems"] if p["where"] == where]
    assert len(problems) == 1 and item.message in problems[0]["message"], (where, report["problems"])
    assert f"error: {where}: {problems[0]['message']}" in stderr.splitlines()


def test_the_run_goes_on_and_is_no_verdict(corpus: Path, audited: tuple[int, dict, str]) -> None:
    code, report, stderr = audited
    assert code == 2, "an input that could not be read or judged makes the run non-zero, and 2 wins over 1"
    privileged = {v["name"] for v in report["violations"] if v["rule"] == "disallow-privileged"}
    assert privileged == {GOOD[1].split("name: ")[1].split("\n")[0], "kept", "first", "third"}, \
        "the good file, and the good documents beside bad ones, are still judged"
    assert {"where": str(corpus / MISSING), "message": "no such file or directory"} in report["problems"]
    assert f"warning: {corpus / 'empty.yaml'}: holds no documents" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("name", ["alias-bomb-in-annotations.yaml", "alias-bomb-top-level.yaml", "deep-flow-nesting.yaml"])
def test_resource_bombs_stay_within_memory(name: str, corpus: Path) -> None:
    """In its own process: the peak memory of a whole audit of one bomb stays under 500 MB."""
    result = subprocess.run(measured(["audit", "--as-of", AS_OF, str(corpus / name)]), capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert peak_kib(result.stderr) < 500 * 1024, f"peak {peak_kib(result.stderr) // 1024} MB"


# --- compile ----------------------------------------------------------------------------------


def write_policy(project: Path, source: str, name: str = "zz_broken.py") -> Path:
    path = project / "policies" / name
    path.write_text(source, encoding="utf-8")
    return path


RULE = '''from compiler.dsl import PolicySet, Required, containers
ps = PolicySet("extra", title="Extra")
ps.rule("extra-rule", Required, title={title}, rationale="r", fix="f",
        check=containers().field("securityContext.privileged").not_equals(True))
'''


@pytest.mark.parametrize(("source", "line", "message"), [
    ("def broken(:\n", 1, "syntax error"),
    ("x = 1 / 0\n", 1, "ZeroDivisionError"),
    (RULE.format(title='"bell \\x07 rings"'), 3, "title: holds the character \\u0007"),
    (RULE.format(title='"lone \\udc80 surrogate"'), 3, "title: holds the character \\udc80"),
    (RULE.format(title='"right-to-left \\u202e override"'), 3, "title: holds the character \\u202e"),
    (RULE.replace('"extra-rule"', '"run-as-non-root"').format(title='"t"'), 3, "rule id 'run-as-non-root' is declared again (first at "),
    ('from compiler.dsl import exempt\nexempt("x", rules=["nope"], namespaces=["a"], reason="r", owner="o", expires="2030-01-01")\n',
     2, "names unknown rule 'nope'"),
    ('from compiler.dsl import exempt\nexempt("x", rules=["run-as-non-root"], labels={"a": "b\\x00"}, reason="r", owner="o",'
     ' expires="2030-01-01")\n', 2, "labels: holds the character \\u0000"),
])
def test_a_bad_policy_is_one_line_at_its_file_and_line_and_out_is_unchanged(project: Path, source: str, line: int, message: str) -> None:
    run_cli("compile")
    before = snapshot(project / "out")
    write_policy(project, source)
    result = run_cli("compile")
    assert result.exit_code == 2 and "Traceback" not in result.output
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"error: policies/zz_broken.py:{line}: ") and message in error, error
    assert snapshot(project / "out") == before


def test_a_line_separator_in_a_title_is_whitespace(project: Path) -> None:
    write_policy(project, RULE.format(title='"two\\u2028lines"'))
    assert run_cli("compile").exit_code == 0
    assert "two lines" in (project / "out" / "POLICIES.md").read_text(encoding="utf-8")


def test_no_rule_at_all_is_a_clear_error(project: Path) -> None:
    for path in (project / "policies").glob("*.py"):
        path.unlink()
    result = run_cli("compile")
    assert result.exit_code == 2 and result.stderr == "error: policies: declares no rule: nothing to compile " \
                                                     "(declare one with PolicySet(...).rule(...))\n"


@pytest.mark.parametrize("out", ["a-file", "/proc/kupe/out"])
def test_an_output_folder_that_cannot_be_written_is_a_clear_error(project: Path, out: str) -> None:
    (project / "a-file").write_text("not a folder")
    result = run_cli("compile", "--out", out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {out}: cannot write the output folder") and len(result.stderr.splitlines()) == 1


def test_out_is_replaced_all_or_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a backend folder cannot be swapped in, the ones already swapped go back: out/ stays as it was."""
    run_cli("compile")
    before = snapshot(project / "out")
    write_policy(project, RULE.format(title='"a new rule"'))
    renames = []
    real_replace = os.replace

    def failing(source: os.PathLike, target: os.PathLike) -> None:
        renames.append((source, target))
        if len(renames) == 5:  # after two backend folders are swapped in
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(output.os, "replace", failing)
    result = run_cli("compile")
    assert result.exit_code == 2 and "left as it was: No space left on device" in result.stderr
    monkeypatch.setattr(output.os, "replace", real_replace)
    assert snapshot(project / "out") == before
    assert not [p for p in (project / "out").iterdir() if p.name.startswith(".kupe-staging")]


def test_an_internal_error_is_one_line_and_exit_3(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler import pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "compile_program", broken)
    monkeypatch.delenv("KUPE_DEBUG", raising=False)
    result = run_cli("compile")
    assert result.exit_code == 3 and result.stderr.startswith("internal error: RuntimeError: boom")
    assert "Traceback" not in result.output
