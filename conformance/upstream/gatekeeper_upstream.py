"""Run gatekeeper-library's gator ``suite.yaml`` files through the Gatekeeper emulator.

Each case is judged the way ``gator verify`` judges it: the object (or the AdmissionReview's
request) is reviewed against the suite's template and constraint with the case's inventory, and
every assertion counts the violations whose message matches its regex (all of them when it has
no message): ``yes`` wants at least one, ``no`` none, an integer exactly that many.

``engine="cel"`` runs the same suites through the emulator's K8sNativeValidation engine, for the
templates that carry such an entry (the others are skipped: gator has nothing to run in CEL).
Each run is checked against the upstream index (`expected.json`): a suite case the index lists
that was not run counts as a disagreement.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from conformance.engines.gatekeeper import GATOR_POINT, ConstraintTemplateEngine, Violation
from conformance.engines.gatekeeper.cel_program import CEL_ENGINE

from . import Outcome, Suite

_ADMISSION_GROUP = "admission.k8s.io"
LIBRARY = "gatekeeper-library"


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


def run_suite(suite_path: Path, engine: str = "rego") -> list[Outcome]:
    """Every non-skipped case of one ``suite.yaml`` (with ``engine="cel"``, of its tests whose template has CEL)."""
    suite_dir, name = suite_path.parent, suite_path.parent.name
    suite = _load_one(suite_path)
    if suite.get("skip"):
        return []
    outcomes: list[Outcome] = []
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
            outcomes += [Outcome(f"{name}/{test['name']}/{c['name']}", False, f"setup: {type(err).__name__}: {err}", "")
                         for c in cases]
            continue
        for case in cases:
            outcomes.append(_run_case(name, test["name"], case, suite_dir, template_engine, constraint))
    return outcomes


def _run_case(
    suite: str, test: str, case: Mapping[str, Any], suite_dir: Path,
    engine: ConstraintTemplateEngine, constraint: dict,
) -> Outcome:
    key = f"{suite}/{test}/{case['name']}"
    try:
        assertions = case.get("assertions") or []
        if not assertions:
            raise ValueError("assertions must be non-empty")
        obj = _load_one(suite_dir / case["object"])
        inventory = [d for p in case.get("inventory") or [] for d in _load_docs(suite_dir / p)]
        operation = str((obj.get("request") or {}).get("operation", "")) if obj.get("kind") == "AdmissionReview" else ""
        violations = _review_case(engine, constraint, obj, inventory)
    except Exception as err:  # gator reports the case as errored, so it cannot pass
        return Outcome(key, False, f"error: {type(err).__name__}: {err}", "")
    failures = [f for a in assertions if (f := check_assertion(a, violations))]
    if failures:
        messages = [v.msg for v in violations]
        return Outcome(key, False, f"{'; '.join(failures)}; messages {messages}", operation)
    return Outcome(key, True, operation=operation)


def _indexed(upstream: Path, engine: str) -> int | None:
    """How many suite cases the upstream index lists for this engine (None without an index)."""
    index = upstream / "expected.json"
    if not index.is_file():
        return None
    records = [r for r in json.loads(index.read_text()) if r["test_format"] == "gator-suite"]
    if engine == "cel":
        records = [r for r in records if has_cel(_load_one(upstream / r["policy_file"]))]
    return len(records)


def run_all(upstream: Path, engine: str = "rego") -> list[Outcome]:
    """Every case of every ``<template>/suite.yaml``, in a stable order, and every indexed case accounted for."""
    outcomes = [o for suite in sorted((upstream / LIBRARY).glob("*/suite.yaml")) for o in run_suite(suite, engine)]
    indexed = _indexed(upstream, engine)
    if indexed is not None and indexed != len(outcomes):
        outcomes.append(Outcome(f"{LIBRARY} index", False, f"the index lists {indexed} cases, {len(outcomes)} were run"))
    return outcomes


SUITES = (
    Suite("gatekeeper", "Gatekeeper, Rego engine", "every gatekeeper-library `suite.yaml`",
          lambda upstream: run_all(upstream, "rego")),
    Suite("gatekeeper-cel", "Gatekeeper, CEL engine",
          "the gatekeeper-library suites of the templates with a K8sNativeValidation block",
          lambda upstream: run_all(upstream, "cel")),
)
