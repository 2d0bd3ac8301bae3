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

import functools
import json
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
    "hoist_nested_refs",
    "shim_sprintf",
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


Tokens = tuple[Token, ...]


@functools.lru_cache(maxsize=256)
def tokenize(source: str) -> Tokens:
    """Split Rego into significant tokens (comments and whitespace dropped), tracking depth.

    Each pass over a template tokenizes its source again, and templates share their libraries:
    building the 11 shipped templates tokenized 23 sources 110 times (0.3 s of the 0.75 s it took)."""
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
    return tuple(tokens)


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


def _matching(tokens: Tokens, i: int) -> int:
    """Index of the bracket closing the one opened at ``tokens[i]``."""
    depth = tokens[i].depth
    for j in range(i + 1, len(tokens)):
        if tokens[j].depth == depth and tokens[j].text in _CLOSE:
            return j
    raise RegoSourceError("unbalanced brackets in Rego source")


def _imports(tokens: Tokens) -> list[str]:
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


def _keyword_uses(tokens: Tokens) -> set[str]:
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


def _statement_starts(tokens: Tokens) -> list[int]:
    """Indices of tokens that begin a top-level statement (package, import or rule)."""
    return [i for i, t in enumerate(tokens) if t.depth == 0 and t.line_start]


def _end_of_statement(tokens: Tokens, i: int) -> bool:
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
            prev = tokens[j - 1]
            if tok.text == "{" and tok.depth == 0 and j > i and _opens_body(prev) and prev.text != "else":
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


_HOIST_PREFIX = "__kupe_ref"


def _is_comprehension(tokens: Tokens, i: int, close: int) -> bool:
    """A ``[``/``{`` group with a top-level ``|`` is a comprehension (its own scope)."""
    inner = tokens[i].depth + 1
    return tokens[i].text in "[{" and any(
        t.text == "|" and t.depth == inner for t in tokens[i + 1 : close]
    )


def _ref_end(tokens: Tokens, i: int) -> tuple[int, bool]:
    """(index after the ref starting at ``tokens[i]``, whether an index holds a variable)."""
    j, has_var = i + 1, False
    while j < len(tokens):
        tok = tokens[j]
        if tok.text == "." and j + 1 < len(tokens) and tokens[j + 1].kind == "ident":
            j += 2
        elif tok.text == "[" and tok.start == tokens[j - 1].end:
            close = _matching(tokens, j)
            has_var = has_var or any(t.kind == "ident" for t in tokens[j + 1 : close])
            j = close + 1
        else:
            break
    return j, has_var


def _opens_body(prev: Token) -> bool:
    """Whether a non-comprehension ``{`` after ``prev`` opens a body rather than a literal."""
    if prev.text in {"if", "else"}:
        return True
    return _ends_term(prev) and not (prev.kind == "ident" and prev.text in _REGO_KEYWORDS)


def _bodies(tokens: Tokens) -> list[tuple[int, int]]:
    """(first, end) token ranges of rule bodies and comprehension bodies, innermost first."""
    bodies: list[tuple[int, int, int]] = []
    for i, tok in enumerate(tokens):
        if tok.text not in "[{":
            continue
        close = _matching(tokens, i)
        if _is_comprehension(tokens, i, close):
            bar = next(k for k in range(i + 1, close) if tokens[k].text == "|" and tokens[k].depth == tok.depth + 1)
            bodies.append((tok.depth, bar + 1, close))
        elif tok.text == "{" and i > 0 and _opens_body(tokens[i - 1]):
            bodies.append((tok.depth, i + 1, close))
    return [(a, b) for _, a, b in sorted(bodies, key=lambda t: -t[0])]


def _expressions(tokens: Tokens, first: int, end: int) -> list[tuple[int, int]]:
    """Split a body into expressions at ``;`` and line starts on the body's own depth."""
    if first >= end:
        return []
    depth = tokens[first].depth
    exprs, start = [], first
    for k in range(first + 1, end):
        tok = tokens[k]
        if tok.depth == depth and (tok.text == ";" or tok.line_start):
            if start < k:
                exprs.append((start, k if tok.text != ";" else k))
            start = k + 1 if tok.text == ";" else k
    if start < end:
        exprs.append((start, end))
    return exprs


