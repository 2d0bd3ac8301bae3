"""Kubernetes ValidatingAdmissionPolicy backend: per rule one policy and one binding, plus a kustomization.

Output (under out/): `vap/<rule>.yaml` holding an `admissionregistration.k8s.io/v1`
ValidatingAdmissionPolicy and its ValidatingAdmissionPolicyBinding, and `vap/kustomization.yaml`.

Matching: VAP has no autogen, so `matchConstraints.resourceRules` name Pods and every pod
controller of `ResolvedRule.targets` with its API group (all versions, CREATE and UPDATE), with
`matchPolicy: Exact` because an object of another API group is no workload (docs/semantics.md);
the CEL (compiler.lang.cel) finds the pod spec per kind. The subresources that add containers
(`pods/ephemeralcontainers`, `kubectl debug`) are listed beside their resource: a rule for
`pods` alone never sees them. DELETE and other subresources are not matched (never judged), and
an UPDATE is judged on its new violations only (the CEL compares `object` with `oldObject`). `failurePolicy: Fail`: an expression
that errors is a failure, never a silent pass. Required rules bind with `[Deny]`, recommended
rules with `[Audit, Warn]`; a recommended rule staged in some namespaces (`enforced_in`) gets a
second binding, `[Deny]` in those namespaces only. Violation messages come from `messageExpression` and name the
failing containers (or volumes).

Exemptions, each expressed where it is exact:
- a waiver of whole namespaces (`Placement.NAMESPACES`) excludes them natively with
  `matchConstraints.namespaceSelector` on the `kubernetes.io/metadata.name` label, which the API
  server sets on every Namespace, so it is the request namespace;
- any other waiver that covers the whole object (namespace / name / label criteria, no
  containers) is a `matchCondition` that is false for what it selects: the policy is skipped;
- waivers scoped to containers and widenings of list parameters cannot be matchConditions (they
  apply per container), so they are CEL constants inside the validations, with one
  `variables.selected_<exemption>` per exemption for its object-level criteria. Constants rather
  than a params resource: exemptions are fixed at compile time (expired ones are dropped then),
  a params object would need its own kind, a `paramRef` and `parameterNotFoundAction` handling,
  and each policy stays self-contained and reviewable.

Parse-back: every file must parse as YAML; every object must validate in strict mode (unknown
fields rejected) against the Kubernetes 1.30 OpenAPI schema, the first release with
admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, via `kubernetes-validate`; every CEL
expression must compile with the CEL C++ runtime (cel-expr-python) declaring only what the API
server gives (`object`, `oldObject`, `request`, `namespaceObject`, `variables`, the strings and
optional extensions; no `variables` in matchConditions).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any


from .. import ir
from ..names import RULE_LABEL, WAIVER_CONDITION, admission_policy
from ..errors import ArtifactError
from ..lang.cel import CelLowering, compile_error
from ..render import Safe, render, rule_context
from ..schemas import StrictSchema, kubernetes_schema
from . import Backend, check_kustomizations, check_schema, documents

KUBERNETES_VERSION = "1.30"
API_VERSION = "admissionregistration.k8s.io/v1"
_VALIDATION_ACTIONS = {ir.Level.REQUIRED: ["Deny"], ir.Level.RECOMMENDED: ["Audit", "Warn"]}
_MAX_MATCH_CONDITIONS = 64
_QUALIFIED_NAME = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_CEL_IDENTIFIER = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


class VapBackend(Backend):
    name = "vap"
    title = "Kubernetes ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1)"

    def rule_files(self, rule: ir.ResolvedRule, program: ir.Program) -> dict[str, str]:
        return {f"vap/{rule.id}.yaml": self._rule_file(rule)}

    def parse_back(self, files: dict[str, str]) -> None:
        parse_back(files)

    def _rule_file(self, rule: ir.ResolvedRule) -> str:
        whole_namespaces = rule.placed(ir.Placement.NAMESPACES)
        whole_objects = rule.placed(ir.Placement.OBJECTS)
        per_container = rule.placed(ir.Placement.CONTAINERS)
        lowering = CelLowering(rule, self.name, inline_waivers=per_container)
        variables, validations = lowering.lower_rule().template_context()
        return render(
            "vap/rule.yaml.j2",
            **rule_context(rule),
            name=admission_policy(rule.id),
            rule_label=RULE_LABEL,
            bindings=_bindings(rule),
            resource_rules=[{"apiGroups": [t.group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                             "resources": [t.resource, *(f"{t.resource}/{s}" for s in t.subresources)]} for t in rule.targets],
            excluded_namespaces={
                "ids": ", ".join(e.id for e in whole_namespaces),
                "values": sorted({ns for e in whole_namespaces for ns in e.namespaces}),
            },
            match_conditions=[{
                "name": WAIVER_CONDITION + e.id,
                "comment": f"waiver {e.id} ({e.loc}): {e.reason}",
                "expression": Safe(f"!({lowering.selects_object(e)})"),
            } for e in whole_objects],
            variables=variables,
            validations=validations,
        )


def _bindings(rule: ir.ResolvedRule) -> list[dict[str, Any]]:
    """One binding by level; a staged rule (`enforced_in`) also denies in its stage namespaces.

    The stage is split on the `kubernetes.io/metadata.name` namespace label: `[Deny]` in the
    stage, `[Audit, Warn]` everywhere else, so each request is judged by exactly one binding.
    """
    name = admission_policy(rule.id)
    if not rule.enforced_in:
        return [{"name": name, "actions": _VALIDATION_ACTIONS[rule.level], "stage": None}]
    stage = sorted(rule.enforced_in)
    return [
        {"name": name, "actions": _VALIDATION_ACTIONS[rule.level], "stage": {"operator": "NotIn", "values": stage}},
        {"name": f"{name}-enforced", "actions": _VALIDATION_ACTIONS[ir.Level.REQUIRED],
         "stage": {"operator": "In", "values": stage}},
    ]


# --- parse-back -------------------------------------------------------------------------------


def _compile_cel(variables: tuple[str, ...], path: str, where: str, expression: str) -> None:
    error = compile_error(variables, expression)
    if error is not None:
        raise ArtifactError(f"{path}: {where}: CEL does not compile: {error}")


def _check_policy(path: str, policy: dict[str, Any], with_variables: tuple[str, ...], without_variables: tuple[str, ...]) -> None:
    """What the OpenAPI schema cannot say: CEL compiles, names are valid, limits hold."""
    spec = policy["spec"]
    conditions = spec.get("matchConditions") or []
    if len(conditions) > _MAX_MATCH_CONDITIONS:
        raise ArtifactError(f"{path}: {len(conditions)} matchConditions, the API server allows {_MAX_MATCH_CONDITIONS}")
    for condition in conditions:
        if not _QUALIFIED_NAME.fullmatch(condition["name"]):
            raise ArtifactError(f"{path}: matchCondition name {condition['name']!r} is not a qualified name")
        _compile_cel(without_variables, path, f"matchCondition {condition['name']}", condition["expression"])
    for variable in spec.get("variables") or []:
        if not _CEL_IDENTIFIER.fullmatch(variable["name"]):
            raise ArtifactError(f"{path}: variable name {variable['name']!r} is not a CEL identifier")
        _compile_cel(with_variables, path, f"variable {variable['name']}", variable["expression"])
    for index, validation in enumerate(spec.get("validations") or []):
        _compile_cel(with_variables, path, f"validation {index}", validation["expression"])
        if "messageExpression" in validation:
            _compile_cel(with_variables, path, f"validation {index} messageExpression", validation["messageExpression"])


@cache
def _schema_validator(kind: str) -> StrictSchema:
    """kubernetes-validate's strict schema of one admissionregistration.k8s.io/v1 kind, loaded once.

    `kubernetes_validate.validate` re-reads megabytes of schema JSON on every call, which
    dominated compile time; this builds the same validator from the same files once per kind.
    """
    schema = kubernetes_schema(KUBERNETES_VERSION, f"{kind.lower()}-admissionregistration-v1.json")
    return StrictSchema(schema, [kubernetes_schema(KUBERNETES_VERSION, "_definitions.json"), schema])


def parse_back(files: dict[str, str]) -> None:
    """Parse every file, validate every object against the Kubernetes schema (strict), compile every CEL expression."""
    base = ("object", "oldObject", "request", "namespaceObject")
    with_variables, without_variables = (*base, "variables"), base
    policies: set[str] = set()
    bound: dict[str, str] = {}
    check_kustomizations(files)
    for path, text in sorted(files.items()):
        if path == "vap/kustomization.yaml":
            continue
        for document in documents(path, text):
            if document.get("apiVersion") != API_VERSION:
                raise ArtifactError(f"{path}: expected {API_VERSION} objects only")
            check_schema(f"{path} (Kubernetes {KUBERNETES_VERSION})", document, _schema_validator(document["kind"]))
            if document["kind"] == "ValidatingAdmissionPolicy":
                policies.add(document["metadata"]["name"])
                _check_policy(path, document, with_variables, without_variables)
            elif document["kind"] == "ValidatingAdmissionPolicyBinding":
                bound[document["spec"]["policyName"]] = path
            else:
                raise ArtifactError(f"{path}: unexpected kind {document['kind']}")
    if policies != set(bound):
        raise ArtifactError(f"policies without a binding or bindings without a policy: {sorted(policies ^ set(bound))}")
