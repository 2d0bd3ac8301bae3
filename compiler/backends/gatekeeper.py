"""OPA Gatekeeper backend: one ConstraintTemplate and one Constraint per rule, applied with kustomize.

Rego form: the classic `spec.targets[].rego` field, which Gatekeeper parses as Rego v0. The shared
lowering (`compiler.lang.rego`) writes only the keywords `if`, `contains`, `in` and `every`, so
each module imports exactly those four from `future.keywords` and never `import rego.v1` (which
v0 rejects). Chosen over `code: [{engine: Rego, source: {version: "v1"}}]` because that form needs
Gatekeeper >= 3.19, while the classic field with future keywords needs only an embedded OPA that
knows `future.keywords.if`/`.contains` (OPA >= 0.42, vendored from Gatekeeper 3.10 on; 3.8 still
rejected `future.keywords` imports, gatekeeper#1827). Measured: Gatekeeper v3.21 (OPA v1.10)
accepts these imports (../shared/ENGINE-NOTES.md in the development workspace; docs/engine-notes.md); releases 3.10 to 3.20 are not measured here.
Other builtins used: `object.get` with a path array (OPA >= 0.37).

CEL form: beside the Rego, each template's target carries the same checks as a
`code: [{engine: K8sNativeValidation, source: {...}}]` entry (compiler.lang.cel), so Gatekeeper's
CEL engine (3.17+ evaluates it in preference to the Rego) and the ValidatingAdmissionPolicies
Gatekeeper can generate from it judge alike. Gatekeeper binds `variables.anyObject` (the object,
or oldObject on DELETE, as the Rego's input.review.object) and `variables.params` (the
Constraint's spec.parameters); the validations may not read a bare `params` (Gatekeeper declares
it for variables only, and there it is the whole Constraint). The CEL reads the rule's list
parameters and the waiver and widening lists from `variables.params` at evaluation time, a
missing one as an empty list, exactly as the Rego does, so one Constraint serves both engines.
`failurePolicy: Fail`: an expression that errors is reported as a violation, never a pass.

Exemptions: namespace-wide waivers become the Constraint's `spec.match.excludedNamespaces`
(Gatekeeper's native exclusion, exact names); every narrower waiver and every widening travels in
`spec.parameters`, next to the rule's list parameters, and the Rego applies them exactly as the
Rego backend does. A parameter missing from a Constraint reads as an empty list (no waiver,
nothing allowed), so a hand-edited Constraint fails closed.

Staged enforcement (a recommended rule that already denies in `enforced_in` namespaces): the
rule's one template gets two Constraints, `<rule>-enforced` (deny, `match.namespaces`) and
`<rule>` (the audit action, those namespaces excluded). The split relies on the request's
namespace, which every admission request for a workload carries.

Requests (docs/semantics.md): the Rego and the CEL judge `input.review` / `request` as a
request: DELETE and subresources other than `pods/ephemeralcontainers` are never judged, and an
UPDATE only on the violations `oldObject` did not have, whatever operations and subresources
the webhook is configured to send.

Layout under out/gatekeeper/: `templates/` and `constraints/` are separate kustomizations because
a Constraint's CRD exists only once Gatekeeper has processed its template (see kustomization.yaml).
"""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any


from .. import ir
from ..errors import ArtifactError
from ..lang.cel import CelLowering, CelSources, Lowered, Variable, compile_error, literal
from ..lang.rego import LIBRARY_PATH, compile_check, exemption_data, library, module_context
from ..lowering import Lowering
from ..names import constraint_kind, constraint_template
from ..render import Safe, render, rule_context
from ..schemas import StrictSchema
from . import Backend, check_kustomizations, check_schema, documents, kustomization

BACKEND = "gatekeeper"
TARGET = "admission.k8s.gatekeeper.sh"
FUTURE_KEYWORDS = ("contains", "every", "if", "in")
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "gatekeeper" / "gatekeeper.schema.json"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_STRINGS = {"type": "array", "items": {"type": "string"}}
_EXEMPTION_PARAMETERS = frozenset({"waivers", "widenings"})
CEL_ENGINE = "K8sNativeValidation"
# What Gatekeeper's K8sNativeValidation driver declares: `params` (the whole Constraint) only for variables.
_CEL_BASE = ("object", "oldObject", "request", "namespaceObject", "variables")
_CEL_DRIVER_VARIABLES = ("anyObject", "params")
_CEL_RESERVED_PREFIX = "gatekeeper_internal_"
_CEL_IDENTIFIER = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_CEL_VARIABLE_REF = re.compile(r"\bvariables\.([_a-zA-Z][_a-zA-Z0-9]*)")


