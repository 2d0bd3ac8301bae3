"""Safe YAML loading that remembers the line of every mapping, for file:line messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compiler.errors import InputError


class LineDict(dict):
    """A mapping from YAML that knows the (1-based) line it started on."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (no arbitrary objects) whose mappings are LineDicts."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    mapping = LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(path: Path) -> list[Any]:
    """Every YAML document of a file; a read or syntax error becomes an InputError with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", str(path)) from None
    try:
        return [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"invalid YAML: {problem}", where) from None


def plain(value: Any) -> Any:
    """Strip LineDicts back to plain dicts (engines must not see our bookkeeping)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
