"""Kyverno's current policy API: a `policies.kyverno.io/v1` ValidatingPolicy per rule, PolicyExceptions.

Kyverno 1.17 made these CEL policy types GA and deprecated ClusterPolicy (the `kyverno` backend,
kept for older clusters); `spec.expiresAt` on PolicyExceptions needs 1.19, hence `minversion`.
Every artifact is validated strictly against the policies.kyverno.io/v1 CRD models of
cloudcoil-models-kyverno 1.19 (compiler/schemas), and every CEL expression is compiled.

Output (under out/): `kyverno-vpol/<rule>.yaml`, `kyverno-vpol/exceptions/<exemption>.yaml` and
a kustomization.

How rules are expressed, and why (docs/semantics.md says what must hold):
- The CEL is the ValidatingAdmissionPolicy's (compiler.lang.cel): the same variables and
  validations, the same request semantics (DELETE and other subresources are not judged, an UPDATE
  only on its new violations), read by Kyverno with the same variables (`object`, `oldObject`,
  `request`, `namespaceObject`).
- Matching: Pods and every pod controller by API group (`matchPolicy: Exact`), with the subresources
  that add containers (`pods/ephemeralcontainers`), CREATE and UPDATE. Kyverno's autogen is
  switched off (`autogen.podControllers.controllers: []`): it only applies to a policy whose sole
  resource rule is v1 `pods`, which would drop `kubectl debug` and, before 1.19, any
  namespaceSelector; and it rewrites the CEL text, which already finds the pod spec per kind.
  Generating a ValidatingAdmissionPolicy from the policy is off too: the `vap` backend emits one,
  and a generated one would not read the exceptions.
- Levels: required rules `validationActions: [Deny]`, recommended ones `[Audit, Warn]`. A
  scheduled rule (`enforce_from`) is resolved at the compile date, as for every backend. A staged
  rule (`enforced_in`): validationActions belong to the whole policy (the ClusterPolicy's
  `failureActionOverrides` has no counterpart), so the rule becomes two policies with the same
  CEL, split on the `kubernetes.io/metadata.name` namespace label: `[Audit, Warn]` outside the
  stage, `[Deny]` (`kupe-<rule>-enforced`) inside it. Each request is judged by exactly one.
- Exemptions are PolicyExceptions in the `kyverno` namespace, `policyRefs` naming the rule's
  policies, `matchConditions` selecting the object (namespace, name, labels: the same CEL as the
  VAP's), `expiresAt` the day after the expiry date (midnight UTC), so Kyverno stops honouring an
  exemption that expires before the next compile:
  - a waiver of whole objects (or namespaces) has no allowed values: Kyverno skips the policy;
  - a widening lists `allowedValues`, read by the policy's CEL through `exceptions.allowedValues`
    as `<container>:<value>`, or `*:<value>` when it covers every container; a widening of several
    list parameters at once, a rule with several list parameters, or a value holding `:` would
    be ambiguous in that one list of strings and is refused;
  - a waiver scoped to containers cannot be an exception (an exception skips the whole policy):
    it is a CEL constant in the validations, as in the VAP, dropped by the compile after expiry.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any


from .. import ir
from ..errors import ArtifactError
from ..lang.cel import CelLowering, CelSources, compile_error
from ..names import EXEMPTION_ANNOTATION, KYVERNO_EXCEPTION_NAMESPACE, RULE_LABEL, admission_policy, enforced_stage_policy
from ..render import exemption_annotations, render, rule_context
from ..schemas import StrictSchema
from ..schemas.kyverno_schemas import SCHEMA_DIR
from . import Backend, check_kustomizations, check_schema, documents, kustomization

BACKEND = "kyverno-vpol"
API_VERSION = "policies.kyverno.io/v1"
MIN_VERSION = "1.19.0"
ALLOWED_VALUES = "exceptions.allowedValues"
_ACTIONS = {ir.Level.REQUIRED: ["Deny"], ir.Level.RECOMMENDED: ["Audit", "Warn"]}
_SEVERITY = {ir.Level.REQUIRED: "high", ir.Level.RECOMMENDED: "medium"}
_SCHEMAS = {"ValidatingPolicy": "validatingpolicy", "PolicyException": "policyexception-v1"}
# What each CEL expression may read (Kyverno declares these; matchConditions see no variables).
_REQUEST = ("object", "oldObject", "request", "namespaceObject")
_POLICY = (*_REQUEST, "variables", "exceptions")


def _policies(rule: ir.ResolvedRule) -> list[dict[str, Any]]:
    """The rule's policies: one, or two for a staged rule (outside and inside the stage)."""
    if not rule.enforced_in:
        return [{"name": admission_policy(rule.id), "actions": _ACTIONS[rule.level], "stage": None}]
    stage = sorted(rule.enforced_in)
    return [
        {"name": admission_policy(rule.id), "actions": _ACTIONS[rule.level], "stage": {"operator": "NotIn", "values": stage}},
        {"name": enforced_stage_policy(rule.id), "actions": _ACTIONS[ir.Level.REQUIRED],
         "stage": {"operator": "In", "values": stage}},
    ]