def enforcement_action(rule: ir.ResolvedRule) -> str:
    return "deny" if rule.level is ir.Level.REQUIRED else rule.audit_action.value


def match_kinds(rule: ir.ResolvedRule) -> list[dict[str, list[str]]]:
    """One `kinds` entry per API group, so a kind is never matched in a group it is not a workload in."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for target in rule.targets:
        by_group[target.group].append(target.kind)
    return [{"apiGroups": [group], "kinds": sorted(kinds)} for group, kinds in sorted(by_group.items())]


def native_waivers(rule: ir.ResolvedRule) -> list[ir.Exemption]:
    return list(rule.placed(ir.Placement.NAMESPACES))


def rego_waivers(rule: ir.ResolvedRule) -> list[ir.Exemption]:
    return list(rule.placed(ir.Placement.OBJECTS, ir.Placement.CONTAINERS))


def _namespace_names(rule: ir.ResolvedRule, names: tuple[str, ...], construct: str, loc: ir.Loc) -> list[str]:
    """Names for match.namespaces / excludedNamespaces; one Gatekeeper would read as a glob is refused."""
    for namespace in names:
        if not _NAMESPACE.match(namespace):
            raise Lowering(rule, BACKEND).unsupported(construct, loc, f"{namespace!r} is not a namespace name "
                                                                      "(Gatekeeper's match would read it as a pattern)")
    return list(names)


def excluded_namespaces(rule: ir.ResolvedRule) -> list[str]:
    """Namespaces of namespace-wide waivers, excluded from every Constraint of the rule."""
    return sorted({ns for e in native_waivers(rule) for ns in _namespace_names(rule, e.namespaces, f"Exemption {e.id!r} namespaces", e.loc)})


def staged_namespaces(rule: ir.ResolvedRule) -> list[str]:
    return sorted(_namespace_names(rule, rule.enforced_in, "Rule.enforced_in (stage)", rule.rule.loc))


def constraints(rule: ir.ResolvedRule) -> list[dict[str, Any]]:
    """The rule's Constraints: one, or for a staged rule a denying one for the stage and an auditing one elsewhere."""
    excluded, stage = excluded_namespaces(rule), staged_namespaces(rule)
    if not stage:
        return [{"name": rule.id, "action": enforcement_action(rule), "namespaces": [], "excluded": excluded, "staged_out": []}]
    return [{"name": f"{rule.id}-enforced", "action": "deny", "namespaces": stage, "excluded": excluded, "staged_out": []},
            {"name": rule.id, "action": rule.audit_action.value, "namespaces": [], "excluded": sorted({*excluded, *stage}),
             "staged_out": stage}]


def parameters(rule: ir.ResolvedRule) -> dict[str, Any]:
    """The Constraint's spec.parameters: the rule's list parameters, then the exemptions the Rego applies."""
    values: dict[str, Any] = {name: list(items) for name, items in rule.rule.params}
    values["waivers"] = [exemption_data(e) for e in rego_waivers(rule)]
    values["widenings"] = [exemption_data(e) for e in rule.widenings]
    return values


def parameters_schema(rule: ir.ResolvedRule) -> dict[str, Any]:
    """The template's openAPIV3Schema (structural): exactly the parameters the template's Rego reads."""
    exemption = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "namespaces": _STRINGS,
            "names": _STRINGS,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "containers": _STRINGS,
            "allow": {"type": "object", "properties": {name: _STRINGS for name, _ in rule.rule.params}},
        },
    }
    properties: dict[str, Any] = {name: _STRINGS for name, _ in rule.rule.params}
    properties["waivers"] = {"type": "array", "items": exemption}
    properties["widenings"] = {"type": "array", "items": exemption}
    return {"type": "object", "properties": properties}


