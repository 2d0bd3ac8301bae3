"""Kyverno backend: one `kyverno.io/v1` ClusterPolicy per rule, PolicyExceptions, a kustomization.

Accepted by Kyverno 1.13 and later: the per-rule `validate.failureAction` and the
`kyverno.io/v2` PolicyException first shipped in 1.13 (older CRDs reject both). Every
artifact is validated against the 1.13 CRD models of `cloudcoil-models-kyverno`, strictly.

How rules are lowered, and why (see docs/semantics.md for what must hold):

* Every check is a `foreach` over its subjects (one entry per check). The list expressions keep only arrays of
  objects, so a null, missing or mistyped container list or spec means "no subjects", as
  the semantics say; a top-level `pattern` would fail on `initContainers: null`, which is
  unset. Kyverno skips null elements, as the semantics do.
* A check whose predicate a Kyverno pattern decides exactly becomes a per-element `pattern`:
  `Present` of a plain field (`"*"` fails exactly on a null or missing key, and a mapping
  pattern fails on a parent that is not a mapping). Everything else becomes
  `deny.conditions` on one JMESPath expression with explicit `type()` tests, because
  patterns cannot tell the JSON types apart exactly: a scalar pattern is applied to each
  item of a list value (so `[]` matches `false`), strings coerce (`"true"` matches `true`,
  `"5"` matches `5`), a null key counts as present under anchors; and condition operators
  such as `AnyNotIn` match wildcards both ways.
* Only Pod is matched; Kyverno's autogen writes `autogen-<rule>` and
  `autogen-cronjob-<rule>` for the controllers. Autogen matches controllers by kind only,
  so a precondition on `kind:group` keeps objects of another API group out, as the
  semantics require. Autogen rewrites the text `request.object.metadata` to the pod
  template's metadata; exemptions select by the object's own metadata, so the expressions
  here spell it `request.object."metadata"`, which autogen leaves alone.
* Waivers that select whole objects become PolicyExceptions naming the rule and its autogen
  rules. Container-scoped waivers and widenings cannot be expressed by an exception (it
  skips the whole rule), so they are foreach preconditions and conditions of the rule.
* Requests (docs/semantics.md): a rule precondition skips DELETE; Kyverno matches
  `pods/ephemeralcontainers` updates to `Pod` by itself. Each foreach entry binds the element's
  namesake in `request.oldObject` (by name, through `object_from_lists` and `lookup`) and skips
  the element when the namesake failed the same check, so only new violations count; Kyverno's
  own `allowExistingViolations` (per rule, Enforce only) is turned off.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any


from .. import describe, ir
from ..errors import ArtifactError
from ..lowering import Lowering
from ..names import KYVERNO_EXCEPTION_NAMESPACE, kyverno_autogen_rules
from ..render import exemption_annotations, render
from ..schemas import StrictSchema
from ..schemas.kyverno_schemas import SCHEMA_DIR
from . import Backend, check_kustomizations, check_schema, documents, kustomization

BACKEND = "kyverno"
MIN_VERSION = "1.13.0"
AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
# What Kyverno's autogen covers when the annotation is absent.
DEFAULT_CONTROLLERS = ("DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController", "CronJob")
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
# A widened parameter is lowered once per combination of the widenings that select: at most 2**6.
MAX_WIDENINGS = 6
_WILDCARDS = re.compile(r"[*?]")
_SEVERITY = {ir.Level.REQUIRED: "high", ir.Level.RECOMMENDED: "medium"}
_ACTION = {ir.Level.REQUIRED: "Enforce", ir.Level.RECOMMENDED: "Audit"}
_JSON_TYPE = {bool: "boolean", int: "number", str: "string"}


# --- JMESPath text ---------------------------------------------------------------------


def _no_braces(text: str) -> str:
    """JSON text without `{`, `}` or backticks, which would end a Kyverno `{{ }}` variable or a literal."""
    return text.replace("{", "\\u007b").replace("}", "\\u007d").replace("`", "\\u0060")


def literal(value: object) -> str:
    """A JMESPath literal for JSON data."""
    return "`" + _no_braces(json.dumps(value, sort_keys=True, ensure_ascii=False)) + "`"


def path(root: str, parts: tuple[str, ...]) -> str:
    """`root."a"."b"`: quoted identifiers, so any field name is safe."""
    return root + "".join("." + _no_braces(json.dumps(part, ensure_ascii=False)) for part in parts)


def variable(expression: str) -> str:
    return "{{ " + expression + " }}"


def controllers_of(rule: ir.ResolvedRule) -> tuple[str, ...]:
    return tuple(t.kind for t in rule.targets if t.kind != "Pod")


# Where the pod spec is in a Pod; autogen rewrites `request.object.spec` (and `request.oldObject.spec`)
# for the controllers.
POD_SPEC = "request.object.spec"
OLD_POD_SPEC = "request.oldObject.spec"
OWN_METADATA = 'request.object."metadata"'
# The object's API group as our semantics read it: the part before `/` of a two-part apiVersion.
API_GROUP = "to_string(request.object.apiVersion) | split(@, '/') | (length(@) == `2` && [0]) || ''"
NAMESAKE = "kupeNamesake"  # foreach context: [the element's namesake in the old object], on an UPDATE


@dataclass(frozen=True)
class KyvernoLowering(Lowering):
    """One method per IR node; a node without one is refused with `UnsupportedError`.

    Requests (docs/semantics.md): each foreach entry judges only elements whose namesake in the
    object an UPDATE replaces did not fail the same check (a precondition; `old=True` lowers
    the check on that namesake), so `validate.allowExistingViolations` is off: Kyverno's own
    comparison is per rule, not per container.
    """

    old: bool = False

    def foreach(self) -> list[dict[str, Any]]:
        """One foreach entry per check (each compares its own check with the old object's)."""
        entries: list[dict[str, Any]] = []
        old = replace(self, old=True)
        for check in self.rule.rule.checks:
            entry: dict[str, Any] = {"list": self.lower(check.subject, check)}
            # The element's namesake in the old object (a one-item list: a context variable may not be null).
            entry["context"] = [{"name": NAMESAKE, "variable": {"jmesPath": f"[{self._namesake(check)}]"}}]
            guards = [self._container_waivers(check), f"type({old._element()}) == 'object' && ({old.violates(check)})"]
            entry["preconditions"] = {"all": [{"key": variable(g), "operator": "Equals", "value": False} for g in guards if g]}
            keys = self._pattern_path(check.predicate.ref, check) if isinstance(check.predicate, ir.Present) else None
            entry.update({"pattern": _nested(keys, "*")} if keys else self._deny(self.violates(check)))
            entries.append(entry)
        return entries

    def violates(self, check: ir.Check) -> str:
        """JMESPath: this side's subject of `check` violates it (exemptions in `_by_selection`)."""
        return self.lower(check.predicate, check)

    # --- subjects: the foreach list of the object, keeping only JSON objects; the namesake in the old object

    def lower_EachContainer(self, node: ir.EachContainer, check: ir.Check) -> str:
        lists = ", ".join(_no_braces(json.dumps(name)) for name in node.lists)
        return f"{POD_SPEC}.[{lists}][?type(@) == 'array'][] | [?type(@) == 'object']"

    def lower_PodSpec(self, node: ir.PodSpec, check: ir.Check) -> str:
        return f"[{POD_SPEC}] | [?type(@) == 'object']"

    def lower_EachVolume(self, node: ir.EachVolume, check: ir.Check) -> str:
        # Every entry is a volume, as in the reference; Kyverno skips null entries, which
        # comply with every predicate that accepts an unset value (others are refused).
        return f"{POD_SPEC}.volumes[*]"

    def _element(self) -> str:
        """This side's subject: `element`, or its namesake in the old object."""
        return f"{NAMESAKE}[0]" if self.old else "element"

    def _namesake(self, check: ir.Check) -> str:
        """JMESPath: the old object's subject by the element's name (its pod spec for the pod spec); null if none."""
        if isinstance(check.subject, ir.PodSpec):
            return OLD_POD_SPEC
        items = self.lower(check.subject, check).replace(POD_SPEC, OLD_POD_SPEC, 1)
        if isinstance(check.subject, ir.EachVolume):
            items += " | [?type(@) == 'object']"
        items = f"({items}) || `[]`"
        return f"lookup(object_from_lists(map(&to_string(name || ''), {items}), {items}), to_string(element.name || ''))"

    # --- references: a JMESPath value, null when unset ---------------------------------

    def _value(self, ref: ir.Ref, check: ir.Check) -> str:
        return self.lower(ref, check)

    def lower_FieldRef(self, node: ir.FieldRef, check: ir.Check) -> str:
        return path(self._element(), node.path)

    def lower_NormalPath(self, node: ir.NormalPath, check: ir.Check) -> str:
        # One-item lists carry values JMESPath counts as false (null, false, "") through `||`.
        v = path(self._element(), node.path)
        normal = f"join('', [(starts_with({v}, '/') && '/') || '', join('/', split({v}, '/')[?@ != '' && @ != '.'])])"
        return f"(((type({v}) != 'string' && [{v}]) || (contains(split({v}, '/'), '..') && [`false`]) || [{normal}]) | [0])"

    def lower_EffectiveRef(self, node: ir.EffectiveRef, check: ir.Check) -> str:
        if not isinstance(check.subject, ir.EachContainer):
            raise self.unsupported(node, check, "an effective value needs a container subject")
        container = path(self._element(), node.container_path)
        pod = path(OLD_POD_SPEC if self.old else POD_SPEC, node.pod_path)
        return f"([{container}, {pod}][?@ != `null`] | [0])"

    # --- predicates: when the subject violates (JMESPath); a per-element pattern where exact -------

    def _deny(self, violation: str) -> dict[str, Any]:
        return {"deny": {"conditions": {"any": [{"key": variable(violation), "operator": "Equals", "value": True}]}}}

    def _pattern_path(self, ref: ir.Ref, check: ir.Check) -> tuple[str, ...] | None:
        """The pattern keys of a plain field of a container, or None when a pattern would not be exact.

        `Present` of such a field is a pattern: `"*"` fails exactly on a null or missing key, and
        a mapping pattern fails on a parent that is not a mapping.
        """
        if isinstance(ref, ir.FieldRef) and isinstance(check.subject, ir.EachContainer) and all(map(_plain_key, ref.path)):
            return ref.path
        return None

    def lower_Equals(self, node: ir.Equals, check: ir.Check) -> str:
        self._refuse_null_volumes(node, check)
        return f"{self._value(node.ref, check)} != {literal(node.value)}"

    def lower_NotEquals(self, node: ir.NotEquals, check: ir.Check) -> str:
        v = self._value(node.ref, check)
        return f"{v} != `null` && ({_type_is_not(v, _JSON_TYPE[type(node.value)])} || {v} == {literal(node.value)})"

    def lower_OneOf(self, node: ir.OneOf, check: ir.Check) -> str:
        self._refuse_null_volumes(node, check)
        v = self._value(node.ref, check)
        return f"{_type_is_not(v, 'string')} || {self._by_selection(node.values, check, lambda vals: f'!contains({vals}, {v})')}"

    def lower_NoneOf(self, node: ir.NoneOf, check: ir.Check) -> str:
        v = self._value(node.ref, check)
        member = self._by_selection(node.values, check, lambda vals: f"contains({vals}, {v})")
        return f"{v} != `null` && ({_type_is_not(v, 'string')} || {member})"

    def lower_ListContains(self, node: ir.ListContains, check: ir.Check) -> str:
        self._refuse_null_volumes(node, check)
        v = self._value(node.ref, check)
        return f"{_type_is_not(v, 'array')} || !contains({v}, {literal(node.value)})"

    def lower_ListSubsetOf(self, node: ir.ListSubsetOf, check: ir.Check) -> str:
        v = self._value(node.ref, check)
        # A projection drops null items, so count the allowed items rather than the others.
        outside = self._by_selection(node.allowed, check, lambda vals: f"length({v}[?contains({vals}, @)]) != length({v})")
        return f"{v} != `null` && ({_type_is_not(v, 'array')} || {outside})"

    def lower_Present(self, node: ir.Present, check: ir.Check) -> str:
        if self._pattern_path(node.ref, check) is None:
            self._refuse_null_volumes(node, check)
        return f"{self._value(node.ref, check)} == `null`"

    def _refuse_null_volumes(self, node: object, check: ir.Check) -> None:
        """Kyverno's foreach skips a null volume entry, which violates a predicate that needs a set value."""
        if isinstance(check.subject, ir.EachVolume):
            raise self.unsupported(node, check, "Kyverno's foreach skips null volume entries, which this predicate would reject")

    # --- exemptions encoded in the rule: selected by the object, for both sides ------------

    def _selects(self, exemption: ir.Exemption, check: ir.Check) -> str:
        """JMESPath: this exemption selects the object (and, for container rules, the container)."""
        terms = []
        if exemption.namespaces:
            terms.append(f"contains({literal(list(exemption.namespaces))}, request.namespace || '{ir.DEFAULT_NAMESPACE}')")
        if exemption.names:
            terms.append(f"contains({literal(list(exemption.names))}, {path(OWN_METADATA, ('name',))})")
        terms.extend(f"{path(OWN_METADATA, ('labels', key))} == {literal(value)}" for key, value in exemption.labels)
        if exemption.containers:
            if not isinstance(check.subject, ir.EachContainer):
                raise self.unsupported(exemption, exemption.loc, "container-scoped exemption on a check that is not per container")
            terms.append(f"contains({literal(list(exemption.containers))}, element.name || '')")
        return "(" + " && ".join(terms) + ")" if terms else "`true`"

    def _container_waivers(self, check: ir.Check) -> str:
        """JMESPath true when a container-scoped waiver removes this element; '' when there is none."""
        waivers = self.rule.placed(ir.Placement.CONTAINERS)
        return " || ".join(self._selects(e, check) for e in waivers)

    def _by_selection(self, values: ir.Values, check: ir.Check, body: Callable[[str], str]) -> str:
        """`body(values)`, with a list parameter widened by exactly the widenings that select.

        Each combination of selecting widenings gets its own literal list, so membership never
        depends on an expression evaluated inside a JMESPath filter (where only the item is visible).
        """
        if not isinstance(values, ir.Param):
            return body(literal(list(values)))
        base = self.rule.rule.param(values.name)
        widenings = [e for e in self.rule.widenings if values.name in dict(e.allow)]
        if len(widenings) > MAX_WIDENINGS:
            raise self.unsupported(values, check, f"more than {MAX_WIDENINGS} widenings of one parameter")
        if not widenings:
            return body(literal(list(base)))
        selections = [self._selects(e, check) for e in widenings]
        alternatives = []
        for chosen in itertools.product((True, False), repeat=len(widenings)):
            allowed = list(base)
            for selected, exemption in zip(chosen, widenings):
                if selected:
                    allowed += [v for v in dict(exemption.allow)[values.name] if v not in allowed]
            guard = " && ".join(s if selected else f"!{s}" for selected, s in zip(chosen, selections))
            alternatives.append(f"({guard} && {body(literal(allowed))})")
        return "(" + " || ".join(alternatives) + ")"


def _nested(keys: tuple[str, ...], leaf: Any) -> Any:
    for key in reversed(keys):
        leaf = {key: leaf}
    return leaf


def _type_is_not(value: str, json_type: str) -> str:
    return f"type({value}) != '{json_type}'"


def _plain_key(key: str) -> bool:
    """A pattern key Kyverno reads literally: no anchor syntax, no wildcard, no variable."""
    return not re.match(r"^[+<=X^]?\(.*\)$", key) and not _WILDCARDS.search(key) and "{{" not in key


# --- documents -------------------------------------------------------------------------


def _message(rule: ir.ResolvedRule) -> str:
    """The violation message; `{{` would start a Kyverno variable, so it is broken up."""
    text = "; ".join(describe.predicate(c.predicate) for c in rule.rule.checks)
    return f"{rule.id}: {text}. Fix: {rule.rule.fix}".replace("{{", "{ {")


def _preconditions(rule: ir.ResolvedRule) -> dict[str, Any]:
    """Never a DELETE (docs/semantics.md, Requests; Kyverno's webhook receives them), and only the
    kinds of the right API group: autogen matches controllers by kind alone.

    `contains` compares exactly; `AnyIn` would read a `*` in the object's apiVersion as a wildcard.
    A Pod rule also sees `pods/ephemeralcontainers` updates (Kyverno matches them to `Pod`) and
    never another subresource, as the semantics want.
    """
    workloads = literal([f"{t.kind}:{t.group}" for t in rule.targets])
    key = variable(f"contains({workloads}, join(':', [to_string(request.object.kind), ({API_GROUP})]))")
    return {"all": [{"key": variable("request.operation || ''"), "operator": "NotEquals", "value": "DELETE"},
                    {"key": key, "operator": "Equals", "value": True}]}


def _namespaces(names: tuple[str, ...]) -> dict[str, Any]:
    """A namespace selector by name, through the label Kubernetes sets on every namespace."""
    return {"matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "In", "values": list(names)}]}


def _exemption_note(e: ir.Exemption) -> str:
    return f"{e.reason} (owner {e.owner}, ticket {e.ticket}, expires {e.expires.isoformat()}; {e.loc})"


def policy_document(rule: ir.ResolvedRule, policy_set: ir.PolicySet) -> dict[str, Any]:
    """The ClusterPolicy of one rule, as JSON data."""
    if not any(t.kind == "Pod" for t in rule.targets):
        raise Lowering(rule, BACKEND).unsupported(rule.targets[0], None, "rules are written for Pods and extended to "
                                                                         "controllers by autogen; a rule without Pod has none")
    foreach = KyvernoLowering(rule, BACKEND).foreach()  # first, so that a refusal names the construct
    annotations = {
        "policies.kyverno.io/title": rule.rule.title,
        "policies.kyverno.io/category": policy_set.title,
        "policies.kyverno.io/severity": _SEVERITY[rule.level],
        "policies.kyverno.io/subject": "Pod",
        "policies.kyverno.io/minversion": MIN_VERSION,
        "policies.kyverno.io/description": f"{rule.rule.rationale} {rule.rule.fix}.",
    }
    controllers = controllers_of(rule)
    if set(controllers) != set(DEFAULT_CONTROLLERS):
        annotations[AUTOGEN_ANNOTATION] = ",".join(controllers) or "none"
    for e in rule.placed(ir.Placement.WIDENING, ir.Placement.CONTAINERS):
        annotations[f"exemptions.kupe.cloud/{e.id}"] = _exemption_note(e)
    validate: dict[str, Any] = {"failureAction": _ACTION[rule.level]}
    if rule.enforced_in:
        # A staged rule already denies in these namespaces; the selector reads the label
        # Kubernetes sets on every namespace, so no namespace pattern is read as a wildcard.
        validate["failureActionOverrides"] = [{"action": "Enforce", "namespaceSelector": _namespaces(rule.enforced_in)}]
    validate["message"] = _message(rule)
    validate["allowExistingViolations"] = False  # per rule in Kyverno; the foreach compares per check and subject
    validate["foreach"] = foreach
    spec: dict[str, Any] = {"background": True}
    if rule.level is ir.Level.RECOMMENDED and rule.audit_action is ir.AuditAction.WARN:
        spec["emitWarning"] = True  # Audit failures also come back to the client as admission warnings
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": rule.id, "annotations": annotations},
        "spec": {
            **spec,
            "rules": [{
                "name": rule.id,
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "preconditions": _preconditions(rule),
                "validate": validate,
            }],
        },
    }


def exception_document(exemption: ir.Exemption, rules: list[ir.ResolvedRule]) -> dict[str, Any]:
    """A PolicyException skipping the rules (and their autogen rules) for the objects the waiver selects."""
    for value in (v for pair in exemption.labels for v in pair):
        if _WILDCARDS.search(value):
            raise Lowering(rules[0], BACKEND).unsupported(exemption, exemption.loc, f"Kyverno reads {value!r} as a wildcard")
    resources: dict[str, Any] = {"kinds": sorted({t.kind for r in rules for t in r.targets})}
    if exemption.namespaces:
        resources["namespaceSelector"] = _namespaces(exemption.namespaces)
    if exemption.labels:
        resources["selector"] = {"matchLabels": dict(exemption.labels)}
    spec: dict[str, Any] = {
        "exceptions": [{"policyName": r.id, "ruleNames": [r.id, *kyverno_autogen_rules(r.id, controllers_of(r))]} for r in rules],
        "match": {"any": [{"resources": resources}]},
    }
    if exemption.names:
        # Not `match.names`: Kyverno matches those against generateName when the name is empty.
        names = f"contains({literal(list(exemption.names))}, {path('request.object.metadata', ('name',))})"
        spec["conditions"] = {"all": [{"key": variable(names), "operator": "Equals", "value": True}]}
    return {
        "apiVersion": "kyverno.io/v2",
        "kind": "PolicyException",
        "metadata": {
            "name": exemption.id,
            "namespace": KYVERNO_EXCEPTION_NAMESPACE,
            "annotations": exemption_annotations(exemption),
        },
        "spec": spec,
    }


_SCHEMAS = {("kyverno.io/v1", "ClusterPolicy"): "clusterpolicy", ("kyverno.io/v2", "PolicyException"): "policyexception"}


@cache
def _validator(stem: str) -> StrictSchema:
    """Kyverno's CRD schema for one kind, exported strict from cloudcoil-models-kyverno (compiler/schemas)."""
    return StrictSchema(json.loads((SCHEMA_DIR / f"{stem}.schema.json").read_text(encoding="utf-8")))


def validate_strictly(document: dict[str, Any], where: str) -> None:
    """Validate against Kyverno's CRD schema; unknown fields and wrong types are refused."""
    stem = _SCHEMAS.get((document.get("apiVersion"), document.get("kind")))
    if stem is None:
        raise ArtifactError(f"{where}: unexpected {document.get('apiVersion')} {document.get('kind')}")
    check_schema(where, document, _validator(stem))


class KyvernoBackend(Backend):
    name = BACKEND
    title = f"Kyverno {MIN_VERSION[:4]}+ (ClusterPolicy, PolicyException)"

    def rule_files(self, rule: ir.ResolvedRule, program: ir.Program) -> dict[str, str]:
        policy_set = next(ps for ps in program.policy_sets if ps.id == rule.rule.policy_set)
        return {f"kyverno/policies/{rule.id}.yaml": _file(rule.rule.loc, policy_document(rule, policy_set))}

    def program_files(self, program: ir.Program, files: dict[str, str]) -> dict[str, str]:
        """A PolicyException per exemption that waives whole objects, and the kustomization."""
        waived_rules: dict[str, list[ir.ResolvedRule]] = {}
        for rule in program.rules:
            for waiver in rule.placed(ir.Placement.NAMESPACES, ir.Placement.OBJECTS):
                waived_rules.setdefault(waiver.id, []).append(rule)
        exceptions = {f"kyverno/exceptions/{e.id}.yaml": _file(e.loc, exception_document(e, waived_rules[e.id]))
                      for e in program.exemptions if e.id in waived_rules}
        return {**exceptions, "kyverno/kustomization.yaml": kustomization(program, self.name, [*files, *exceptions], notes=(
            f"`kubectl apply -k` installs every ClusterPolicy and PolicyException (Kyverno {MIN_VERSION[:4]}+ must be installed).",))}

    def parse_back(self, files: dict[str, str]) -> None:
        """Every file validates against Kyverno's CRDs (the YAML was read back as it was emitted)."""
        check_kustomizations(files)
        for path, text in sorted(files.items()):
            if not path.endswith("kustomization.yaml"):
                for document in documents(path, text):
                    validate_strictly(document, path)


def _file(source: ir.Loc, document: dict[str, Any]) -> str:
    return render("_document.yaml.j2", source=str(source), body=document)
