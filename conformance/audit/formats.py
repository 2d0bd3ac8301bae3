"""Rendering an audit: a table for people, JSON for scripts, SARIF 2.1.0 for code scanning, JUnit XML for CI."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections import defaultdict
from importlib.metadata import version
from typing import Any

from compiler import describe, ir

from .docker import DOCKER_KINDS
from .model import Violation
from .run import AuditRun

FORMATS = ("table", "json", "sarif", "junit")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SARIF_LEVEL = {"deny": "error", "audit": "warning"}


def _object(v: Violation) -> str:
    return f"{v.kind} {v.namespace + '/' if v.namespace else ''}{v.name}"


def summary(run: AuditRun) -> dict[str, Any]:
    inputs = run.inputs
    return {
        "files": inputs.files_read,
        "workloads": len(inputs.workloads),
        "compose_files": inputs.docker_files["compose"],
        "dockerfiles": inputs.docker_files["dockerfile"],
        "rule_evaluations": run.evaluations,
        "evidence_documents": inputs.evidence_documents,
        "foreign_results": inputs.foreign_results,
        "skipped": dict(sorted(inputs.skipped.items())),
        "deny": sum(v.verdict == "deny" for v in run.violations),
        "audit": sum(v.verdict == "audit" for v in run.violations),
        "disagreements": len(run.disagreements),
        "problems": len(inputs.problems),
    }


_COLUMNS = ("WHERE", "OBJECT", "RULE", "VERDICT", "SUBJECT", "FIELD", "VALUE")
_GIVES_WAY = ((0, 16), (1, 14), (6, 8), (4, 10), (5, 16), (2, 16))  # (column, narrowest) in the order they shrink


def _fit(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Rows as aligned columns no wider than `width` where possible (100 columns or more): WHERE,
    OBJECT, VALUE, SUBJECT, FIELD and RULE give way in that order (a cut cell keeps its end: the
    file name and line, the object's name, the field's leaf)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for column, narrowest in _GIVES_WAY:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess > 0:
            widths[column] = max(narrowest, widths[column] - excess)
    cut = [tuple(cell if len(cell) <= w else "…" + cell[len(cell) - w + 1:] for cell, w in zip(row, widths)) for row in rows]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cut]


def table(run: AuditRun) -> str:
    """A row per violation, fitted to the terminal; then each violated rule's requirement and fix, once."""
    rows = [_COLUMNS] + [(v.where, _object(v), v.rule, v.verdict, v.subject or "-", v.field or "-", v.value or "-")
                         for v in run.violations]
    width = shutil.get_terminal_size((160, 24)).columns
    lines = _fit(rows, width) if run.violations else []
    for rule in sorted({v.rule for v in run.violations if v.kind not in DOCKER_KINDS}):
        checks = "; ".join(describe.predicate(c.predicate) for c in run.rules[rule].rule.checks)
        lines += textwrap.wrap(f"{rule}: {checks}. Fix: {run.rules[rule].rule.fix}", width, initial_indent="  ",
                               subsequent_indent="    ")
    for message in sorted({v.message.split(": ", 1)[0] + ": " + v.message.split(": ", 2)[-1]
                           for v in run.violations if v.kind in DOCKER_KINDS}):
        lines += textwrap.wrap(message, width, initial_indent="  ", subsequent_indent="    ")
    s = summary(run)
    skipped = ", ".join(f"{kind} {n}" for kind, n in s["skipped"].items()) or "none"
    docker = f"; {s['compose_files']} Compose files and {s['dockerfiles']} Dockerfiles" if s["compose_files"] or s["dockerfiles"] else ""
    lines += textwrap.wrap(f"{s['workloads']} workloads{docker} in {s['files']} files audited with {', '.join(run.backends)} "
                           f"(as of {run.program.as_of}); {s['evidence_documents']} evidence documents; "
                           f"{s['deny']} violations of required rules (deny), {s['audit']} of recommended rules (audit); "
                           f"non-workload objects skipped: {skipped}", width)
    for drift in run.disagreements:
        lines += textwrap.wrap(f"engine drift at {drift.workload.where} ({drift.workload.kind} {drift.workload.namespace}/"
                               f"{drift.workload.name}): " + "; ".join(f"{b} {json.dumps(v, sort_keys=True)}"
                                                                       for b, v in sorted(drift.verdicts.items())),
                               width, subsequent_indent="    ")
    return "\n".join(lines)


# A violation is a flat mapping of strings and numbers at depth 2 of the report: the C encoder
# writes it with the separators `indent=2` puts there. `indent` needs the pure-Python encoder,
# which wrote the report of the 10k benchmark corpus (8,811 violations, 7 MB) in 0.23 s, serially
# at the end of the audit; this way takes 0.15 s.
_VIOLATION = json.JSONEncoder(sort_keys=True, separators=(",\n      ", ": "))


def as_json(run: AuditRun) -> str:
    """The report as `json.dumps(report, indent=2, sort_keys=True)` writes it; `violations`, its
    last key and the bulk of it, is written by the C encoder."""
    head = json.dumps({
        "as_of": run.program.as_of.isoformat(),
        "backends": run.backends,
        "summary": summary(run),
        "disagreements": [{"where": d.workload.where, "kind": d.workload.kind, "namespace": d.workload.namespace,
                           "name": d.workload.name, "verdicts": d.verdicts} for d in run.disagreements],
        "problems": [{"where": p.where, "message": p.message} for p in run.inputs.problems],
        "notes": run.inputs.notes,
    }, indent=2, sort_keys=True)
    items = ["{\n      " + _VIOLATION.encode(dict(v.__dict__, where=v.where))[1:-1] + "\n    }" for v in run.violations]
    violations = "[\n    " + ",\n    ".join(items) + "\n  ]" if items else "[]"
    return head.removesuffix("\n}") + ',\n  "violations": ' + violations + "\n}"


