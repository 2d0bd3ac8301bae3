"""The conformance cases: plain manifests with the verdict every rule must give them.

A case file under conformance/cases/ is a YAML list of cases:

    - name: run-as-non-root/container-false-overrides-pod
      expect: {run-as-non-root: deny}     # rules not listed must pass
      exemption: system-namespaces        # optional: the exemption that makes listed-as-pass rules pass
      as_of: 2027-02-15                   # optional: compile date (exemption expiry cases)
      controllers: true                   # default: a Pod case is also run wrapped in every pod controller
      known_failures: {kyverno: "why"}    # optional: a backend that cannot pass this yet, with the reason
      object: {apiVersion: v1, kind: Pod, ...}

Verdicts: `pass`, `deny` (a required rule blocks), `audit` (a recommended rule reports).
"""

from __future__ import annotations

import copy
from collections import Counter
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.errors import InputError

from .yamlio import LineDict, load_documents, plain

VERDICTS = ("pass", "deny", "audit")
CASES_DIR = Path(__file__).resolve().parent / "cases"
_CASE_KEYS = {"name", "description", "expect", "exemption", "as_of", "controllers", "known_failures", "object"}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    object: dict[str, Any]
    expect: dict[str, str]  # rule id → verdict; rules not listed pass
    source: str  # file:line
    as_of: dt.date | None = None
    exemption: str | None = None
    known_failures: dict[str, str] = field(default_factory=dict)

    def expected(self, rule: str) -> str:
        return self.expect.get(rule, "pass")


# Where each controller keeps its pod template (metadata and spec).
def _template(pod: dict[str, Any]) -> dict[str, Any]:
    labels = pod.get("metadata", {}).get("labels") or {}
    return {"metadata": {"labels": dict(labels)}, "spec": copy.deepcopy(pod.get("spec", {}))}


def _selector(pod: dict[str, Any]) -> dict[str, Any]:
    return {"matchLabels": dict(pod.get("metadata", {}).get("labels") or {"app": "case"})}


def _job_spec(pod: dict[str, Any]) -> dict[str, Any]:
    template = _template(pod)
    template["spec"].setdefault("restartPolicy", "Never")
    return {"template": template}


CONTROLLERS: dict[str, tuple[str, Any]] = {
    "Deployment": ("apps/v1", lambda p: {"replicas": 1, "selector": _selector(p), "template": _template(p)}),
    "ReplicaSet": ("apps/v1", lambda p: {"replicas": 1, "selector": _selector(p), "template": _template(p)}),
    "StatefulSet": ("apps/v1", lambda p: {"serviceName": "case", "selector": _selector(p), "template": _template(p)}),
    "DaemonSet": ("apps/v1", lambda p: {"selector": _selector(p), "template": _template(p)}),
    "Job": ("batch/v1", _job_spec),
    "CronJob": ("batch/v1", lambda p: {"schedule": "0 * * * *", "jobTemplate": {"spec": _job_spec(p)}}),
    "ReplicationController": ("v1", lambda p: {"replicas": 1, "selector": _selector(p)["matchLabels"], "template": _template(p)}),
}


def wrap(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    """The Pod's spec as the pod template of a controller of `kind`, with the Pod's metadata."""
    api_version, spec = CONTROLLERS[kind]
    metadata = {k: copy.deepcopy(v) for k, v in pod.get("metadata", {}).items() if k in ("name", "namespace", "labels")}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec(pod)}


def _fail(path: Path, entry: Any, message: str) -> InputError:
    line = entry.line if isinstance(entry, LineDict) else 0
    return InputError(message, f"{path}:{line}" if line else str(path))


def _parse(path: Path, entry: Any, rules: set[str] | None) -> list[Case]:
    if not isinstance(entry, dict):
        raise _fail(path, entry, "a case must be a mapping with name, expect and object")
    unknown = set(entry) - _CASE_KEYS
    if unknown:
        raise _fail(path, entry, f"unknown case key(s) {sorted(unknown)}; expected some of {sorted(_CASE_KEYS)}")
    name, obj, expect = entry.get("name"), entry.get("object"), entry.get("expect") or {}
    if not isinstance(name, str) or not name:
        raise _fail(path, entry, "case needs a non-empty name")
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise _fail(path, entry, f"case {name!r}: object must be a Kubernetes manifest with a kind")
    if not isinstance(expect, dict) or any(v not in VERDICTS for v in expect.values()):
        raise _fail(path, entry, f"case {name!r}: expect must map rule ids to one of {list(VERDICTS)}")
    if rules is not None and set(expect) - rules:
        raise _fail(path, entry, f"case {name!r}: expect names unknown rule(s) {sorted(set(expect) - rules)}")
    as_of = entry.get("as_of")
    if as_of is not None and not isinstance(as_of, dt.date):
        raise _fail(path, entry, f"case {name!r}: as_of must be a date like 2027-01-31")
    failures = entry.get("known_failures") or {}
    if not isinstance(failures, dict) or not all(isinstance(v, str) and v for v in failures.values()):
        raise _fail(path, entry, f"case {name!r}: known_failures must map backend names to reasons")
    source = f"{path.relative_to(CASES_DIR.parent.parent) if path.is_relative_to(CASES_DIR.parent.parent) else path}:{entry.line}"
    obj = plain(obj)
    common = dict(expect=dict(expect), source=source, as_of=as_of, exemption=entry.get("exemption"), known_failures=dict(failures))
    cases = [Case(name=name, kind=obj["kind"], object=obj, **common)]
    if obj["kind"] == "Pod" and entry.get("controllers", True):
        cases += [Case(name=name, kind=kind, object=wrap(obj, kind), **common) for kind in CONTROLLERS]
    return cases


def load_cases(cases_dir: Path = CASES_DIR, rules: set[str] | None = None) -> list[Case]:
    """Every case under `cases_dir`, with its controller variants; malformed files raise InputError."""
    cases: list[Case] = []
    files = sorted(cases_dir.rglob("*.yaml"))
    if not files:
        raise InputError(f"no case files (*.yaml) under {cases_dir}")
    for path in files:
        documents = load_documents(path)
        if len(documents) != 1 or not isinstance(documents[0], list):
            raise InputError("a case file must hold one YAML list of cases", str(path))
        for entry in documents[0]:
            cases.extend(_parse(path, entry, rules))
    seen = Counter((c.name, c.kind) for c in cases)
    duplicates = sorted({name for (name, _), count in seen.items() if count > 1})
    if duplicates:
        raise InputError(f"case names used twice: {duplicates}", str(cases_dir))
    return cases
