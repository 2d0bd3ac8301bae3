"""What an audit finds: workloads read from files, violations, engine disagreements and input problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..adapters import Request


@dataclass(frozen=True)
class Problem:
    """An input that could not be used (a file, a document, a report entry); the run goes on."""

    where: str  # file or file:line
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Workload:
    """A Pod or pod controller read from a file (a manifest is the request of its creation; an
    AdmissionReview is its own request), with the line its document starts on."""

    request: Request
    file: str
    line: int

    @property
    def obj(self) -> dict[str, Any]:
        return self.request.subject

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def namespace(self) -> str:
        """The namespace the request is in (`default` when a manifest names none, as kubectl would)."""
        return self.request.namespace

    @property
    def name(self) -> str:
        metadata = self.obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def identity(self) -> Workload:
        """Only what reports show (kind, namespace, name, file:line): cheap to send back from a worker."""
        metadata = self.obj.get("metadata") if isinstance(self.obj.get("metadata"), dict) else {}
        slim = {"apiVersion": self.obj.get("apiVersion"), "kind": self.obj.get("kind"),
                "metadata": {k: metadata[k] for k in ("name", "namespace") if k in metadata}}
        return Workload(Request.create(slim), self.file, self.line)


@dataclass(frozen=True)
class Violation:
    """A rule an object violates, by an engine's verdict on a manifest or by cluster evidence."""

    rule: str
    verdict: str  # deny (blocks admission) | audit (reported only)
    kind: str
    namespace: str
    name: str
    file: str
    line: int
    source: str  # the backend(s) that evaluated a manifest, or the evidence (e.g. "kyverno report")
    message: str = ""
    subject: str = ""  # "container app", "volume sock", "pod spec"; "" when not known (evidence)
    field: str = ""  # the full path of the failing field in the object
    value: str = ""  # the value found there (JSON), or "unset"
    fix: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def workload(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Disagreement:
    """Backends that judged the same object differently (engine drift): backend → verdicts or error."""

    workload: Workload
    verdicts: dict[str, dict[str, str] | str]
