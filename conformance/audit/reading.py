"""Reading audit inputs file by file: manifests, `kubectl get -o yaml|json` dumps, AdmissionReviews, evidence.

A directory is read recursively (*.yaml, *.yml, *.json, and Compose files and Dockerfiles by
name: conformance/audit/docker.py). A file that cannot be read or parsed,
and a document that is not a Kubernetes object, become a Problem with file:line; the run goes
on. `List` and `*List` documents are flattened; a manifest is judged as its creation, an
AdmissionReview as its request (UPDATE, DELETE, subresources: docs/semantics.md). Pods and pod controllers of the right API group are workloads; PolicyReports
and Gatekeeper constraints are evidence (see `evidence`); any other object is skipped and counted.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from compiler import ir
from compiler.passes import POD_TARGETS
from conformance.yamlio import LineDict, YamlProblem, documents, json_documents

from . import evidence
from .docker import DockerInput, compose_input, platform_of, read_dockerfile
from ..adapters import Request
from .model import Problem, Violation, Workload

SUFFIXES = (".yaml", ".yml", ".json")
WORKLOAD_GROUPS = {target.kind: target.group for target in POD_TARGETS.values()}


@dataclass
class Inputs:
    """Everything read from the paths of one run."""

    workloads: list[Workload] = field(default_factory=list)
    evidence: list[Violation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # non-workload kind → objects
    files_read: int = 0
    evidence_documents: int = 0
    foreign_results: int = 0  # evidence about policies that are not kupe rules
    docker: list[DockerInput] = field(default_factory=list)  # Compose files and Dockerfiles, judged by run
    docker_files: Counter[str] = field(default_factory=Counter)  # platform → files read
    docker_violations: list[Violation] = field(default_factory=list)

    def extend(self, other: Inputs) -> None:
        """Append what another reader found (files read in a worker process), keeping the order."""
        self.workloads += other.workloads
        self.evidence += other.evidence
        self.problems += other.problems
        self.notes += other.notes
        self.skipped.update(other.skipped)
        self.files_read += other.files_read
        self.evidence_documents += other.evidence_documents
        self.foreign_results += other.foreign_results
        self.docker += other.docker
        self.docker_files.update(other.docker_files)
        self.docker_violations += other.docker_violations


def files_under(paths: list[Path]) -> Iterator[Path | Problem]:
    """Each file named, and every manifest file under each directory named (not following links to
    directories), in a stable order; what cannot be read as a file is a Problem saying why."""
    for path in paths:
        kind = _kind(path)
        if kind == "directory":
            yield from _walk(path)
        elif kind == "file":
            yield path
        else:
            yield Problem(str(path), kind)


def _kind(path: Path) -> str:
    """`file`, `directory`, or why the path is neither."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "broken symbolic link" if path.is_symlink() else "no such file or directory"
    except OSError as error:
        return "symbolic link loop" if error.errno == errno.ELOOP else f"cannot read: {error.strerror}"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "not a regular file (a FIFO, socket or device)"


def _walk(root: Path) -> Iterator[Path | Problem]:
    found: list[Path | Problem] = []
    for folder, _, names in os.walk(root, onerror=lambda e: found.append(Problem(str(e.filename), f"cannot read: {e.strerror}"))):
        for name in names:
            path = Path(folder, name)
            if path.suffix.lower() in SUFFIXES or platform_of(path):
                kind = _kind(path)
                found.append(path if kind == "file" else Problem(str(path), kind))
    yield from sorted(found, key=lambda entry: str(entry if isinstance(entry, Path) else entry.where))


class _Unusable(Exception):
    """A file that gives no documents at all, with the Problem to report."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(where, message)


def load(path: Path) -> tuple[list[tuple[Any, int]], list[Problem]]:
    """The documents of one YAML or JSON file with their lines, and a Problem for each document
    that could not be loaded."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _Unusable(str(path), f"cannot read: {error}") from None
    loaded: list[tuple[Any, int]] = []
    problems: list[Problem] = []
    for document in (json_documents if path.suffix.lower() == ".json" else documents)(text):
        if isinstance(document, YamlProblem):
            problems.append(Problem(f"{path}:{document.line}", document.message))
        else:
            loaded.append((document, document.line if isinstance(document, LineDict) else 1))
    return loaded, problems