def _lowering(rule: ir.ResolvedRule) -> CelLowering:
    return CelLowering(rule, BACKEND, sources=CelSources(allowed_values=ALLOWED_VALUES),
                       inline_waivers=rule.placed(ir.Placement.CONTAINERS))


def _expires_at(exemption: ir.Exemption) -> str:
    """An exemption is in force through its expiry date: it ends at the next midnight, UTC."""
    return f"{(exemption.expires + dt.timedelta(days=1)).isoformat()}T00:00:00Z"


class KyvernoVpolBackend(Backend):
    name = BACKEND
    title = f"Kyverno {MIN_VERSION[:4]}+ ValidatingPolicy and PolicyException ({API_VERSION})"
    relative_cost = 2

    def rule_files(self, rule: ir.ResolvedRule, program: ir.Program) -> dict[str, str]:
        lowering = _lowering(rule)
        for exemption in rule.widenings:
            _allowed_values(exemption, rule, lowering)  # refuses what allowedValues cannot say
        variables, validations = lowering.lower_rule().template_context()
        policy_set = next(ps for ps in program.policy_sets if ps.id == rule.rule.policy_set)
        annotations = {
            "policies.kyverno.io/title": rule.rule.title,
            "policies.kyverno.io/category": policy_set.title,
            "policies.kyverno.io/severity": _SEVERITY[rule.level],
            "policies.kyverno.io/subject": ", ".join(t.kind for t in rule.targets),
            "policies.kyverno.io/minversion": MIN_VERSION,
            "policies.kyverno.io/description": f"{rule.rule.rationale} {rule.rule.fix}.",
            "policy.kupe.cloud/source": str(rule.rule.loc),
        }
        text = render(
            "kyverno-vpol/policy.yaml.j2",
            **rule_context(rule),
            rule_label=RULE_LABEL,
            annotations=annotations,
            policies=_policies(rule),
            resource_rules=[{"apiGroups": [t.group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                             "resources": [t.resource, *(f"{t.resource}/{s}" for s in t.subresources)]} for t in rule.targets],
            variables=variables,
            validations=validations,
        )
        return {f"{BACKEND}/{rule.id}.yaml": text}

    def program_files(self, program: ir.Program, files: dict[str, str]) -> dict[str, str]:
        """A PolicyException per exemption expressed as one, and the kustomizations."""
        refs: dict[str, list[ir.ResolvedRule]] = {}
        for rule in program.rules:
            if self.not_applicable(rule) is None:
                for exemption in rule.placed(ir.Placement.NAMESPACES, ir.Placement.OBJECTS, ir.Placement.WIDENING):
                    refs.setdefault(exemption.id, []).append(rule)
        exceptions = {f"{BACKEND}/exceptions/{e.id}.yaml": render("_document.yaml.j2", source=str(e.loc),
                                                                  body=_exception(e, refs[e.id]))
                      for e in program.exemptions if e.id in refs}
        notes = (f"`kubectl apply -k` installs every ValidatingPolicy and PolicyException (Kyverno {MIN_VERSION[:4]}+).",
                 "The PolicyExceptions act only where Kyverno runs with --enablePolicyException and "
                 f"--exceptionNamespace={KYVERNO_EXCEPTION_NAMESPACE} (README, Kyverno ValidatingPolicy).")
        return {**exceptions, f"{BACKEND}/kustomization.yaml": kustomization(program, self.name, [*files, *exceptions], notes=notes)}

    def parse_back(self, files: dict[str, str]) -> None:
        parse_back(files)


def _allowed_values(exemption: ir.Exemption, rule: ir.ResolvedRule, lowering: CelLowering) -> list[str]:
    """`allowedValues` of a widening for `rule`, or the refusal of what that one list cannot say."""
    params = [name for name, _ in rule.rule.params]
    if len(exemption.allow) != 1 or len(params) != 1:
        raise lowering.unsupported(exemption, exemption.loc, (
            f"PolicyException allowedValues is one list of strings, so it cannot say which of several list parameters "
            f"a value widens (exemption {exemption.id} widens {len(exemption.allow)}, rule {rule.id} has {len(params)})"))
    ((_, values),) = exemption.allow
    if any(":" in value for value in values):
        raise lowering.unsupported(exemption, exemption.loc, f"exemption {exemption.id}: an allowed value holding ':' "
                                                            "cannot be told apart from a container name in allowedValues")
    return [f"{container}:{value}" for container in (exemption.containers or ("*",)) for value in values]


def _exception(exemption: ir.Exemption, rules: list[ir.ResolvedRule]) -> dict[str, Any]:
    """The PolicyException of one exemption, for the policies of `rules`."""
    lowering = _lowering(rules[0])
    spec: dict[str, Any] = {
        "policyRefs": [{"name": policy["name"], "kind": "ValidatingPolicy"} for r in rules for policy in _policies(r)],
        "matchConditions": [{"name": "kupe-selection", "expression": lowering.selects_object(exemption)}],
    }
    if exemption.allow:
        values = {v for r in rules for v in _allowed_values(exemption, r, _lowering(r))}
        spec["allowedValues"] = sorted(values)
    spec["expiresAt"] = _expires_at(exemption)
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyException",
        "metadata": {
            "name": exemption.id,
            "namespace": KYVERNO_EXCEPTION_NAMESPACE,
            "annotations": {**exemption_annotations(exemption), f"{EXEMPTION_ANNOTATION}source": str(exemption.loc)},
        },
        "spec": spec,
    }


