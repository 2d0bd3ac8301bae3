"""StrictSchema: jsonschema-rs decides, python-jsonschema explains; both must read the schemas alike."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from compiler.backends import kyverno, vap
from compiler.render import parse_yaml

OUT = Path(__file__).resolve().parent.parent / "out"


def _documents(folder: str, kind: str) -> list[dict]:
    return [d for f in sorted((OUT / folder).rglob("*.yaml")) for d in parse_yaml(f.read_text()) if d.get("kind") == kind]


CASES = [
    ("ClusterPolicy", lambda: kyverno._validator("clusterpolicy"), "kyverno"),
    ("ValidatingAdmissionPolicy", lambda: vap._schema_validator("ValidatingAdmissionPolicy"), "vap"),  # $refs into _definitions.json
]


@pytest.mark.parametrize("kind,schema,folder", CASES, ids=[c[0] for c in CASES])
def test_both_validators_accept_the_committed_artifacts_and_refuse_the_same_mistakes(kind: str, schema, folder: str) -> None:
    strict = schema()
    documents = _documents(folder, kind)
    assert documents
    for document in documents:
        assert strict.error(document) is None
        assert strict.explainer.is_valid(document)
        unknown = copy.deepcopy(document)
        unknown["spec"]["bogus"] = True
        assert strict.error(unknown) == ("spec", "Additional properties are not allowed ('bogus' was unexpected)")
        assert not strict.fast.is_valid(unknown)
        mistyped = copy.deepcopy(document)
        mistyped["spec"]["failurePolicy"] = 1
        field, reason = strict.error(mistyped) or ("", "")
        assert field == "spec/failurePolicy" and "1" in reason
