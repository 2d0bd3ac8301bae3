"""The rules on Docker's platforms, judged as conftest judges them, in regopy (rego-cpp).

`Conftest(files, platform)` loads a compiled platform's Rego (`out/compose/`, `out/dockerfile/`)
and judges one input the way `conftest test -p out/<platform> <file>` does: `data.main.deny`
fails, `data.main.warn` warns. A Compose file is its parsed YAML; a Dockerfile is the list of
instructions conftest's parser produces (`conformance.engines.dockerfile`).

The cases live in `conformance/docker-cases/<platform>.yaml`, one list per platform. A case gives
its input (`compose:` a Compose file, or `service:` edits, `set` top-level keys and `unset` keys, of
one service `api`: the runtime-security guide's example with `base: guide`, else that example
with resources declared, which passes every rule; `dockerfile:` the text) and `expect`: the
verdict of every rule that does not pass (`deny`: a required rule fails, `audit`: a recommended
rule warns). A case names the mapping row it proves (`row:`, the Kubernetes field of
docs/docker.md), so every row can be shown to have a passing and a failing case.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regopy
import yaml

from compiler import ir

from .adapters import AdapterError
from .adapters.rego import MainBundle, entries
from .engines.dockerfile import parse as parse_dockerfile

CASES_DIR = Path(__file__).resolve().parent / "docker-cases"
# The runtime-security guide's Compose example: the service `api`.
GUIDE_SERVICE: dict[str, Any] = {
    "image": "registry.example.com/team/api:latest",
    "user": "10001:10001",
    "read_only": True,
    "tmpfs": ["/tmp"],
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
}
# The base of the cases that edit one thing: the guide's service, with resources declared.
COMPLIANT_SERVICE: dict[str, Any] = {**GUIDE_SERVICE, "deploy": {"resources": {
    "limits": {"cpus": "0.5", "memory": "256M"}, "reservations": {"cpus": "0.25", "memory": "128M"}}}}
class ConftestError(Exception):
    """The policy did not evaluate (it must never be read as a pass)."""


class Conftest:
    """A platform's compiled Rego, queried as conftest queries `package main`."""

    def __init__(self, files: dict[str, str], platform: str) -> None:
        modules = {path: text for path, text in files.items() if path.startswith(f"{platform}/") and path.endswith(".rego")}
        try:
            self.bundle = MainBundle(modules)
        except AdapterError:
            raise ConftestError(f"the {platform} modules do not compile in rego-cpp") from None

    def violations(self, document: Any) -> list[tuple[str, dict[str, Any]]]:
        """(verdict, violation) for each deny (`deny`) and warn (`audit`) of `package main`."""
        self.bundle.interpreter.set_input_term(json.dumps(document))
        try:
            return entries(self.bundle.main(self.bundle.interpreter))
        except AdapterError as error:
            raise ConftestError(str(error)) from None

    def judge(self, document: Any) -> dict[str, str]:
        """Rule id → `deny` or `audit` for every rule the input violates (deny wins)."""
        verdicts: dict[str, str] = {}
        for verdict, violation in self.violations(document):
            if verdict == "deny" or verdicts.get(violation["rule"]) != "deny":
                verdicts[violation["rule"]] = verdict
        return verdicts


@dataclass(frozen=True)
class DockerCase:
    platform: str  # compose | dockerfile
    name: str
    row: str | None  # the mapping row (Kubernetes field) the case proves
    input: Any = field(repr=False)  # what conftest hands the policy
    expect: dict[str, str] = field(default_factory=dict)


def _compose(entry: dict[str, Any]) -> dict[str, Any]:
    if "compose" in entry:
        return entry["compose"]
    service = copy.deepcopy(GUIDE_SERVICE if entry.get("base") == "guide" else COMPLIANT_SERVICE)
    edits = entry.get("service") or {}
    for key in edits.get("unset") or []:
        service.pop(key, None)
    service.update(edits.get("set") or {})
    return {"services": {"api": service}}


PLATFORMS = ("compose", "dockerfile")


def run(program: ir.Program, platforms: list[str], cases_dir: Path = CASES_DIR) -> list[tuple[DockerCase, dict[str, str] | str]]:
    """Each case of the chosen platforms with what regopy gives (verdicts, or the error)."""
    # Imported here: an audit's worker process, which imports Conftest, compiles nothing.
    from compiler import pipeline

    files = pipeline.compile_backends(program, platforms)
    engines = {platform: Conftest(files, platform) for platform in platforms}
    results: list[tuple[DockerCase, dict[str, str] | str]] = []
    for case in load_cases(cases_dir):
        if case.platform in engines:
            try:
                results.append((case, engines[case.platform].judge(case.input)))
            except ConftestError as error:
                results.append((case, str(error)))
    return results


def summary(results: list[tuple[DockerCase, dict[str, str] | str]]) -> list[str]:
    """A line per platform, then one per case that does not give its expected verdicts."""
    lines = []
    for platform in dict.fromkeys(case.platform for case, _ in results):
        mine = [(c, got) for c, got in results if c.platform == platform]
        agree = sum(got == c.expect for c, got in mine)
        lines.append(f"{platform}: {agree}/{len(mine)} cases give their expected verdicts "
                     f"(conftest's package main, in regopy {regopy.__version__})")
        lines += [f"  FAIL {platform} {c.name}: expected {c.expect}, got {got}" for c, got in mine if got != c.expect]
    return lines


def load_cases(cases_dir: Path = CASES_DIR) -> list[DockerCase]:
    """Every case of every platform file, with its input built."""
    cases = []
    for path in sorted(cases_dir.glob("*.yaml")):
        platform = path.stem
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            document = _compose(entry) if platform == "compose" else parse_dockerfile(entry["dockerfile"])
            cases.append(DockerCase(platform, entry["name"], entry.get("row"), document, dict(entry.get("expect") or {})))
    names = [(c.platform, c.name) for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names used twice: {sorted({n for n in names if names.count(n) > 1})}")
    return cases