def _location(file: str, line: int) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": {"uri": file}, "region": {"startLine": max(line, 1)}}}


_SECURITY_SEVERITY = {ir.Level.REQUIRED: "8.0", ir.Level.RECOMMENDED: "5.0"}  # GitHub: high, medium


def sarif(run: AuditRun) -> str:
    """One SARIF rule per kupe rule (its id is stable); one result per violation, at the file and line of the object."""
    rules = list(run.program.rules)
    index = {r.id: i for i, r in enumerate(rules)}
    descriptors = [{
        "id": r.id,
        "name": r.id,
        "shortDescription": {"text": r.rule.title},
        "fullDescription": {"text": r.rule.rationale},
        "help": {"text": r.rule.fix},
        "defaultConfiguration": {"level": "error" if r.level is ir.Level.REQUIRED else "warning"},
        "properties": {"level": r.level.value, "policySet": r.rule.policy_set, "source": str(r.rule.loc),
                       "security-severity": _SECURITY_SEVERITY[r.level], "tags": ["security", "kubernetes"]},
    } for r in rules]
    results = [{
        "ruleId": v.rule,
        "ruleIndex": index[v.rule],
        "level": _SARIF_LEVEL[v.verdict],
        "message": {"text": f"{_object(v)}: {v.message or rules[index[v.rule]].rule.title}. Fix: {v.fix or rules[index[v.rule]].rule.fix}"},
        "locations": [_location(v.file, v.line)],
        "partialFingerprints": {"kupeViolation/v1": f"{v.kind}/{v.namespace}/{v.name}/{v.rule}/{v.subject}/{v.field}"},
        "properties": {key: value for key, value in (
            ("verdict", v.verdict), ("source", v.source), ("kind", v.kind), ("namespace", v.namespace), ("name", v.name),
            ("subject", v.subject), ("field", v.field), ("value", v.value), ("fix", v.fix)) if value},
    } for v in run.violations]
    notifications = [{"level": "error", "message": {"text": p.message}, "locations": [_location(*_split(p.where))]}
                     for p in run.inputs.problems]
    notifications += [{"level": "warning", "message": {"text": f"engine drift on {d.workload.kind} {d.workload.namespace}/{d.workload.name}: "
                                                          + json.dumps(d.verdicts, sort_keys=True)},
                       "locations": [_location(d.workload.file, d.workload.line)]} for d in run.disagreements]
    document = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "kupe-policy", "version": version("kupe-policy"), "rules": descriptors}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }
    return json.dumps(document, indent=2)


def _split(where: str) -> tuple[str, int]:
    file, _, line = where.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else (where, 1)


def junit(run: AuditRun) -> str:
    """A testsuite per backend and file (per evidence file), a testcase per object × rule; violations fail."""
    suites: dict[str, list[ET.Element]] = defaultdict(list)
    many = len(run.backends) > 1
    located: dict[tuple[str, int, str], list[Violation]] = defaultdict(list)
    for v in run.violations:
        located[(v.file, v.line, v.rule)].append(v)
    for workload, outcome in run.results:
        for backend, verdicts in sorted(outcome.items()):
            suite = f"{backend}: {workload.file}" if many else workload.file
            for rule in run.program.rules:
                if workload.kind not in rule.rule.kinds:
                    continue
                case = ET.Element("testcase", classname=workload.file,
                                  name=f"{workload.kind} {workload.namespace}/{workload.name} (line {workload.line}) :: {rule.id}")
                if isinstance(verdicts, str):
                    ET.SubElement(case, "error", message=verdicts)
                elif rule.id in verdicts:
                    failure = ET.SubElement(case, "failure", type=verdicts[rule.id], message=f"{rule.rule.title} ({verdicts[rule.id]})")
                    found = [v for v in located.get((workload.file, workload.line, rule.id), []) if v.subject]
                    failure.text = "\n".join([*(f"{v.subject}: {v.field} = {v.value}: {v.message}" for v in found),
                                               f"Fix: {rule.rule.fix}"])
                suites[suite].append(case)
    evaluated = {(w.file, w.line) for w, _ in run.results}
    for v in run.violations:
        if (v.file, v.line) in evaluated:
            continue  # already a testcase of its workload
        case = ET.Element("testcase", classname=v.file, name=f"{_object(v)} (line {v.line}) :: {v.rule}")
        failure = ET.SubElement(case, "failure", type=v.verdict, message=f"{v.source}: {v.message}".strip())
        failure.text = run.rules[v.rule].rule.fix
        suites[v.file].append(case)
    for p in run.inputs.problems:
        case = ET.Element("testcase", classname=_split(p.where)[0], name=f"read {p.where}")
        ET.SubElement(case, "error", message=p.message)
        suites[_split(p.where)[0]].append(case)
    for d in run.disagreements:
        case = ET.Element("testcase", classname="engine drift", name=f"{d.workload.kind} {d.workload.namespace}/{d.workload.name} ({d.workload.where})")
        ET.SubElement(case, "failure", type="drift", message=json.dumps(d.verdicts, sort_keys=True))
        suites["engine drift"].append(case)
    root = ET.Element("testsuites", name="kupe-policy audit")
    for name, cases in suites.items():
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(cases)),
                              failures=str(sum(c.find("failure") is not None for c in cases)),
                              errors=str(sum(c.find("error") is not None for c in cases)))
        suite.extend(cases)
    for attribute in ("tests", "failures", "errors"):
        root.set(attribute, str(sum(int(s.get(attribute)) for s in root)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


RENDER = {"table": table, "json": as_json, "sarif": sarif, "junit": junit}
