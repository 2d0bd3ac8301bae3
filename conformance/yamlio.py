"""Safe, bounded YAML loading that remembers the line of every mapping, for file:line messages.

Untrusted input must not crash, hang or exhaust the machine, and one bad document must not hide
the good ones beside it:
- documents are read one at a time (a stream is split before its `---` lines, with their
  directives, and after its `...` lines), so a syntax error costs only its own document;
- safe construction only (libyaml's loader when PyYAML has it), mappings become `LineDict`s;
- nesting deeper than MAX_DEPTH is refused before libyaml's recursive composer sees it (a few
  hundred thousand levels overflow its C stack);
- a document whose aliases expand to more than MAX_NODES nodes (a "billion laughs" bomb: 480
  bytes can stand for 10^8 nodes, which every later walk of the object would visit), or that
  refers to itself, is refused; shared references are counted once per use, as a walk sees them.
Both checks are skipped where a cheap look at the text proves them unnecessary (no anchors; no
line long enough and no brackets enough to nest that deep), so ordinary manifests load at
libyaml's speed. A JSON file is read by the json module with the same LineDicts (`json_documents`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compiler.errors import InputError
from compiler.render import SafeLoader, construct_plain

MAX_DEPTH = 200  # Kubernetes objects nest a few dozen levels; CRD schemas perhaps a hundred
MAX_NODES = 1_000_000  # per document, aliases expanded
# A `---` line with the directive lines before it (a document starts there), or a `...` line (one ends there).
_DOCUMENT_MARKER = re.compile(r"^(?:(?:%[^\n]*\n)*---(?=\s|$)|(?P<end>\.\.\.(?=\s|$).*\n?))", re.MULTILINE)


class LineDict(dict):
    """A mapping from YAML that knows the (1-based) line it started on."""

    line: int = 0


class _LineLoader(SafeLoader):
    """Safe construction (no arbitrary objects) whose mappings are LineDicts; `offset` is the line
    the loaded text starts at in its file."""

    offset = 0

    def line_dict(self, node: yaml.MappingNode) -> LineDict:
        """An empty LineDict for a mapping node, knowing the node's line in the file."""
        mapping = LineDict()
        mapping.line = self.offset + node.start_mark.line + 1
        return mapping


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    mapping = loader.line_dict(node)
    mapping.update(loader.construct_mapping(node, deep=True))
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class YamlProblem:
    """A document that could not be loaded: its 1-based line and why."""

    line: int
    message: str


def documents(text: str) -> Iterator[Any | YamlProblem]:
    """Every document of a YAML stream (None for empty ones is left out), or a YamlProblem in its place."""
    for offset, chunk in _chunks(text):
        loader = _LineLoader(chunk)
        loader.offset = offset
        plain = _plain(chunk)  # no anchors: each node is reached once, and built the quick way
        try:
            while loader.check_node():
                if plain:
                    document = construct_plain(loader, loader.get_node(), loader.line_dict)
                else:
                    document = loader.construct_document(_checked_node(loader, chunk, offset))
                if document is not None:
                    yield document
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            yield YamlProblem(offset + (mark.line + 1 if mark else 1), f"invalid YAML: {problem}")
        except _Refused as refused:
            yield YamlProblem(refused.line, refused.reason)
        except (ValueError, TypeError, OverflowError) as error:  # a value libyaml parsed but Python cannot build
            yield YamlProblem(offset + 1, f"invalid YAML value: {error}")
        finally:
            loader.dispose()


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET = re.compile(r"[{}\[\]]")


def json_documents(text: str) -> Iterator[Any | YamlProblem]:
    """The one document of a JSON text, read as JSON (YAML 1.1 would read `1e3` as a string) by the
    json module (about ten times faster than YAML), its objects LineDicts knowing their lines like
    YAML's; or a YamlProblem. Lines come from one pass over the brackets outside strings: json
    builds each object when it reaches its closing brace, so they are handed out in that order."""
    stripped = _JSON_STRING.sub('""', text)  # a JSON string holds no newline and no bracket that counts
    lines: list[int] = []  # each object's first line, in the order its closing braces come
    opened: list[int] = []  # the lines of the open objects (0 for an open array)
    line, last = 1, 0
    for bracket in _JSON_BRACKET.finditer(stripped):
        char, position = bracket.group(), bracket.start()
        line += stripped.count("\n", last, position)
        last = position
        if char in "{[":
            opened.append(line if char == "{" else 0)
            if len(opened) > MAX_DEPTH:
                yield YamlProblem(line, f"nesting deeper than {MAX_DEPTH} levels")
                return
        elif opened:  # unbalanced text is json's error to report
            start = opened.pop()
            if char == "}":
                lines.append(start)
    starts = iter(lines)

    def line_dict(pairs: list[tuple[str, Any]]) -> LineDict:
        mapping = LineDict(pairs)
        mapping.line = next(starts, 0)
        return mapping

    try:
        yield json.loads(text, object_pairs_hook=line_dict, parse_constant=_not_json)
    except json.JSONDecodeError as error:
        yield YamlProblem(error.lineno, f"invalid JSON: {error.msg}")
    except ValueError as error:
        yield YamlProblem(1, f"invalid JSON: {error}")


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """(line offset, text) of each document-sized piece: cut before every `---` line (and the
    directives before it) and after every `...` line."""
    starts = [0]
    for marker in _DOCUMENT_MARKER.finditer(text):
        start = marker.end() if marker.group("end") else marker.start()
        if starts[-1] < start < len(text):
            starts.append(start)
    line = 0
    for previous, start, end in zip([0, *starts], starts, [*starts[1:], len(text)]):
        line += text.count("\n", previous, start)  # from the previous cut on: counting from 0 each time is quadratic
        yield line, text[start:end]


def _plain(chunk: str) -> bool:
    """No anchors (so no aliases) and no room to nest MAX_DEPTH levels: nothing to check."""
    if "&" in chunk:
        return False
    longest = max((len(line) for line in chunk.splitlines()), default=0)
    return longest + chunk.count("[") + chunk.count("{") < MAX_DEPTH


class _Refused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _checked_node(loader: _LineLoader, chunk: str, offset: int) -> yaml.Node:
    """The next document's node graph, once its nesting and expanded size are known to be bounded."""
    _check_depth(chunk, offset)
    node = loader.get_node()
    _check_size(node, offset)
    return node


def _check_depth(chunk: str, offset: int) -> None:
    """Nesting depth from libyaml's event stream (iterative, so no depth can crash it)."""
    depth = 0
    for event in yaml.parse(chunk, Loader=SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(offset + event.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentEndEvent):
            return


def _check_size(root: yaml.Node, offset: int) -> None:
    """The node count with every alias expanded, computed once per distinct node (iteratively)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_NODES:
                raise _Refused(offset + root.start_mark.line + 1,
                               f"the document expands to more than {MAX_NODES:,} nodes (YAML aliases)")
            sizes[key] = size
        elif key not in sizes:
            if key in open_nodes:
                raise _Refused(offset + node.start_mark.line + 1, "the document refers to itself (a recursive YAML alias)")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_documents(path: Path) -> list[Any]:
    """Every YAML document of a trusted project file (a case, a base); any problem is an InputError with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", str(path)) from None
    loaded = list(documents(text))
    for document in loaded:
        if isinstance(document, YamlProblem):
            raise InputError(document.message, f"{path}:{document.line}")
    return loaded


def plain(value: Any) -> Any:
    """Strip LineDicts back to plain dicts (engines must not see our bookkeeping)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
