"""The conformance cases: admission requests with the verdict every rule must give them.

A case file under conformance/cases/ is a YAML list of cases:

    - name: run-as-non-root/container-false-overrides-pod
      expect: {run-as-non-root: deny}     # rules not listed must pass
      object: {apiVersion: v1, kind: Pod, ...}   # the manifest, or:
      base: compliant-pod                 #   a manifest of conformance/bases.yaml, edited by
      set: {spec.containers.0.securityContext.runAsNonRoot: false}   # path: value (`-` appends to a list)
      unset: [spec.securityContext.runAsNonRoot]
      operation: UPDATE                   # default CREATE; DELETE deletes the object
      subresource: ephemeralcontainers    # optional: the request is on this subresource
      old: {set: {...}, unset: [...]}     # UPDATE: the old object is the object with these edits
      rejected: 'containers[0].securityContext.runAsNonRoot: expected a boolean'   # the API server's
                                          #   decoder refuses the object (engines still judge it raw)
      error: not JSON                     # no engine can judge the raw object either: each must say so
      exemption: system-namespaces        # optional: the exemption that makes listed-as-pass rules pass
      as_of: 2027-02-15                   # optional: compile date (exemption expiry cases)
      controllers: true                   # default: a Pod case is also run wrapped in every pod controller
      known_failures: {kyverno: "why"}    # optional: a backend that cannot pass this yet, with the reason

Paths are dotted; a key holding dots is written in brackets (`metadata.labels[app.kubernetes.io/name]`).
Verdicts: `pass`, `deny` (a required rule blocks), `audit` (a recommended rule reports).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from compiler.errors import InputError

from .adapters import Request
from .yamlio import LineDict, load_documents, plain

VERDICTS = ("pass", "deny", "audit")
OPERATIONS = ("CREATE", "UPDATE", "DELETE")
CASES_DIR = Path(__file__).resolve().parent / "cases"
BASES = Path(__file__).resolve().parent / "bases.yaml"
_CASE_KEYS = {"name", "description", "expect", "exemption", "as_of", "controllers", "known_failures", "object",
              "base", "set", "unset", "operation", "subresource", "old", "rejected", "error"}
_PATH_PART = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    request: Request  # as written: the harness decodes it as the API server would
    expect: dict[str, str]  # rule id → verdict; rules not listed pass
    source: str  # file:line
    as_of: dt.date | None = None
    exemption: str | None = None
    known_failures: dict[str, str] = field(default_factory=dict)
    rejected: str | None = None  # part of the decoder's refusal, when the API server refuses the object
    error: str | None = None  # part of the message with which every engine refuses to judge the raw object

    @property
    def object(self) -> dict[str, Any]:
        """The object the request is about (the deleted one on a DELETE)."""
        return self.request.subject

    def expected(self, rule: str) -> str:
        return "error" if self.error is not None else self.expect.get(rule, "pass")


def parse_path(text: str) -> list[str]:
    """`spec.containers.0.name` → its keys; `[a.b]` is one key holding dots."""
    parts = [bracketed or plain_part for bracketed, plain_part in _PATH_PART.findall(text)]
    if not parts:
        raise ValueError(f"{text!r} is not a path")
    return parts


def edit(obj: dict[str, Any], sets: dict[str, Any], unsets: list[str]) -> dict[str, Any]:
    """A copy of `obj` with `sets` written (missing parents created; `-` appends) and `unsets` removed."""
    result = copy.deepcopy(obj)
    for text in unsets:
        *parents, last = parse_path(text)
        node = _walk(result, parents, text, create=False)
        if isinstance(node, list):
            del node[int(last)]
        elif isinstance(node, dict) and last in node:
            del node[last]
        else:
            raise ValueError(f"unset {text}: no such field")
    for text, value in sets.items():
        *parents, last = parse_path(text)
        node = _walk(result, parents, text, create=True)
        if isinstance(node, list):
            if last == "-":
                node.append(copy.deepcopy(value))
            else:
                node[int(last)] = copy.deepcopy(value)
        elif isinstance(node, dict):
            node[last] = copy.deepcopy(value)
        else:
            raise ValueError(f"set {text}: {'.'.join(parents)} is not a mapping or a list")
    return result


def _walk(node: Any, parts: list[str], text: str, *, create: bool) -> Any:
    for part in parts:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"{text}: no item {part}")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                if not create:
                    raise ValueError(f"{text}: no field {part}")
                node[part] = {}
            node = node[part]
        else:
            raise ValueError(f"{text}: {part} is under a value that is not a mapping or a list")
    return node


@cache
def bases() -> dict[str, dict[str, Any]]:
    """The named manifests cases start from (conformance/bases.yaml)."""
    documents = load_documents(BASES)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise InputError("bases.yaml must hold one mapping of names to manifests", str(BASES))
    return {name: plain(manifest) for name, manifest in documents[0].items()}


# Where each controller keeps its pod template (metadata and spec).
def _labels(pod: dict[str, Any]) -> Any:
    metadata = pod.get("metadata")
    return copy.deepcopy(metadata.get("labels")) if isinstance(metadata, dict) else None


def _template(pod: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": _labels(pod) or {}}, "spec": copy.deepcopy(pod.get("spec", {}))}


def _selector(pod: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(pod)
    return {"matchLabels": labels if isinstance(labels, dict) and labels else {"app": "case"}}


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
    kept = ("name", "namespace", "labels", "annotations", "finalizers")
    metadata = pod.get("metadata")
    if isinstance(metadata, dict):  # else (malformed on purpose) the controller carries it as it is
        metadata = {k: copy.deepcopy(v) for k, v in metadata.items() if k in kept}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec(pod)}


def _fail(path: Path, entry: Any, message: str) -> InputError:
    line = entry.line if isinstance(entry, LineDict) else 0
    return InputError(message, f"{path}:{line}" if line else str(path))


def _object(path: Path, entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The case's manifest: `object`, or `base` with `set` and `unset` applied."""
    if ("object" in entry) == ("base" in entry):
        raise _fail(path, entry, f"case {name!r}: give either object or base")
    if "object" in entry:
        if "set" in entry or "unset" in entry:
            raise _fail(path, entry, f"case {name!r}: set and unset edit a base, not an object")
        obj = plain(entry["object"])
    else:
        if entry["base"] not in bases():
            raise _fail(path, entry, f"case {name!r}: unknown base {entry['base']!r}; known: {sorted(bases())}")
        obj = _edited(path, entry, name, bases()[entry["base"]], entry)
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise _fail(path, entry, f"case {name!r}: object must be a Kubernetes manifest with a kind")
    return obj


