"""Readiness of a recommended rule for promotion to required, and the source edits that promote it.

Covered or not: a violation of the rule in a *manifest* is covered by an exemption when the
rule passes the object as compiled, but fails it when compiled with the rule's exemptions
stripped. Both verdicts come from the same adapter, so this is exact for waivers and widenings,
container scopes and labels alike, with no second implementation of exemption matching.
A violation from *cluster evidence* (a report names kind, namespace and name, not the object)
counts as covered only by a waiver in force that selects by namespaces and names alone and
selects it; whatever else could cover it cannot be decided from a report, so it stays a blocker.

Edits are minimal: `set_required` replaces only the level argument of the rule's `.rule(...)`
call (located with `ast` at the rule's source line); `append_exemptions` writes one `exempt(...)`
call per violating workload to `policies/generated_exemptions.py`. Those exemptions select the
workload by namespace and name, as the evidence names it (the Pods a controller creates later
have other names).
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.output import write_text_atomically
from compiler import ir
from compiler.ir import DEFAULT_NAMESPACE
from compiler.errors import InputError

from ..engines.decoding import Rejected
from .model import Violation, Workload
from .verdicts import Auditor

GENERATED_MODULE = "generated_exemptions.py"
_HEADER = '''"""Exemptions written by `kupe-policy promote --exempt-current`.

Each waives one rule for one workload that violated it when the rule was promoted to required,
until it expires. Fix the workload and delete its exemption; renew one only with a reason.
"""

from compiler.dsl import exempt
'''


@dataclass(frozen=True)
class Readiness:
    rule: ir.ResolvedRule
    covered: list[tuple[Violation, tuple[str, ...]]]  # with the exemptions that may cover it
    uncovered: list[Violation]

    @property
    def ready(self) -> bool:
        return not self.uncovered


def without_exemptions(program: ir.Program, rule_id: str) -> ir.Program:
    """The same program with the rule's exemptions stripped (everything else as compiled)."""
    rules = tuple(dataclasses.replace(r, exemptions=()) if r.id == rule_id else r for r in program.rules)
    return dataclasses.replace(program, rules=rules)


def _selects(exemption: ir.Exemption, namespace: str, name: str) -> bool:
    return (not exemption.namespaces or namespace in exemption.namespaces) and (not exemption.names or name in exemption.names)


def _by_report(exemption: ir.Exemption) -> bool:
    """A waiver a report's kind/namespace/name is enough to decide."""
    return not (exemption.allow or exemption.labels or exemption.containers)


def readiness(program: ir.Program, rule_id: str, workloads: list[Workload], evidence: list[Violation], backend: str) -> Readiness:
    rule = next(r for r in program.rules if r.id == rule_id)
    with_exemptions = Auditor(program, [backend])
    stripped = Auditor(without_exemptions(program, rule_id), [backend])
    covered: list[tuple[Violation, tuple[str, ...]]] = []
    uncovered: list[Violation] = []
    for workload in workloads:
        now, bare = with_exemptions.evaluate(workload.request), stripped.evaluate(workload.request)
        if isinstance(now, Rejected):
            raise InputError(f"the API server would refuse this {workload.kind}: {now}", workload.where)
        now, bare = now[backend], bare[backend]
        if isinstance(now, str) or isinstance(bare, str):
            raise InputError(now if isinstance(now, str) else bare, workload.where)
        if rule_id not in bare:
            continue
        violation = Violation(rule_id, bare[rule_id], workload.kind, workload.namespace, workload.name,
                              workload.file, workload.line, backend)
        if rule_id in now:
            uncovered.append(violation)
        else:
            candidates = tuple(e.id for e in rule.kubernetes_exemptions if _selects(e, workload.namespace, workload.name))
            covered.append((violation, candidates))
    for violation in (v for v in evidence if v.rule == rule_id):
        waivers = tuple(e.id for e in rule.waivers if _by_report(e) and _selects(e, violation.namespace or DEFAULT_NAMESPACE, violation.name))
        if waivers:
            covered.append((violation, waivers))
        else:
            uncovered.append(violation)
    return Readiness(rule, covered, uncovered)


# --- source edits ------------------------------------------------------------------------------


def _offset(lines: list[bytes], line: int, column: int) -> int:
    """ast positions (1-based line, UTF-8 byte column) as a byte offset."""
    return sum(len(text) for text in lines[: line - 1]) + column


STAGE_KEYWORDS = ("enforce_from", "enforced_in")


