"""Rendering an audit: a table for people, JSON for scripts, SARIF 2.1.0 for code scanning, JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from importlib.metadata import version
from typing import Any

from compiler import ir

from .model import Violation
from .run import AuditRun

FORMATS = ("table", "json", "sarif", "junit")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"deny": "error", "audit": "warning"}


def _object(v: Violation) -> str:
    return f"{v.kind} {v.namespace + '/' if v.namespace else ''}{v.name}"


def summary(run: AuditRun) -> dict[str, Any]:
    inputs = run.inputs
    return {
        "files": inputs.files_read,
        "workloads": len(inputs.workloads),
        "distinct_workloads_evaluated": run.evaluations,
        "evidence_documents": inputs.evidence_documents,
        "foreign_results": inputs.foreign_results,
        "skipped": dict(sorted(inputs.skipped.items())),
        "deny": sum(v.verdict == "deny" for v in run.violations),
        "audit": sum(v.verdict == "audit" for v in run.violations),
        "disagreements": len(run.disagreements),
        "problems": len(inputs.problems),
    }


def table(run: AuditRun) -> str:
    rows = [("WHERE", "OBJECT", "RULE", "VERDICT", "SOURCE")]
    rows += [(v.where, _object(v), v.rule, v.verdict, v.source) for v in run.violations]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4] for row in rows] if run.violations else []
    s = summary(run)
    skipped = ", ".join(f"{kind} {n}" for kind, n in s["skipped"].items()) or "none"
    lines.append(f"{s['workloads']} workloads in {s['files']} files audited with {', '.join(run.backends)} "
                 f"(as of {run.program.as_of}); {s['evidence_documents']} evidence documents; "
                 f"{s['deny']} violations of required rules (deny), {s['audit']} of recommended rules (audit); "
                 f"non-workload objects skipped: {skipped}")
    for drift in run.disagreements:
        lines.append(f"engine drift at {drift.workload.where} ({drift.workload.kind} {drift.workload.namespace}/{drift.workload.name}): "
                     + "; ".join(f"{b} {json.dumps(v, sort_keys=True)}" for b, v in sorted(drift.verdicts.items())))
    return "\n".join(lines)


def as_json(run: AuditRun) -> str:
    return json.dumps({
        "as_of": run.program.as_of.isoformat(),
        "backends": run.backends,
        "summary": summary(run),
        "violations": [dict(v.__dict__, where=v.where) for v in run.violations],
        "disagreements": [{"where": d.workload.where, "kind": d.workload.kind, "namespace": d.workload.namespace,
                           "name": d.workload.name, "verdicts": d.verdicts} for d in run.disagreements],
        "problems": [{"where": p.where, "message": p.message} for p in run.inputs.problems],
        "notes": run.inputs.notes,
    }, indent=2, sort_keys=True)


def _location(file: str, line: int) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": {"uri": file}, "region": {"startLine": max(line, 1)}}}


def sarif(run: AuditRun) -> str:
    """One SARIF rule per kupe rule; one result per violation, at the file and line of the object."""
    rules = list(run.program.rules)
    index = {r.id: i for i, r in enumerate(rules)}
    descriptors = [{
        "id": r.id,
        "name": r.id,
        "shortDescription": {"text": r.rule.title},
        "fullDescription": {"text": r.rule.rationale},
        "help": {"text": r.rule.fix},
        "defaultConfiguration": {"level": "error" if r.level is ir.Level.REQUIRED else "warning"},
        "properties": {"level": r.level.value, "policySet": r.rule.policy_set, "source": str(r.rule.loc)},
    } for r in rules]
    results = [{
        "ruleId": v.rule,
        "ruleIndex": index[v.rule],
        "level": _SARIF_LEVEL[v.verdict],
        "message": {"text": f"{_object(v)}: {rules[index[v.rule]].rule.title}. Fix: {rules[index[v.rule]].rule.fix}"
                            + (f" ({v.message})" if v.message else "")},
        "locations": [_location(v.file, v.line)],
        "properties": {"verdict": v.verdict, "source": v.source, "kind": v.kind, "namespace": v.namespace, "name": v.name},
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
                    failure.text = rule.rule.fix
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