# --- parse-back -------------------------------------------------------------------------------


@cache
def _validator(stem: str) -> StrictSchema:
    return StrictSchema(json.loads((SCHEMA_DIR / f"{stem}.schema.json").read_text(encoding="utf-8")))


def _compiles(path: str, where: str, variables: tuple[str, ...], expression: str) -> None:
    error = compile_error(variables, expression)
    if error is not None:
        raise ArtifactError(f"{path}: {where}: CEL does not compile: {error}")


def parse_back(files: dict[str, str]) -> None:
    """Every object validates strictly against Kyverno's CRD schema, every CEL expression compiles,
    policy names are unique, and every policyRef names a generated policy."""
    check_kustomizations(files)
    policies: set[str] = set()
    refs: dict[str, str] = {}
    for path, text in sorted(files.items()):
        if path.endswith("kustomization.yaml"):
            continue
        for document in documents(path, text):
            kind = document.get("kind")
            if document.get("apiVersion") != API_VERSION or kind not in _SCHEMAS:
                raise ArtifactError(f"{path}: expected {API_VERSION} ValidatingPolicy or PolicyException objects only")
            check_schema(f"{path} (Kyverno {MIN_VERSION} CRD)", document, _validator(_SCHEMAS[kind]))
            spec = document["spec"]
            for condition in spec.get("matchConditions") or []:
                _compiles(path, f"matchCondition {condition['name']}", _REQUEST, condition["expression"])
            if kind == "ValidatingPolicy":
                if document["metadata"]["name"] in policies:  # e.g. rule `x-enforced` beside the stage of rule `x`
                    raise ArtifactError(f"{path}: a second ValidatingPolicy named {document['metadata']['name']}")
                policies.add(document["metadata"]["name"])
                for variable in spec.get("variables") or []:
                    _compiles(path, f"variable {variable['name']}", _POLICY, variable["expression"])
                for index, validation in enumerate(spec.get("validations") or []):
                    for field in ("expression", "messageExpression"):
                        if field in validation:
                            _compiles(path, f"validation {index} {field}", _POLICY, validation[field])
            else:
                refs.update({ref["name"]: path for ref in spec["policyRefs"]})
    unknown = sorted(set(refs) - policies)
    if unknown:
        raise ArtifactError(f"{refs[unknown[0]]}: policyRefs name no generated ValidatingPolicy: {unknown}")
