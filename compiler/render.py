"""Jinja rendering in which every interpolated value must pass through an escaping filter.

`finalize` refuses any value that is not `Safe`, so a template that forgets to escape an
interpolation fails loudly at compile time instead of emitting an injectable artifact.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from .errors import ArtifactError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Safe(str):
    """Text already escaped for the artifact it goes into."""


def _finalize(value: object) -> Safe:
    if isinstance(value, Safe):
        return value
    raise ArtifactError(f"template interpolates an unescaped value {value!r}: pass it through an escaping filter")


def _json(value: Any) -> Safe:
    """A JSON literal: valid as a Rego term, and as a YAML flow scalar or collection."""
    return Safe(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _comment(value: Any) -> Safe:
    """One line of text for a `#` comment."""
    return Safe(" ".join(str(value).split()))


def _markdown(value: Any) -> Safe:
    """Inline Markdown text: one line, table pipes and markup characters escaped."""
    text = " ".join(str(value).split())
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return Safe(text)


def _block(value: Safe, width: int) -> Safe:
    """Indent already-safe code for a YAML literal block scalar."""
    if not isinstance(value, Safe):
        raise ArtifactError("only escaped code may go into a YAML block scalar")
    pad = " " * width
    return Safe("\n".join(pad + line if line else "" for line in value.rstrip("\n").split("\n")))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(json=_json, comment=_comment, md=_markdown, block=_block)
    return env


def render(template: str, **context: Any) -> str:
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateError as error:
        raise ArtifactError(f"template {template}: {error}") from None


# libyaml's safe loader when the installed PyYAML has it: parse-back reads every artifact, and
# the pure-Python scanner dominated compile time for large policy sets.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> list[Any]:
    """The documents of a rendered YAML artifact (safe loading: plain data only)."""
    return [document for document in yaml.load_all(text, Loader=_YAML_LOADER) if document is not None]
