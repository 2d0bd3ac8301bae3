"""Source-level handling of ConstraintTemplate Rego before it reaches rego-cpp (regopy).

Gatekeeper parses ``spec.targets[].rego`` as Rego v0, while rego-cpp reads a bare v0 head
``name[term] { ... }`` with v1 meaning (a partial *object* ``term -> true``), which breaks both
the ``violation`` set and every helper set a template iterates with ``s[_]``. Rewriting those
heads to the equivalent ``name contains term if { ... }`` restores OPA's v0 meaning for every
rule, not only for the query result. The same tokenizer enforces what Gatekeeper's parser
would reject (v1 keywords without their ``future.keywords`` import in v0, ``import rego.v1``
in v0, bodies without ``if`` in v1) and finds calls rego-cpp cannot evaluate, because
rego-cpp would otherwise silently evaluate them to undefined and a rule would never fire.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "RegoSourceError",
    "UnsupportedBuiltinError",
    "Token",
    "tokenize",
    "package_of",
    "prepare_v0",
    "check_v1",
    "called_functions",
    "MEASURED_UNDEFINED_BUILTINS",
    "V1_KEYWORDS",
]


class RegoSourceError(ValueError):
    """The Rego would not be accepted by Gatekeeper's parser (or cannot be tokenized)."""


class UnsupportedBuiltinError(RegoSourceError):
    """The Rego calls a function that rego-cpp silently evaluates to undefined."""


# Declared by rego-cpp 1.5.2 (``is_builtin`` is true) yet measured to evaluate to undefined
# on valid arguments. tests/test_gatekeeper_engine.py re-measures each one, so the list goes
# stale loudly if a later regopy implements them.
MEASURED_UNDEFINED_BUILTINS = frozenset(
    {
        "time.parse_rfc3339_ns",
        "crypto.x509.parse_certificates",
        "crypto.x509.parse_certificate_request",
        "crypto.x509.parse_and_verify_certificates",
        "json.match_schema",
        "strings.render_template",
        "net.cidr_is_valid",
    }
)

# Keywords that v0 only knows through ``import future.keywords[.<kw>]``.
V1_KEYWORDS = ("if", "contains", "in", "every")
_REGO_KEYWORDS = frozenset(
    {"package", "import", "default", "else", "not", "some", "with", "as", "true", "false", "null"}
    | set(V1_KEYWORDS)
)
# Functions rego-cpp evaluates although ``is_builtin`` reports them unknown.
_WORKING_UNDECLARED = frozenset({"print"})

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|==|!=|<=|>=|[-+*/%&|<>=!:;,.\[\](){}])
    """,
    re.VERBOSE,
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


@dataclass(frozen=True)
class Token:
    """A significant token; ``line_start`` is true when it is the first token on its line."""

    kind: str
    text: str
    start: int
    end: int
    depth: int  # bracket depth before this token
    line_start: bool


def tokenize(source: str) -> list[Token]:
    """Split Rego into significant tokens (comments and whitespace dropped), tracking depth."""
    tokens: list[Token] = []
    pos, depth, new_line = 0, 0, True
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if m is None:
            line = source.count("\n", 0, pos) + 1
            raise RegoSourceError(f"cannot tokenize Rego at line {line}: {source[pos:pos + 20]!r}")
        kind, text = m.lastgroup or "", m.group()
        pos = m.end()
        if kind == "nl":
            new_line = True
            continue
        if kind in ("ws", "comment"):
            continue
        if text in _CLOSE:
            depth -= 1
        tokens.append(Token(kind, text, m.start(), m.end(), depth, new_line))
        if text in _OPEN:
            depth += 1
        new_line = False
    if depth != 0:
        raise RegoSourceError("unbalanced brackets in Rego source")
    return tokens


def package_of(source: str) -> str:
    """Return the dotted package path a module declares."""
    tokens = tokenize(source)
    for i, tok in enumerate(tokens):
        if tok.text == "package" and tok.depth == 0:
            parts: list[str] = []
            j = i + 1
            while j < len(tokens) and not (tokens[j].line_start and j > i + 1):
                parts.append(tokens[j].text)
                j += 1
            return "".join(parts)
    raise RegoSourceError("Rego module has no package declaration")


def _matching(tokens: list[Token], i: int) -> int:
    """Index of the bracket closing the one opened at ``tokens[i]``."""
    depth = tokens[i].depth
    for j in range(i + 1, len(tokens)):
        if tokens[j].depth == depth and tokens[j].text in _CLOSE:
            return j
    raise RegoSourceError("unbalanced brackets in Rego source")


def _imports(tokens: list[Token]) -> list[str]:
    """Dotted paths of the module's imports (alias excluded)."""
    paths: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.text == "import" and tok.depth == 0 and tok.line_start:
            parts: list[str] = []
            j = i + 1
            while j < len(tokens) and not tokens[j].line_start and tokens[j].text != "as":
                parts.append(tokens[j].text)
                j += 1
            paths.append("".join(parts))
    return paths


def _keyword_uses(tokens: list[Token]) -> set[str]:
    """v1 keywords used as keywords (not as a call like the builtin ``contains(a, b)``)."""
    used = set()
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text not in V1_KEYWORDS:
            continue
        follows_dot = i > 0 and tokens[i - 1].text == "."
        is_call = i + 1 < len(tokens) and tokens[i + 1].text == "("
        if not follows_dot and not is_call:
            used.add(tok.text)
    return used


