"""What an audit finds: workloads read from files, violations, engine disagreements and input problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """An input that could not be used (a file, a document, a report entry); the run goes on."""

    where: str  # file or file:line
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Workload:
    """A Pod or pod controller read from a file, with the line its object starts on."""

    obj: dict[str, Any]
    file: str
    line: int

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def namespace(self) -> str:
        """The namespace kubectl would create it in (`default` when the manifest names none)."""
        metadata = self.obj.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        return namespace if isinstance(namespace, str) and namespace else "default"

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
        return Workload(slim, self.file, self.line)


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