def hoist_nested_refs(source: str) -> str:
    """Lift refs that iterate (``a[_]``, ``a[i]``) out of call arguments and composite literals.

    OPA evaluates ``lower(input.xs[_])`` or ``[c, input.xs[_]]`` by enumerating the ref;
    rego-cpp rejects the wildcard form and silently yields nothing for a named variable.
    ``e(ref)`` becomes ``__v := ref; e(__v)``, and a negated ``not e(ref)`` becomes
    ``count([1 | __v := ref; e(__v)]) == 0`` so the negation still covers every element.
    """
    tokens = tokenize(source)
    edits: list[tuple[int, int, str]] = []  # (start, end, text), non-overlapping
    counter = 0
    for first, end in _bodies(tokens):
        for a, b in _expressions(tokens, first, end):
            base = tokens[a].depth
            lifted: list[tuple[int, int, str]] = []
            k = a
            while k < b:
                tok = tokens[k]
                if tok.text in "[{" and _is_comprehension(tokens, k, _matching(tokens, k)):
                    k = _matching(tokens, k) + 1
                    continue
                starts_ref = (
                    tok.kind == "ident"
                    and tok.text not in _REGO_KEYWORDS
                    and not (k > a and tokens[k - 1].text == ".")
                )
                if not starts_ref:
                    k += 1
                    continue
                ref_end, has_var = _ref_end(tokens, k)
                if ref_end < b and tokens[ref_end].text == "(":
                    k = ref_end  # a call like lib.f(...): its arguments are scanned next
                    continue
                if has_var and tok.depth > base:
                    name = f"{_HOIST_PREFIX}{counter}"
                    counter += 1
                    lifted.append((tok.start, tokens[ref_end - 1].end, name))
                    k = ref_end
                else:
                    k += 1
            if not lifted:
                continue
            lo, hi = tokens[a].start, tokens[b - 1].end
            inner = [e for e in edits if lo <= e[0] and e[1] <= hi]
            edits = [e for e in edits if e not in inner]
            text = source[lo:hi]
            for start, stop, repl in sorted(inner + lifted, reverse=True):
                text = text[: start - lo] + repl + text[stop - lo :]
            hoists = "; ".join(f"{name} := {source[start:stop]}" for start, stop, name in lifted)
            if tokens[a].text == "not":
                negated = text[len("not") :].strip()
                text = f"count([1 | {hoists}; {negated}]) == 0"
            else:
                text = f"{hoists}; {text}"
            edits.append((lo, hi, text))
    for start, stop, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[stop:]
    return source


# rego-cpp's sprintf prints some strings with their quotes (strings computed by builtins, or
# passed as function arguments, formatted inside a function) and ignores %q. The shim formats
# string arguments of %v/%s/%q itself (concat is unaffected) and leaves every other verb and
# argument to the native sprintf. %q quotes with \\ and \" escaped, as Go does for printable text.
_VERB = re.compile(r"%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]")  # __kupe_verb_re
_SPRINTF_SHIM = r"""

__kupe_verb_re := `%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`

__kupe_sprintf(f, args) := concat("", parts) if {
	segs := regex.split(__kupe_verb_re, f)
	verbs := regex.find_n(__kupe_verb_re, f, -1)
	parts := [p | seg := segs[i]; p := concat("", [seg, __kupe_verb_text(verbs, i, args)])]
}

__kupe_arg_index(verbs, i) := count([j | v := verbs[j]; j < i; v != "%%"])

__kupe_verb_text(verbs, i, _) := "" if { i >= count(verbs) }
__kupe_verb_text(verbs, i, _) := "%" if { verbs[i] == "%%" }
__kupe_verb_text(verbs, i, args) := __kupe_format(verbs[i], args[n]) if {
	verbs[i] != "%%"
	n := __kupe_arg_index(verbs, i)
	n < count(args)
}
__kupe_verb_text(verbs, i, args) := concat("", ["%!", substring(verbs[i], count(verbs[i]) - 1, 1), "(MISSING)"]) if {
	verbs[i] != "%%"
	__kupe_arg_index(verbs, i) >= count(args)
}

__kupe_format(verb, arg) := arg if { verb in {"%v", "%s"}; is_string(arg) }
__kupe_format(verb, arg) := concat("", ["\"", replace(replace(arg, `\`, `\\`), `"`, `\"`), "\""]) if {
	verb == "%q"
	is_string(arg)
}
__kupe_format(verb, arg) := sprintf(verb, [arg]) if { not is_string(arg) }
__kupe_format(verb, arg) := sprintf(verb, [arg]) if { is_string(arg); not verb in {"%v", "%s", "%q"} }
"""