def cel_lowering(rule: ir.ResolvedRule) -> Lowered:
    """The rule's checks in CEL for the K8sNativeValidation engine, reading what the Rego reads.

    Variables of its own come first: `requestNamespace` (the request's, "default" when it has
    none, as the Rego's `namespace`; not `namespace`, a CEL reserved word) and `parameters`
    (spec.parameters with every parameter the CEL reads, a missing one as an empty list, as the
    Rego's `object.get(input.parameters, name, [])`).
    """
    sources = CelSources(object="variables.anyObject", namespace="variables.requestNamespace",
                         params="variables.parameters", exemptions="variables.parameters")
    lowered = CelLowering(rule, BACKEND, sources).lower_rule()
    names = [name for name, _ in rule.rule.params] + sorted(_EXEMPTION_PARAMETERS)
    entries = ",\n  ".join(f"{literal(name)}: variables.parameterMap[?{literal(name)}].orValue([])" for name in names)
    prelude = (
        Variable("requestNamespace", f'request.?namespace.orValue("") != "" ? request.namespace : {literal(ir.DEFAULT_NAMESPACE)}',
                 f'the request namespace; a request without one (a bare manifest) is in "{ir.DEFAULT_NAMESPACE}", as in the Rego'),
        Variable("parameterMap", "type(variables.params) == map ? variables.params : {}",
                 "the Constraint's spec.parameters (Gatekeeper binds null when it has none)"),
        Variable("parameters", f"{{\n  {entries}\n}}",
                 "every parameter read below, a missing one as an empty list (no waiver, nothing allowed)"),
    )
    return Lowered(prelude + lowered.variables, lowered.validations)


def _payload(fields: dict[str, str]) -> str:
    """A violation as Gatekeeper reports it: `msg`, and in `details` the rule, level, fix and where it is."""
    details = {"rule": "rule_id", "level": "level", "fix": "fix", **{k: v for k, v in fields.items() if k != "msg"}}
    return '{"msg": ' + fields["msg"] + ', "details": {' + ", ".join(f'"{key}": {value}' for key, value in details.items()) + "}}"


def _exemption_note(exemption: ir.Exemption) -> str:
    """Who answers for an exemption, next to its data in the Constraint."""
    accountable = [f"owner {exemption.owner}"] * bool(exemption.owner) + [f"ticket {exemption.ticket}"] * bool(exemption.ticket)
    return f"exemption {exemption.id} ({exemption.loc}): {exemption.reason}; {', '.join(accountable + [f'expires {exemption.expires}'])}"


