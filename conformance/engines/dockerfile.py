"""A Dockerfile read into the input conftest gives Rego: a list of instructions.

Why: conftest (parser/docker) parses a Dockerfile with BuildKit's parser and hands each
instruction to the policy as `{Cmd, SubCmd, JSON, Flags, Value, Stage}`; the harness has no Go
parser, so this module reproduces that shape for the Dockerfiles of the conformance cases and of
`audit`. What it reproduces:
- parser directives (`# escape=`), `\\` (or the escape character) line continuation, blank lines;
  comment lines are dropped (nothing in kupe's Rego reads them);
- `Cmd` is the instruction keyword in lower case; `Stage` the 0-based index of the latest FROM
  (0 before the first); leading `--flag[=value]` words of FROM, RUN, COPY and ADD are `Flags`;
- `Value`: the JSON array of the exec form (`JSON: true`) for RUN, CMD, ENTRYPOINT, SHELL, COPY,
  ADD and VOLUME; the rest of the line as one string for RUN, CMD, ENTRYPOINT, SHELL and USER;
  whitespace-separated words otherwise (FROM, COPY, ADD, ...); ONBUILD's instruction is `SubCmd`.
Heredocs are not read (a `<<EOF` body would be taken for instructions): `DockerfileError`.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAGGED = {"from", "run", "copy", "add"}
_EXEC_FORM = {"run", "cmd", "entrypoint", "shell", "copy", "add", "volume"}
_ONE_STRING = {"run", "cmd", "entrypoint", "shell", "user"}


class DockerfileError(ValueError):
    """The text is not a Dockerfile this reader can parse as conftest would; names the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each instruction, continuations joined, comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    start = 0
    for number, line in enumerate(lines):  # parser directives come first, before any other line
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)
        start = number + 1
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            first = number
        if stripped.endswith(escape):
            pending.append(stripped[: -len(escape)])
            continue
        pending.append(stripped)
        joined.append((first, " ".join(part.strip() for part in pending if part.strip())))
        pending = []
    if pending:
        joined.append((first, " ".join(part.strip() for part in pending if part.strip())))
    return joined


def _instruction(keyword: str, rest: str, stage: int, number: int) -> dict[str, Any]:
    cmd = keyword.lower()
    if "<<" in rest and re.search(r"<<-?[\"']?[A-Za-z_]", rest):
        raise DockerfileError(number, "heredocs are not read")
    flags: list[str] = []
    if cmd in _FLAGGED:
        words = rest.split()
        while words and words[0].startswith("--"):
            flags.append(words.pop(0))
        rest = " ".join(words) if flags else rest
    value: list[str] | None
    is_json = False
    if cmd in _EXEC_FORM and rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            value, is_json = parsed, True
        else:
            value = [rest]
    elif cmd in _ONE_STRING:
        value = [rest] if rest else None
    else:
        value = rest.split() or None
    return {"Cmd": cmd, "SubCmd": "", "JSON": is_json, "Flags": flags, "Value": value, "Stage": stage}


def parse(text: str) -> list[dict[str, Any]]:
    """The instructions of a Dockerfile as conftest's Rego input."""
    return [instruction for _, instruction in parse_lines(text)]


def parse_lines(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Each instruction with the line it starts on (conftest's input has no lines; reports do)."""
    instructions: list[tuple[int, dict[str, Any]]] = []
    stage = -1
    for number, line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise DockerfileError(number, f"{keyword[:40]!r} is not a Dockerfile instruction")
        if keyword.lower() == "from":
            stage += 1
        if keyword.lower() == "onbuild":
            sub_keyword, _, sub_rest = rest.strip().partition(" ")
            entry = _instruction(sub_keyword, sub_rest.strip(), max(stage, 0), number)
            instructions.append((number, {**entry, "Cmd": "onbuild", "SubCmd": sub_keyword.lower()}))
            continue
        instructions.append((number, _instruction(keyword, rest.strip(), max(stage, 0), number)))
    return instructions