def _rule_call(tree: ast.Module, rule_id: str, line: int) -> tuple[ast.Call, ast.expr]:
    """The `.rule(rule_id, …)` call at `line` and its level argument."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "rule"
                and node.lineno == line and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == rule_id):
            level = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "level"), None)
            if level is not None:
                return node, level
    raise InputError(f"cannot find the level of rule {rule_id!r} in a .rule({rule_id!r}, …) call on this line")


def _drop_keyword(data: bytes, lines: list[bytes], call: ast.Call, keyword: ast.keyword) -> tuple[int, int]:
    """The byte span to delete for a keyword argument: its own line(s) when it has them, else `, name=value`."""
    start = _offset(lines, keyword.lineno, keyword.col_offset)
    end = _offset(lines, keyword.end_lineno, keyword.end_col_offset)
    line_start = _offset(lines, keyword.lineno, 0)
    line_end = _offset(lines, keyword.end_lineno + 1, 0) if keyword.end_lineno < len(lines) else len(data)
    if not data[line_start:start].strip() and re.fullmatch(rb"\s*,?\s*(#[^\n]*)?\r?\n?", data[end:line_end]):
        return line_start, line_end
    previous = max(_offset(lines, n.end_lineno, n.end_col_offset) for n in [*call.args, *call.keywords]
                   if _offset(lines, n.end_lineno, n.end_col_offset) <= start)
    return previous, end


def _binds(tree: ast.Module, name: str) -> bool:
    return any(isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names) for node in tree.body)


def set_required(source: str, rule_id: str, line: int) -> str:
    """The source with only the rule's level argument changed from Recommended to Required.

    `Recommended` becomes `Required`; `dsl.Recommended` becomes `dsl.Required`; `Level.RECOMMENDED`
    becomes `Level.REQUIRED`. When the file uses the bare name but does not import `Required`,
    it is added to the `from compiler.dsl import …` line. A stage (`enforce_from=`, `enforced_in=`)
    only applies to recommended rules, so its keyword arguments are removed with their lines.
    """
    tree = ast.parse(source)
    call, node = _rule_call(tree, rule_id, line)
    replacements = {"Recommended": "Required", "RECOMMENDED": "REQUIRED"}
    current = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    if current not in replacements:
        raise InputError(f"rule {rule_id!r}: the level is not written as Recommended, so it cannot be edited safely")
    lines = source.encode("utf-8").splitlines(keepends=True)
    data = source.encode("utf-8")
    end = _offset(lines, node.end_lineno, node.end_col_offset)
    start = end - len(current)
    edits = [(start, end, replacements[current].encode())]
    edits += [(*_drop_keyword(data, lines, call, k), b"") for k in call.keywords if k.arg in STAGE_KEYWORDS]
    if isinstance(node, ast.Name) and not _binds(tree, "Required"):
        imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "compiler.dsl"]
        if not imports:
            raise InputError(f"rule {rule_id!r}: `Required` is not imported and there is no `from compiler.dsl import` to add it to")
        last = imports[0].names[-1]
        at = _offset(lines, last.end_lineno, last.end_col_offset)
        edits.append((at, at, b", Required"))
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text + data[end:]
    return data.decode("utf-8")


def exemption_id(rule_id: str, namespace: str, name: str) -> str:
    """Deterministic and unique per (rule, namespace, name), a valid DSL id of at most 63 characters."""
    digest = hashlib.sha256(json.dumps([rule_id, namespace, name]).encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "-", f"{rule_id}-{namespace}-{name}".lower()).strip("-")
    return f"promote-{readable[:45].rstrip('-')}-{digest}"


def _declared_ids(source: str) -> set[str]:
    return {node.args[0].value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exempt"
            and node.args and isinstance(node.args[0], ast.Constant)}


def append_exemptions(policies_dir: Path, rule_id: str, violations: list[Violation], *, expires: dt.date,
                      owner: str, ticket: str, as_of: dt.date) -> list[str]:
    """Append an expiring waiver per violating workload to the generated module; returns the ids written."""
    path = policies_dir / GENERATED_MODULE
    source = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    declared = _declared_ids(source)
    written: list[str] = []
    blocks: list[str] = []
    for namespace, name in sorted({(v.namespace or DEFAULT_NAMESPACE, v.name) for v in violations}):
        ident = exemption_id(rule_id, namespace, name)
        if ident in declared or ident in written:
            continue
        reason = f"violated {rule_id} when it was promoted to required on {as_of.isoformat()}"
        who = ", ".join(f"{k}={json.dumps(v)}" for k, v in (("owner", owner), ("ticket", ticket)) if v)
        blocks.append(
            f"\nexempt(\n    {json.dumps(ident)}, rules=[{json.dumps(rule_id)}],\n"
            f"    namespaces=[{json.dumps(namespace)}], names=[{json.dumps(name)}],\n"
            f"    reason={json.dumps(reason)},\n    {who}, expires={json.dumps(expires.isoformat())},\n)\n")
        written.append(ident)
    if blocks:
        write_text_atomically(path, source.rstrip("\n") + "\n" + "".join(blocks))
    return written