class GatekeeperBackend(Backend):
    name = BACKEND
    title = "OPA Gatekeeper (ConstraintTemplate v1 + Constraint)"
    relative_cost = 3

    def rule_files(self, rule: ir.ResolvedRule, program: ir.Program) -> dict[str, str]:
        refuse = Lowering(rule, self.name).unsupported
        name = constraint_template(rule.id)
        if len(name) > 63:
            raise refuse(rule.rule, None, f"its template name {name!r} is longer than the 63 characters of a CRD name")
        reserved = sorted(_EXEMPTION_PARAMETERS & {param for param, _ in rule.rule.params})
        if reserved:
            raise refuse(ir.Param(reserved[0]), None, f"parameter {reserved[0]!r} would collide with the Constraint's exemption parameter")
        return {f"gatekeeper/templates/{rule.id}.yaml": self._template(rule),
                f"gatekeeper/constraints/{rule.id}.yaml": self._constraint(rule)}

    def program_files(self, program: ir.Program, files: dict[str, str]) -> dict[str, str]:
        """Two kustomizations, templates and constraints, and one over both: the templates go first."""
        seen: dict[str, ir.ResolvedRule] = {}
        for rule in program.rules:
            other = seen.setdefault(constraint_template(rule.id), rule)
            if other is not rule:
                raise Lowering(rule, self.name).unsupported(
                    rule.rule, None, f"its template name {constraint_template(rule.id)!r} is also rule {other.id!r}'s")
        kustomizations = {f"gatekeeper/{folder}/kustomization.yaml": kustomization(program, f"gatekeeper/{folder}", files)
                          for folder in ("templates", "constraints")}
        kustomizations["gatekeeper/kustomization.yaml"] = kustomization(program, "gatekeeper", kustomizations, notes=(
            "Gatekeeper creates each Constraint's CRD only after it has processed the ConstraintTemplate, so on a "
            "cluster that does not have them yet, apply in two steps:",
            "kubectl apply -k out/gatekeeper/templates",
            "kubectl wait --for=jsonpath='{.status.created}'=true --timeout=120s constrainttemplates "
            "-l app.kubernetes.io/managed-by=kupe-policy",
            "kubectl apply -k out/gatekeeper/constraints",
            "Once the templates exist, `kubectl apply -k out/gatekeeper` applies both."), first=("templates", "constraints"))
        return kustomizations

    def _template(self, rule: ir.ResolvedRule) -> str:
        cel_variables, cel_validations = cel_lowering(rule).template_context()
        return render(
            "gatekeeper/template.yaml.j2",
            **rule_context(rule),
            rationale=rule.rule.rationale,
            name=constraint_template(rule.id),
            kind=constraint_kind(rule.id),
            schema=parameters_schema(rule),
            target=TARGET,
            rego=Safe(render("gatekeeper/violation.rego.j2", **module_context(rule, self.name, constraint_template(rule.id), _payload),
                             keywords=[Safe(k) for k in FUTURE_KEYWORDS], param_names=[name for name, _ in rule.rule.params])),
            lib=_library(),
            cel_variables=cel_variables,
            cel_validations=cel_validations,
        )

    def _constraint(self, rule: ir.ResolvedRule) -> str:
        values = parameters(rule)
        return render(
            "gatekeeper/constraint.yaml.j2",
            **rule_context(rule),
            kind=constraint_kind(rule.id),
            constraints=constraints(rule),
            kinds=match_kinds(rule),
            native_notes=[_exemption_note(e) for e in native_waivers(rule)],
            params=[(name, values[name]) for name, _ in rule.rule.params],
            waivers=[(_exemption_note(e), exemption_data(e)) for e in rego_waivers(rule)],
            widenings=[(_exemption_note(e), exemption_data(e)) for e in rule.widenings],
        )

    def parse_back(self, files: dict[str, str]) -> None:
        """Validate both objects against Gatekeeper's CRD structure, compile every template's Rego and CEL."""
        check_kustomizations(files)
        compiled: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in files if p.startswith("gatekeeper/templates/") and not p.endswith("/kustomization.yaml")):
            constraints_path = path.replace("/templates/", "/constraints/", 1)
            templates = documents(path, files[path])
            if len(templates) != 1 or constraints_path not in files:
                raise ArtifactError(f"{path}: expected one template, and its constraints in {constraints_path}")
            check_schema(path, templates[0], _validator("ConstraintTemplate"))
            _check_rego(path, templates[0])
            _check_cel(path, templates[0])
            compiled[path] = templates[0]
            for constraint in documents(constraints_path, files[constraints_path]):
                check_schema(constraints_path, constraint, _validator("Constraint"))
                _check_pair(constraints_path, templates[0], constraint)
        _compile_rego(compiled)


@cache
def _library() -> Safe:
    """The shared Rego every template carries in its `libs` (the same text in each: rendered once)."""
    return Safe(library([f"import future.keywords.{k}" for k in FUTURE_KEYWORDS], "gatekeeper/_request.rego.j2"))


# --- parse back: every artifact as Gatekeeper and kubectl would read it -----------------------


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@cache
def _validator(definition: str) -> StrictSchema:
    return StrictSchema({**_schema(), "$ref": f"#/$defs/{definition}"})