def _statement_starts(tokens: list[Token]) -> list[int]:
    """Indices of tokens that begin a top-level statement (package, import or rule)."""
    return [i for i, t in enumerate(tokens) if t.depth == 0 and t.line_start]


def _end_of_statement(tokens: list[Token], i: int) -> bool:
    return i >= len(tokens) or tokens[i].line_start and tokens[i].depth == 0


def prepare_v0(source: str) -> str:
    """Validate a v0 module as Gatekeeper would and rewrite its partial-set heads for rego-cpp.

    ``name[term] { body }``, ``name[term] if { body }`` and the fact ``name[term]`` become
    ``name contains term if { body }`` / ``name contains term``; object rules
    (``name[k] = v``) and everything else are left byte-for-byte unchanged.
    """
    tokens = tokenize(source)
    imports = _imports(tokens)
    if "rego.v1" in imports:
        raise RegoSourceError(
            "`import rego.v1` is rejected: Gatekeeper parses spec.targets[].rego as Rego v0 "
            "(use the code: [{engine: Rego, source: {version: v1}}] form for v1)"
        )
    for kw in sorted(_keyword_uses(tokens)):
        if not {"future.keywords", f"future.keywords.{kw}"} & set(imports):
            raise RegoSourceError(
                f"keyword `{kw}` needs `import future.keywords.{kw}`: Gatekeeper parses "
                "spec.targets[].rego as Rego v0, where it is otherwise a parse error"
            )
    edits: list[tuple[int, int, str]] = []
    for i in _statement_starts(tokens):
        head = tokens[i]
        if head.kind != "ident" or head.text in _REGO_KEYWORDS:
            continue
        if i + 1 >= len(tokens) or tokens[i + 1].text != "[" or tokens[i + 1].line_start:
            continue
        close = _matching(tokens, i + 1)
        after = close + 1
        if _end_of_statement(tokens, after):
            suffix = ""
        elif tokens[after].text == "{":
            suffix = " if"
        elif tokens[after].text == "if":
            suffix = ""
        else:  # `name[k] = v`, `name[k] := v`, `name[x].y`, ...: not a v0 partial set
            continue
        term = source[tokens[i + 1].end : tokens[close].start]
        edits.append((tokens[i + 1].start, tokens[close].end, f" contains {term.strip()}{suffix}"))
    for start, end, text in reversed(edits):
        source = source[:start] + text + source[end:]
    return source


def check_v1(source: str) -> None:
    """Reject what OPA's v1 parser rejects and rego-cpp would accept: a rule body without ``if``."""
    tokens = tokenize(source)
    starts = _statement_starts(tokens)
    for n, i in enumerate(starts):
        if tokens[i].kind != "ident" or tokens[i].text in {"package", "import"}:
            continue
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        j = i
        while j < end:
            tok = tokens[j]
            if tok.text == "if" and tok.depth == 0:
                break
            if tok.text == "{" and tok.depth == 0 and j > i and _ends_term(tokens[j - 1]):
                raise RegoSourceError(
                    f"rule `{tokens[i].text}` has a body without `if`: a parse error in Rego v1"
                )
            j = _matching(tokens, j) + 1 if tok.text in _OPEN else j + 1


def _ends_term(tok: Token) -> bool:
    """True when ``tok`` can end a rule head, so a following ``{`` opens a body."""
    return tok.kind in {"ident", "string", "raw", "number"} or tok.text in _CLOSE


def called_functions(sources: list[str]) -> set[str]:
    """Names called like ``name(...)`` that no module defines and no import or ``data`` path reaches."""
    defined: set[str] = set()
    aliases: set[str] = {"data", "input"}
    calls: set[str] = set()
    for source in sources:
        tokens = tokenize(source)
        for path in _imports(tokens):
            aliases.add(path.split(".")[-1])
        for i, tok in enumerate(tokens):
            if tok.text == "import" and tok.depth == 0:
                k = i + 1
                while k < len(tokens) and not tokens[k].line_start:
                    if tokens[k].text == "as" and k + 1 < len(tokens):
                        aliases.add(tokens[k + 1].text)
                    k += 1
        for i in _statement_starts(tokens):
            if tokens[i].kind == "ident":
                defined.add(tokens[i].text)
        i = 0
        while i < len(tokens):
            if tokens[i].kind != "ident" or (i > 0 and tokens[i - 1].text == "."):
                i += 1
                continue
            parts, j = [tokens[i].text], i + 1
            while j + 1 < len(tokens) and tokens[j].text == "." and tokens[j + 1].kind == "ident":
                parts.append(tokens[j + 1].text)
                j += 2
            if j < len(tokens) and tokens[j].text == "(" and parts[0] not in _REGO_KEYWORDS:
                calls.add(".".join(parts))
            i = j
    return {c for c in calls if c.split(".")[0] not in aliases and c.split(".")[-1] not in defined}


def unsupported_calls(sources: list[str], is_builtin) -> list[str]:
    """Calls rego-cpp cannot evaluate: unknown to it, or known but measured to be undefined."""
    return sorted(
        name
        for name in called_functions(sources)
        if name in MEASURED_UNDEFINED_BUILTINS
        or (not is_builtin(name) and name not in _WORKING_UNDECLARED)
    )
