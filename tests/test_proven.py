"""Remembered passes (compiler.proven): an unchanged compile skips its checks; anything else is checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import program

from compiler import proven
from compiler.backends.rego import RegoBackend
from compiler.dsl import Required, containers, exempt
from compiler.errors import ArtifactError


def _rule(ps) -> None:  # type: ignore[no-untyped-def]
    ps.rule("no-root", Required, title="t", rationale="r", fix="f",
            check=containers().field("securityContext.runAsNonRoot").equals(True))


@pytest.fixture
def checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Remembering on, in a folder of this test; counts the Rego backend's parse-backs."""
    monkeypatch.setenv("KUPE_POLICY_CACHE", str(tmp_path / "proven"))
    counted: list[int] = []
    check = RegoBackend.parse_back

    def counting(self: RegoBackend, files: dict[str, str]) -> None:
        counted.append(len(files))
        check(self, files)

    monkeypatch.setattr(RegoBackend, "parse_back", counting)
    return counted


def test_an_unchanged_compile_is_not_checked_again(checks: list[int]) -> None:
    first = RegoBackend().compile(program(_rule))
    assert RegoBackend().compile(program(_rule)) == first
    assert len(checks) == 1


def test_changed_artifacts_are_checked(checks: list[int]) -> None:
    RegoBackend().compile(program(_rule))
    waived = exempt("team-x", rules=["no-root"], namespaces=["x"], reason="r", ticket="T-1", expires="2099-01-01")
    RegoBackend().compile(program(_rule, waived))
    assert len(checks) == 2


def test_a_failure_is_never_remembered(checks: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(self: RegoBackend, files: dict[str, str]) -> None:
        checks.append(len(files))
        raise ArtifactError("broken")

    monkeypatch.setattr(RegoBackend, "parse_back", failing)
    for _ in range(2):
        with pytest.raises(ArtifactError, match="broken"):
            RegoBackend().compile(program(_rule))
    assert len(checks) == 2


def test_a_change_of_checker_code_or_engine_forgets_every_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "package"
    (package / "lang").mkdir(parents=True)
    (package / "lang" / "rego.py").write_text("CHECK = 1\n")
    monkeypatch.setattr(proven, "PACKAGE_DIR", package)
    fingerprint = proven.checker_fingerprint.__wrapped__
    before = fingerprint()
    (package / "lang" / "rego.py").write_text("CHECK = 2\n")
    after_code = fingerprint()
    monkeypatch.setattr(proven, "version", lambda distribution: "99" if distribution == "regopy" else "1")
    after_engine = fingerprint()
    assert len({before, after_code, after_engine}) == 3


def test_off_plugins_and_an_unusable_folder_check_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"rego/x.rego": "package x\n"}
    monkeypatch.setenv("KUPE_POLICY_CACHE", "off")
    assert proven.key(RegoBackend, files) is None

    class PluginBackend(RegoBackend):  # defined outside `compiler`: its checks are not fingerprinted
        pass

    monkeypatch.setenv("KUPE_POLICY_CACHE", str(tmp_path / "proven"))
    assert proven.key(PluginBackend, files) is None
    assert proven.key(RegoBackend, files) != proven.key(RegoBackend, {"rego/x.rego": "package y\n"})

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("KUPE_POLICY_CACHE", str(tmp_path / "a-file"))
    pass_key = proven.key(RegoBackend, files)
    proven.remember(pass_key)
    assert not proven.known(pass_key)


def test_the_least_recently_used_passes_are_forgotten_beyond_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUPE_POLICY_CACHE", str(tmp_path))
    monkeypatch.setattr(proven, "KEPT", 4)
    for n in range(4):
        (tmp_path / f"pass-{n}").touch()
        os.utime(tmp_path / f"pass-{n}", (n, n))
    assert proven.known("pass-0")  # used now: no longer the oldest
    proven.remember("pass-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pass-0", "pass-3", "pass-4"]