@cache
def _parameters_validator(schema: str) -> StrictSchema:
    """A strict validator per distinct parameters schema (rules of one shape share it)."""
    return StrictSchema(_strict(json.loads(schema)))


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The openAPIV3Schema with unknown fields refused: Gatekeeper would prune them silently."""
    strict = copy.deepcopy(schema)
    nodes = [strict]
    while nodes:
        node = nodes.pop()
        if "properties" in node:
            node["additionalProperties"] = False
            nodes.extend(node["properties"].values())
        elif isinstance(node.get("additionalProperties"), dict):
            nodes.append(node["additionalProperties"])
        if "items" in node:
            nodes.append(node["items"])
    return strict








def _check_rego(path: str, template: dict[str, Any]) -> None:
    """Gatekeeper parses each module as v0: future keywords imported, no rego.v1, libs under `lib.`."""
    target = template["spec"]["targets"][0]
    for module in [target["rego"], *target.get("libs", [])]:
        imports = set(re.findall(r"^import ([\w.]+)$", module, re.MULTILINE))
        missing = {f"future.keywords.{k}" for k in FUTURE_KEYWORDS} - imports
        if missing or "rego.v1" in imports:
            raise ArtifactError(f"{path}: Rego v0 needs {sorted(missing)} and must not import rego.v1")
    if not all(re.search(r"^package lib\.", lib, re.MULTILINE) for lib in target.get("libs", [])):
        raise ArtifactError(f"{path}: Gatekeeper libs must live in packages under lib.")


# (for variables, for validations): Gatekeeper declares `params` for variables only.
_CEL_VARIABLE_SCOPE = (*_CEL_BASE, "params")


def _compile_cel(variables: tuple[str, ...], path: str, where: str, expression: str, known: list[str]) -> None:
    """Compile with the CEL C++ runtime; `variables.<name>` must be declared before (Gatekeeper types them in order)."""
    error = compile_error(variables, expression)
    if error is not None:
        raise ArtifactError(f"{path}: {where}: CEL does not compile: {error}")
    unknown = sorted(set(_CEL_VARIABLE_REF.findall(expression)) - set(known))
    if unknown:
        raise ArtifactError(f"{path}: {where}: reads variables not declared before it: {unknown}")


def _check_cel(path: str, template: dict[str, Any]) -> None:
    """The K8sNativeValidation entry: names Gatekeeper accepts, every expression compiles."""
    entries = [c for c in template["spec"]["targets"][0].get("code", []) if c["engine"] == CEL_ENGINE]
    if len(entries) != 1:
        raise ArtifactError(f"{path}: expected one {CEL_ENGINE} code entry, found {len(entries)}")
    source = entries[0]["source"]
    for_variables, for_validations = _CEL_VARIABLE_SCOPE, _CEL_BASE
    known = list(_CEL_DRIVER_VARIABLES)
    for variable in source.get("variables", []):
        name = variable["name"]
        if not _CEL_IDENTIFIER.fullmatch(name) or name in known or name.startswith(_CEL_RESERVED_PREFIX):
            raise ArtifactError(f"{path}: CEL variable name {name!r} is not an identifier, repeats or is reserved")
        _compile_cel(for_variables, path, f"variable {name}", variable["expression"], known)
        known.append(name)
    for index, validation in enumerate(source["validations"]):
        _compile_cel(for_validations, path, f"validation {index}", validation["expression"], known)
        if "messageExpression" in validation:
            _compile_cel(for_validations, path, f"validation {index} messageExpression", validation["messageExpression"], known)


def _compile_rego(templates: dict[str, dict[str, Any]]) -> None:
    """Compile every template's Rego with its libs in one rego-cpp interpreter (packages are distinct)."""
    libs = {lib for t in templates.values() for lib in t["spec"]["targets"][0].get("libs", [])}
    if len(libs) > 1:
        raise ArtifactError("gatekeeper templates carry different copies of the shared Rego library")
    modules = {path: t["spec"]["targets"][0]["rego"] for path, t in templates.items()}
    modules.update({f"gatekeeper/{LIBRARY_PATH}": lib for lib in libs})
    compile_check(modules, [f"{t['metadata']['name']}/violation" for t in templates.values()])


def _check_pair(path: str, template: dict[str, Any], constraint: dict[str, Any]) -> None:
    kind = template["spec"]["crd"]["spec"]["names"]["kind"]
    if template["metadata"]["name"] != kind.lower():
        raise ArtifactError(f"{path}: template name {template['metadata']['name']!r} is not its kind lowercased")
    if constraint["kind"] != kind:
        raise ArtifactError(f"{path}: constraint kind {constraint['kind']!r} is not its template's {kind!r}")
    if not constraint["spec"]["match"].get("kinds"):
        raise ArtifactError(f"{path}: a constraint without match.kinds would match every kind")
    schema = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]
    check_schema(f"{path} spec.parameters", constraint["spec"].get("parameters", {}), _parameters_validator(json.dumps(schema, sort_keys=True)))