def json_safe(value: Any) -> Any:
    """Plain JSON values for the engines: LineDicts become dicts, YAML dates and timestamps ISO strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _line(value: Any, default: int) -> int:
    return value.line if isinstance(value, LineDict) and value.line else default


def objects(doc: Any, where: str, line: int) -> Iterator[tuple[Request, int] | Problem]:
    """The requests a document holds: the creation of itself or of a List's items, or an AdmissionReview's request."""
    if not isinstance(doc, dict):
        yield Problem(f"{where}:{line}", "not a Kubernetes object (expected a mapping with apiVersion and kind)")
        return
    line = _line(doc, line)
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not isinstance(kind, str) or not kind or not isinstance(api_version, str):
        yield Problem(f"{where}:{line}", "not a Kubernetes object: apiVersion and kind must be strings")
    elif kind == "AdmissionReview":
        found = review_request(doc.get("request"))
        yield Problem(f"{where}:{line}", f"AdmissionReview: {found}") if isinstance(found, str) else (found, _line(found.subject, line))
    elif kind.endswith("List") and "items" in doc:
        items = doc.get("items")
        if not isinstance(items, list):
            yield Problem(f"{where}:{line}", f"{kind}: items must be a list")
            return
        item_kind = kind.removesuffix("List")
        for item in items:
            # The API's typed lists (PodList) leave kind and apiVersion out of their items.
            if isinstance(item, dict) and item_kind and "kind" not in item:
                filled = LineDict(item, kind=item_kind, apiVersion=item.get("apiVersion", api_version))
                filled.line = _line(item, line)
                item = filled
            yield from objects(item, where, _line(item, line))
    else:
        yield Request.create(doc), line


def review_request(request: Any) -> Request | str:
    """The request of an AdmissionReview, or why there is none to judge."""
    if not isinstance(request, dict):
        return "no request"
    operation, subresource = request.get("operation", "CREATE"), request.get("subResource") or ""
    objects = [request.get(key) for key in ("object", "oldObject")]
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT") or not isinstance(subresource, str):
        return f"request.operation {operation!r} or request.subResource {subresource!r} is not a Kubernetes one"
    if any(o is not None and not isinstance(o, dict) for o in objects) or not any(objects):
        return "request.object and request.oldObject must be objects, and one of them set"
    return Request(operation, *objects, subresource)


def is_workload(obj: Mapping[str, Any]) -> bool:
    """A Pod or pod controller of its own API group, or of the `extensions` group that served
    controllers until Kubernetes 1.16 (the decoder refuses the versions no longer served); an
    `example.com` Deployment is not a workload."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return str(obj.get("kind")) in WORKLOAD_GROUPS and group in (WORKLOAD_GROUPS[str(obj.get("kind"))], "extensions")


def read(paths: list[Path], rules: Mapping[str, ir.ResolvedRule]) -> Inputs:
    """Read every file under `paths`; bad files and documents are Problems, never exceptions."""
    inputs = Inputs()
    for entry in files_under(paths):
        if isinstance(entry, Problem):
            inputs.problems.append(entry)
        else:
            inputs.extend(read_file(entry, rules))
    return inputs


def read_file(entry: Path, rules: Mapping[str, ir.ResolvedRule]) -> Inputs:
    """One file's workloads, evidence and problems."""
    inputs = Inputs()
    shown = entry.as_posix()
    platform = platform_of(entry)
    if platform == "dockerfile":
        found = read_dockerfile(entry, shown)
        inputs.files_read += not isinstance(found, Problem)
        inputs.docker_files["dockerfile"] += not isinstance(found, Problem)
        (inputs.problems if isinstance(found, Problem) else inputs.docker).append(found)  # type: ignore[arg-type]
        return inputs
    try:
        loaded, problems = load(entry)
    except _Unusable as unusable:
        inputs.problems.append(unusable.problem)
        return inputs
    inputs.files_read += 1
    inputs.problems += problems
    if not loaded and not problems:
        inputs.notes.append(f"{shown}: holds no documents")
    if platform == "compose":
        inputs.docker_files["compose"] += 1
        for document, line in loaded:
            services = document.get("services") if isinstance(document, dict) else None
            lines = {str(k): _line(v, line) for k, v in services.items()} if isinstance(services, dict) else {}
            found = compose_input(json_safe(document), shown, line, lines)
            (inputs.problems if isinstance(found, Problem) else inputs.docker).append(found)  # type: ignore[arg-type]
        return inputs
    for document, line in loaded:
        for found in objects(document, shown, line):
            if isinstance(found, Problem):
                inputs.problems.append(found)
                continue
            request, line = found
            obj = request.subject
            if is_workload(obj):
                inputs.workloads.append(Workload(request, shown, line))  # decoding gives the engines its JSON form
            elif evidence.is_evidence(obj):
                inputs.evidence_documents += 1
                found_evidence = evidence.read(obj, shown, line, rules)
                inputs.evidence += found_evidence.violations
                inputs.problems += found_evidence.problems
                inputs.notes += found_evidence.notes
                inputs.foreign_results += found_evidence.foreign
            else:
                inputs.skipped[str(obj["kind"])] += 1
    return inputs
