"""Compose files and Dockerfiles in an audit: found by name, judged by the compiled conftest Rego.

Names, as tools find them: Compose files are `compose.yaml`/`.yml` and `docker-compose.yaml`/`.yml`,
with an optional `.<variant>` before the suffix (`docker-compose.override.yml`); Dockerfiles are
named as conftest recognises them (`Dockerfile`, `Dockerfile.<variant>`, `<name>.Dockerfile`, any
case). Each is judged by the `compose` or `dockerfile` backend's Rego in regopy
(conformance.docker.Conftest), as `conftest test -p out/<platform>` would judge it; a file that
cannot be read or parsed is a Problem with file:line, and the run goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from compiler import ir

from ..docker import Conftest, ConftestError
from ..engines.dockerfile import DockerfileError, parse_lines
from .model import Problem, Violation

_COMPOSE = re.compile(r"(docker-)?compose(\.[A-Za-z0-9_-]+)?\.ya?ml", re.IGNORECASE)
PLATFORMS = ("compose", "dockerfile")
_KIND = {"compose": "Compose service", "dockerfile": "Dockerfile"}
DOCKER_KINDS = frozenset(_KIND.values())  # what a violation found in a Compose file or a Dockerfile names
_SUBJECT = {"compose": "service", "dockerfile": "image"}


def platform_of(path: Path) -> str | None:
    """`compose` or `dockerfile` when the file's name says it is one, else None."""
    name = path.name.lower()
    if _COMPOSE.fullmatch(name):
        return "compose"
    if name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    return None


@dataclass(frozen=True)
class DockerInput:
    """One Compose file or Dockerfile, as conftest hands it to the policy, with the lines reports name."""

    platform: str
    file: str
    document: Any
    lines: dict[str, int]  # service (or image) name → line
    project: str = ""


def read_dockerfile(path: Path, shown: str) -> DockerInput | Problem:
    try:
        instructions = parse_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return Problem(shown, f"cannot read: {error}")
    except DockerfileError as error:
        return Problem(f"{shown}:{error.line}", f"Dockerfile: {error}")
    froms = [line for line, i in instructions if i["Cmd"] == "from"]
    if not froms:
        return Problem(f"{shown}:1", "Dockerfile: no FROM instruction")
    return DockerInput("dockerfile", shown, [i for _, i in instructions], {"*": froms[-1]})


def compose_input(document: Any, shown: str, line: int, lines: dict[str, int]) -> DockerInput | Problem:
    """A Compose document (plain JSON data), or why it is none."""
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        return Problem(f"{shown}:{line}", "Compose file: expected a mapping with `services`")
    project = document.get("name") if isinstance(document.get("name"), str) else ""
    return DockerInput("compose", shown, document, lines, project)


class DockerJudge:
    """The Docker platforms' compiled Rego, built once (per worker process) when a file needs it."""

    def __init__(self, program: ir.Program) -> None:
        self.program = program

    @cached_property
    def engines(self) -> dict[str, Conftest]:
        # Imported here: a worker that meets no Compose file or Dockerfile compiles nothing.
        from compiler import pipeline

        files = pipeline.compile_backends(self.program, list(PLATFORMS))
        return {platform: Conftest(files, platform) for platform in PLATFORMS}

    def judge(self, found: DockerInput) -> tuple[list[Violation], list[Problem]]:
        try:
            judged = self.engines[found.platform].violations(found.document)
        except ConftestError as error:
            return [], [Problem(found.file, f"{found.platform} policy failed to evaluate: {error}")]
        violations = []
        for verdict, entry in judged:
            name = str(entry.get(_SUBJECT[found.platform], ""))
            line = found.lines.get(name, found.lines.get("*", 1))
            violations.append(Violation(
                rule=str(entry["rule"]), verdict=verdict, kind=_KIND[found.platform], namespace=found.project, name=name,
                file=found.file, line=line, source=f"{found.platform} (conftest Rego in regopy)", message=str(entry["msg"]),
                subject=f"{_SUBJECT[found.platform]} {name}", field=str(entry.get("field", ""))))
        return violations, []
