"""The conformance suite's creations through a real `gator test`, when gator is installed.

Why: the Gatekeeper backends are judged here by an emulator on rego-cpp and on the CEL C++
runtime, and an emulator can agree with the compiler and still be wrong (rego-cpp and OPA differ:
docs/engine-notes.md). gator is Gatekeeper's own evaluation, OPA and cel-go included. It judges
objects as written, one `gator test` per batch of objects, so only creations can be asked: each
case whose request is a creation the API server decodes, given to gator decoded, in the request's
namespace, in both of gator's modes (a template's CEL block, its default, and its Rego).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compiler import pipeline

from .adapters import admitted
from .adapters.gatekeeper import VERDICTS
from .suite import Case

# gator's mode → its flags, and the backend whose known failures (a case's `known_failures`) it shares
MODES = {"CEL": ((), "gatekeeper-cel"), "Rego": (("--enable-k8s-native-validation=false",), "gatekeeper")}
Identity = tuple[str, str, str, str]  # apiVersion, kind, namespace, name: how gator names an object


@dataclass(frozen=True)
class Mismatch:
    case: Case
    mode: str
    expected: dict[str, str]
    gator: dict[str, str]

    def __str__(self) -> str:
        return f"{self.case.source} {self.case.name} (gator, {self.mode}): expected {self.expected}, gator gives {self.gator}"


class GatorError(Exception):
    """gator did not judge (not installed, a template it refuses, output that is not its JSON)."""


def binary() -> str:
    found = shutil.which("gator")
    if found is None:
        raise GatorError("gator is not on PATH (Gatekeeper's CLI: https://open-policy-agent.github.io/gatekeeper/website/docs/gator)")
    return found


def creations(cases: Iterable[Case]) -> list[tuple[Case, dict[str, Any]]]:
    """The cases gator can be asked about, each with the object as the API server hands it on."""
    found = []
    for case in cases:
        request, refusal = admitted(case.request)
        if request.operation != "CREATE" or request.subresource or refusal is not None or case.error is not None:
            continue
        obj = json.loads(json.dumps(request.object))  # a copy to write
        metadata = obj.setdefault("metadata", {})
        if request.namespace and not metadata.get("namespace"):
            metadata["namespace"] = request.namespace  # the API server sets a missing or empty one from the request
        found.append((case, obj))
    return found


def _identity(obj: dict[str, Any]) -> Identity:
    metadata = obj.get("metadata") or {}
    return str(obj.get("apiVersion")), str(obj.get("kind")), str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _batches(found: list[tuple[Case, dict[str, Any]]]) -> list[dict[Identity, tuple[Case, dict[str, Any]]]]:
    """Groups in which no two objects share a name (gator reports violations by name)."""
    batches: list[dict[Identity, tuple[Case, dict[str, Any]]]] = []
    for case, obj in found:
        batch = next((b for b in batches if _identity(obj) not in b), None)
        if batch is None:
            batch = {}
            batches.append(batch)
        batch[_identity(obj)] = (case, obj)
    return batches


def verdicts(output: str) -> dict[Identity, dict[str, str]]:
    """Object → rule → verdict from `gator test -o json` (null when nothing is violated)."""
    try:
        results = json.loads(output) or []
    except ValueError:
        raise GatorError(f"gator wrote no JSON: {output[:200]!r}") from None
    found: dict[Identity, dict[str, str]] = {}
    for result in results:
        rule = result["constraint"]["metadata"]["labels"]["policy.kupe.cloud/rule"]
        found.setdefault(_identity(result["violatingObject"]), {})[rule] = VERDICTS[result["enforcementAction"]]
    return found


def cross_check(cases: list[Case], policies_dir: Path, default_as_of: dt.date) -> tuple[int, list[Mismatch]]:
    """(creations asked, where gator's verdicts differ from the cases' but for their known failures of
    the same backend), each as-of date compiled once."""
    gator = binary()
    found = creations(cases)
    mismatches: list[Mismatch] = []
    by_date: dict[dt.date, list[tuple[Case, dict[str, Any]]]] = {}
    for case, obj in found:
        by_date.setdefault(case.as_of or default_as_of, []).append((case, obj))
    with tempfile.TemporaryDirectory(prefix="kupe-gator-") as folder:
        for as_of, dated in sorted(by_date.items()):
            artifacts = Path(folder, f"gatekeeper-{as_of}")
            program, _ = pipeline.build_program(policies_dir, as_of)
            for path, text in pipeline.compile_backends(program, ["gatekeeper"]).items():
                Path(artifacts, path).parent.mkdir(parents=True, exist_ok=True)
                Path(artifacts, path).write_text(text, encoding="utf-8")
            for batch in _batches(dated):
                objects = Path(folder, "objects.yaml")
                objects.write_text(yaml.safe_dump_all([obj for _, obj in batch.values()]), encoding="utf-8")
                for mode, (flags, backend) in MODES.items():
                    process = subprocess.run([gator, "test", *flags, "-f", str(artifacts / "gatekeeper"), "-f", str(objects),
                                              "-o", "json"], capture_output=True, text=True, check=False)
                    if process.returncode not in (0, 1) or not process.stdout.strip():
                        raise GatorError(f"gator test failed ({process.returncode}): {process.stderr[-2000:]}")
                    judged = verdicts(process.stdout)
                    mismatches += [Mismatch(case, mode, dict(case.expect), judged.get(identity, {}))
                                   for identity, (case, _) in batch.items()
                                   if judged.get(identity, {}) != case.expect and backend not in case.known_failures]
    return len(found), mismatches
