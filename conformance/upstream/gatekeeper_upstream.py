"""Run gatekeeper-library's gator ``suite.yaml`` files through the Gatekeeper emulator.

Each case is judged the way ``gator verify`` judges it: the object (or the AdmissionReview's
request) is reviewed against the suite's template and constraint with the case's inventory, and
every assertion counts the violations whose message matches its regex (all of them when it has
no message): ``yes`` wants at least one, ``no`` none, an integer exactly that many.

``engine="cel"`` runs the same suites through the emulator's K8sNativeValidation engine, for the
templates that carry such an entry (the others are skipped: gator has nothing to run in CEL).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from conformance.engines.gatekeeper import GATOR_POINT, ConstraintTemplateEngine, Violation
from conformance.engines.gatekeeper.cel_program import CEL_ENGINE

__all__ = [
    "CaseOutcome",
    "check_assertion",
    "default_root",
    "load_known_gaps",
    "run_all",
    "run_suite",
]

_ADMISSION_GROUP = "admission.k8s.io"


@dataclass(frozen=True)
class CaseOutcome:
    """One suite case: whether the emulator agrees with the suite's assertions, and why not."""

    suite: str
    test: str
    case: str
    agree: bool
    detail: str = ""
    operation: str = ""  # the AdmissionReview's (UPDATE samples); "" for a bare object

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.test}/{self.case}"


def default_root(repo_root: Path) -> Path:
    """Where the shared upstream fixtures live: beside the repository, in ``shared/upstream``."""
    return repo_root.parent / "shared" / "upstream" / "gatekeeper-library"


def _load_docs(path: Path) -> list[dict]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _load_one(path: Path) -> dict:
    docs = _load_docs(path)
    if len(docs) != 1:
        raise ValueError(f"{path} defines {len(docs)} objects, gator wants exactly 1")
    return docs[0]


def _violations_spec(assertion: Mapping[str, Any]) -> int | str:
    """The assertion's ``violations`` (default ``yes``); YAML 1.1 reads bare yes/no as booleans."""
    value = assertion.get("violations", "yes")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        if value < 0:
            raise ValueError("assertion violations must be a nonnegative integer, yes or no")
        return value
    if value not in ("yes", "no"):
        raise ValueError(f"assertion violations must be a nonnegative integer, yes or no: {value!r}")
    return value


def check_assertion(assertion: Mapping[str, Any], violations: Sequence[Violation]) -> str | None:
    """None when the assertion holds for these violations, else what gator would report."""
    pattern = assertion.get("message")
    regex = re.compile(pattern) if pattern is not None else None
    matching = sum(1 for v in violations if regex is None or regex.search(v.msg))
    want = _violations_spec(assertion)
    about = f" matching {pattern!r}" if pattern is not None else ""
    if want == "yes" and matching == 0:
        return f"got 0 violations{about}, want at least 1"
    if want == "no" and matching > 0:
        return f"got {matching} violations{about}, want none"
    if isinstance(want, int) and matching != want:
        return f"got {matching} violations{about}, want exactly {want}"
    return None


def _review_case(
    engine: ConstraintTemplateEngine, constraint: dict, obj: dict, inventory: list[dict]
) -> list[Violation]:
    """Review as gator does: an AdmissionReview's request as-is, a bare object with no operation."""
    api_group = (obj.get("apiVersion") or "").partition("/")[0]
    if obj.get("kind") == "AdmissionReview" and api_group == _ADMISSION_GROUP:
        request = obj.get("request")
        if not request:
            raise ValueError("AdmissionReview without a request")
        return engine.review_request(
            constraint, request, inventory=inventory, enforcement_point=GATOR_POINT
        )
    return engine.review(constraint, obj, operation="", inventory=inventory, enforcement_point=GATOR_POINT)


def has_cel(template: Mapping[str, Any]) -> bool:
    """Whether the template's target carries a K8sNativeValidation code entry."""
    targets = (template.get("spec") or {}).get("targets") or []
    return any(code.get("engine") == CEL_ENGINE for target in targets for code in target.get("code") or [])


def run_suite(suite_path: Path, engine: str = "rego") -> list[CaseOutcome]:
    """Every non-skipped case of one ``suite.yaml`` (with ``engine="cel"``, of its tests whose template has CEL)."""
    suite_dir, name = suite_path.parent, suite_path.parent.name
    suite = _load_one(suite_path)
    if suite.get("skip"):
        return []
    outcomes: list[CaseOutcome] = []
    for test in suite.get("tests") or []:
        if test.get("skip"):
            continue
        cases = [c for c in test.get("cases") or [] if not c.get("skip")]
        if engine == "cel" and not has_cel(_load_one(suite_dir / test["template"])):
            continue
        try:
            if test.get("invalid"):
                raise NotImplementedError("`invalid` tests need constraint schema validation")
            template_engine = ConstraintTemplateEngine(_load_one(suite_dir / test["template"]), engine=engine)
            constraint = _load_one(suite_dir / test["constraint"])
        except Exception as err:  # gator fails every case of a test whose setup fails
            outcomes += [
                CaseOutcome(name, test["name"], c["name"], False, f"setup: {type(err).__name__}: {err}")
                for c in cases
            ]
            continue
        for case in cases:
            outcomes.append(_run_case(name, test["name"], case, suite_dir, template_engine, constraint))
    return outcomes


def _run_case(
    suite: str, test: str, case: Mapping[str, Any], suite_dir: Path,
    engine: ConstraintTemplateEngine, constraint: dict,
) -> CaseOutcome:
    try:
        assertions = case.get("assertions") or []
        if not assertions:
            raise ValueError("assertions must be non-empty")
        obj = _load_one(suite_dir / case["object"])
        inventory = [d for p in case.get("inventory") or [] for d in _load_docs(suite_dir / p)]
        operation = str((obj.get("request") or {}).get("operation", "")) if obj.get("kind") == "AdmissionReview" else ""
        violations = _review_case(engine, constraint, obj, inventory)
    except Exception as err:  # gator reports the case as errored, so it cannot pass
        return CaseOutcome(suite, test, case["name"], False, f"error: {type(err).__name__}: {err}")
    failures = [f for a in assertions if (f := check_assertion(a, violations))]
    if failures:
        messages = [v.msg for v in violations]
        return CaseOutcome(suite, test, case["name"], False, f"{'; '.join(failures)}; messages {messages}", operation)
    return CaseOutcome(suite, test, case["name"], True, operation=operation)


def run_all(root: Path, engine: str = "rego") -> list[CaseOutcome]:
    """Every case of every ``<template>/suite.yaml`` under ``root``, in a stable order."""
    return [o for suite in sorted(root.glob("*/suite.yaml")) for o in run_suite(suite, engine)]


def load_known_gaps(path: Path, section: str = "gaps") -> dict[str, str]:
    """``{case key: reason}`` from one section of the known-gaps YAML (``gaps``: Rego, ``cel_gaps``:
    CEL); every gap must carry a reason."""
    doc = yaml.safe_load(path.read_text()) or {}
    gaps: dict[str, str] = {}
    for entry in doc.get(section) or []:
        if not entry.get("reason"):
            raise ValueError(f"known gap {entry.get('case')!r} has no reason")
        gaps[entry["case"]] = entry["reason"]
    return gaps