def _edited(path: Path, entry: Any, name: str, obj: dict[str, Any], edits: Any) -> dict[str, Any]:
    if not isinstance(edits, dict) or set(edits) - {"set", "unset", "base"} - set(_CASE_KEYS):
        raise _fail(path, entry, f"case {name!r}: edits are {{set: {{path: value}}, unset: [path]}}")
    sets, unsets = plain(edits.get("set") or {}), plain(edits.get("unset") or [])
    if not isinstance(sets, dict) or not isinstance(unsets, list):
        raise _fail(path, entry, f"case {name!r}: set must map paths to values, unset must list paths")
    try:
        return edit(obj, sets, unsets)
    except ValueError as error:
        raise _fail(path, entry, f"case {name!r}: {error}") from None


def _request(path: Path, entry: dict[str, Any], name: str, obj: dict[str, Any]) -> Request:
    operation = entry.get("operation", "CREATE")
    subresource = entry.get("subresource", "")
    if operation not in OPERATIONS or not isinstance(subresource, str):
        raise _fail(path, entry, f"case {name!r}: operation must be one of {list(OPERATIONS)}, subresource a string")
    if ("old" in entry) != (operation == "UPDATE"):
        raise _fail(path, entry, f"case {name!r}: an UPDATE, and only an UPDATE, gives `old` (edits to the object)")
    if operation == "DELETE":
        return Request("DELETE", None, obj, subresource)
    old = _edited(path, entry, name, obj, entry["old"]) if operation == "UPDATE" else None
    return Request(operation, obj, old, subresource)


def _wrap(request: Request, kind: str) -> Request:
    return Request(request.operation, *(None if o is None else wrap(o, kind) for o in (request.object, request.old_object)),
                   request.subresource)


def _parse(path: Path, entry: Any, rules: set[str] | None) -> list[Case]:
    if not isinstance(entry, dict):
        raise _fail(path, entry, "a case must be a mapping with name, expect and object")
    unknown = set(entry) - _CASE_KEYS
    if unknown:
        raise _fail(path, entry, f"unknown case key(s) {sorted(unknown)}; expected some of {sorted(_CASE_KEYS)}")
    name, expect = entry.get("name"), entry.get("expect") or {}
    if not isinstance(name, str) or not name:
        raise _fail(path, entry, "case needs a non-empty name")
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
    rejected, error = entry.get("rejected"), entry.get("error")
    if any(text is not None and not (isinstance(text, str) and text) for text in (rejected, error)):
        raise _fail(path, entry, f"case {name!r}: rejected and error must be a part of the decoder's or the engines' message")
    if error is not None and (rejected is None or expect):
        raise _fail(path, entry, f"case {name!r}: a case no engine can judge is refused by the decoder too, and expects no verdict")
    obj = _object(path, entry, name)
    request = _request(path, entry, name, obj)
    source = f"{path.relative_to(CASES_DIR.parent.parent) if path.is_relative_to(CASES_DIR.parent.parent) else path}:{entry.line}"
    common = dict(expect=dict(expect), source=source, as_of=as_of, exemption=entry.get("exemption"),
                  known_failures=dict(failures), rejected=rejected, error=error)
    cases = [Case(name=name, kind=obj["kind"], request=request, **common)]
    if obj["kind"] == "Pod" and entry.get("controllers", request.subresource != "ephemeralcontainers"):
        cases += [Case(name=name, kind=kind, request=_wrap(request, kind), **common) for kind in CONTROLLERS]
    return cases


def load_cases(cases_dir: Path = CASES_DIR, rules: set[str] | None = None) -> list[Case]:
    """Every case under `cases_dir`, with its controller variants; malformed files raise InputError."""
    cases: list[Case] = []
    files = sorted(p for p in cases_dir.rglob("*.yaml"))
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