def shim_sprintf(source: str) -> str:
    """Route the module's ``sprintf`` calls through a Rego shim that formats strings correctly.

    A call with a literal format and a literal array of as many arguments as it has verbs is
    expanded here into the shim's own steps (`concat` of the segments and `__kupe_format` of each
    argument): the shim's generic comprehension costs rego-cpp milliseconds per message."""
    tokens = tokenize(source)
    calls = [
        i for i, t in enumerate(tokens)
        if t.text == "sprintf" and i + 1 < len(tokens) and tokens[i + 1].text == "("
        and not (i > 0 and tokens[i - 1].text == ".")
    ]
    if not calls:
        return source
    for i in reversed(calls):
        expanded = _expanded_sprintf(source, tokens, i)
        if expanded is None:
            source = source[:tokens[i].start] + "__kupe_sprintf" + source[tokens[i].end:]
        else:
            end, text = expanded
            source = source[:tokens[i].start] + text + source[end:]
    return source + _SPRINTF_SHIM


def _expanded_sprintf(source: str, tokens: Tokens, i: int) -> tuple[int, str] | None:
    """(end offset, replacement) for `sprintf("literal", [a, b])` at tokens[i]; None for any other form."""
    if i + 4 >= len(tokens) or tokens[i + 3].text != "," or tokens[i + 4].text != "[":
        return None
    literal = _literal(tokens[i + 2])
    close = _matching(tokens, i + 4)
    if literal is None or close + 1 >= len(tokens) or tokens[close + 1].text != ")":
        return None
    inner = tokens[i + 5:close]
    if any(t.text == "sprintf" for t in inner):  # nested calls are rewritten separately
        return None
    if any(t.text == "|" and t.depth == tokens[i + 4].depth + 1 for t in inner):  # a comprehension, not an array
        return None
    args: list[str] = []
    first = i + 5
    for k in range(i + 5, close + 1):
        if k == close or (tokens[k].text == "," and tokens[k].depth == tokens[i + 4].depth + 1):
            if k > first:
                args.append(source[tokens[first].start:tokens[k - 1].end])
            first = k + 1
    segments, verbs = _VERB.split(literal), _VERB.findall(literal)
    if sum(v != "%%" for v in verbs) != len(args):
        return None
    parts, n = [], 0
    for k, segment in enumerate(segments):
        parts.append(json.dumps(segment))
        if k < len(verbs):
            if verbs[k] == "%%":
                parts.append('"%"')
            else:
                parts.append(f"__kupe_format({json.dumps(verbs[k])}, {args[n]})")
                n += 1
    return tokens[close + 1].end, f'concat("", [{", ".join(parts)}])'


def _literal(token: Token) -> str | None:
    """The value of a Rego string literal token (None: not a literal, or escapes JSON does not read)."""
    if token.kind == "raw":
        return token.text[1:-1]
    if token.kind == "string":
        try:
            return json.loads(token.text)
        except ValueError:
            return None
    return None
