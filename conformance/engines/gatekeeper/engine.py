"""Evaluate a Gatekeeper ConstraintTemplate + Constraint against objects, as Gatekeeper would.

``engine="rego"``: the template's Rego runs in rego-cpp (regopy) with Gatekeeper's input shape
(``input.review`` = the AdmissionRequest, ``input.parameters`` = the Constraint's
``spec.parameters``, ``data.inventory`` = synced cluster objects). ``engine="cel"``: the
template's K8sNativeValidation entry runs as Gatekeeper's CEL driver does (``cel_program.py``).
Either way the Constraint's ``match`` and ``enforcementAction`` are applied in Python with
Gatekeeper's semantics (see ``match.py``).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import regopy
from regopy import interpreter as _rego_c
from regopy import output as _rego_out

from .cel_program import CelProgram, CelTemplateError
from .match import MatchError, is_namespace, request_matches
from ..objects import object_meta
from .rego_source import (
    RegoSourceError,
    UnsupportedBuiltinError,
    check_v1,
    hoist_nested_refs,
    package_of,
    prepare_v0,
    shim_sprintf,
    tokenize,
    unsupported_calls,
)

__all__ = [
    "ConstraintTemplateEngine",
    "EvaluationError",
    "TemplateError",
    "Violation",
    "admission_request",
    "inventory_tree",
    "matches",
    "review",
]

TARGET = "admission.k8s.gatekeeper.sh"
ENFORCEMENT_ACTIONS = ("deny", "dryrun", "warn")
WEBHOOK_POINT = "validation.gatekeeper.sh"
GATOR_POINT = "gator.gatekeeper.sh"
_STRENGTH = {"deny": 3, "warn": 2, "dryrun": 1}
_INVENTORY_CACHE = 4  # interpreters kept per template, one per distinct inventory


class TemplateError(ValueError):
    """The ConstraintTemplate would not be accepted by Gatekeeper, or cannot be emulated."""


class EvaluationError(RuntimeError):
    """The template's Rego failed at evaluation time (Gatekeeper reports a review error)."""


@dataclass(frozen=True)
class Violation:
    """One element of the template's ``violation`` set, with the Constraint's effective action."""

    msg: str
    details: Any
    enforcement_action: str  # "deny" | "dryrun" | "warn"
    error: bool = False  # reported because an expression failed (CEL, failurePolicy Fail), not a false validation


class _Program(Protocol):
    """What an evaluation engine for one template provides (Rego or CEL)."""

    def violations(self, request: Mapping[str, Any], constraint: Mapping[str, Any],
                   namespace: Mapping[str, Any] | None, inventory: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Raw violation elements (each with ``msg``, optional ``details`` and ``error``)."""
        ...


class _SharedInput:
    """One interpreter holding the last input, on which every template's bundle runs.

    rego-cpp parses an input at ~1 µs per byte; a bundle (its data included) runs on any
    interpreter's input, so a review judged by many constraints with the same parameters sets
    its input once (docs/engine-notes.md)."""

    def __init__(self) -> None:
        self.interpreter: regopy.Interpreter | None = None  # made on first use, not at import
        self.text: str | None = None

    def set(self, text: str) -> regopy.Interpreter:
        if self.interpreter is None:
            self.interpreter = regopy.Interpreter()
        if text != self.text:
            self.text = None  # unknown if set_input_term fails
            self.interpreter.set_input_term(text)
            self.text = text
        return self.interpreter


_INPUT = _SharedInput()


class _RegoProgram:
    """The template's Rego compiled by regopy into a bundle; one per distinct inventory.

    rego-cpp recompiles every module on each plain ``query``; querying a prebuilt bundle
    skips that (measured ~8 ms -> ~1.3 ms per review for the capabilities template).
    """

    def __init__(self, modules: list[tuple[str, str]], package: str) -> None:
        self._modules = modules
        self._query = f"x := data.{package}.violation"
        self._compiled: OrderedDict[str, tuple[regopy.Interpreter, regopy.Bundle]] = OrderedDict()
        probe, _ = self._compile({})
        unsupported = unsupported_calls([src for _, src in modules], probe.is_builtin)
        if unsupported:
            raise UnsupportedBuiltinError(
                "rego-cpp cannot evaluate (it would silently yield undefined): " + ", ".join(unsupported)
            )
        try:
            self.evaluate({"review": {}, "parameters": {}}, {})
        except EvaluationError as err:
            raise TemplateError(f"template Rego does not compile in rego-cpp: {err}") from None

    def _compile(self, inventory: Mapping[str, Any]) -> tuple[regopy.Interpreter, regopy.Bundle]:
        key = json.dumps(inventory, sort_keys=True)
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
            return compiled
        interp = regopy.Interpreter()
        try:
            for name, source in self._modules:
                interp.add_module(name, source)
            if inventory:
                interp.add_data({"inventory": inventory})
            bundle = interp.build(self._query)
        except regopy.RegoError as err:
            raise TemplateError(f"template Rego does not compile in rego-cpp: {err}") from None
        compiled = self._compiled[key] = (interp, bundle)
        if len(self._compiled) > _INVENTORY_CACHE:
            self._compiled.popitem(last=False)
        return compiled

    def violations(self, request: Mapping[str, Any], constraint: Mapping[str, Any],
                   namespace: Mapping[str, Any] | None, inventory: Sequence[Mapping[str, Any]]) -> list[dict]:
        rego_input = {"review": request, "parameters": (constraint.get("spec") or {}).get("parameters") or {}}
        return self.evaluate(rego_input, inventory_tree(inventory))

    def evaluate(self, rego_input: Mapping[str, Any], inventory: Mapping[str, Any]) -> list[dict]:
        # regopy's Output wrapper crashes on error outputs (it json-parses them), so read the
        # raw C output: "undefined", an "(error ...)" s-expression, or a JSON result.
        _, bundle = self._compile(inventory)
        interp = _INPUT.set(json.dumps(rego_input))
        impl = _rego_c.rego_bundle_query(interp._impl, bundle._impl)
        try:
            ok, text = _rego_out.rego_output_ok(impl), _rego_out.rego_output_string(impl)
        finally:
            _rego_out.rego_free_output(impl)
        text = text.strip()
        if not ok or text.startswith("(error") or text.startswith("Errors"):
            raise EvaluationError(text)
        if text == "undefined":
            return []
        value = json.loads(text)["bindings"]["x"]
        if isinstance(value, dict):  # only if a v0 partial set slipped past the rewrite
            raise EvaluationError(f"violation evaluated to an object, not a set: {text[:200]}")
        return value


def _rego_sources(target: Mapping[str, Any]) -> tuple[str, list[str], str]:
    """(main rego, libs, rego version) from a target's classic ``rego`` or its ``code`` entry."""
    if target.get("rego"):
        return target["rego"], list(target.get("libs") or []), "v0"
    for code in target.get("code") or []:
        if code.get("engine") == "Rego":
            source = code.get("source") or {}
            version = source.get("version") or "v0"
            if version not in ("v0", "v1"):
                raise TemplateError(f"unknown Rego version {version!r}")
            return source.get("rego") or "", list(source.get("libs") or []), version
    raise TemplateError("template has no Rego source (neither targets[].rego nor a Rego code entry)")


def _build_rego_program(target: Mapping[str, Any]) -> _RegoProgram:
    main, libs, version = _rego_sources(target)
    modules: list[tuple[str, str]] = []
    try:
        package = package_of(main)
        if not any(t.text == "violation" and t.depth == 0 and t.line_start for t in tokenize(main)):
            raise TemplateError("template Rego must define the rule `violation`")
        for index, source in enumerate([main, *libs]):
            if index and not package_of(source).startswith("lib."):
                raise TemplateError(f"lib {index} has package {package_of(source)!r}: libs must be under `lib.`")
            if version == "v0":
                source = prepare_v0(source)
            else:
                check_v1(source)
            source = shim_sprintf(hoist_nested_refs(source))
            modules.append(("template" if index == 0 else f"lib{index}", source))
    except RegoSourceError as err:
        if isinstance(err, UnsupportedBuiltinError):
            raise
        raise TemplateError(str(err)) from None
    return _RegoProgram(modules, package)


def inventory_tree(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``data.inventory`` as Gatekeeper's sync lays it out (cluster/namespace, groupversion, kind, name)."""
    tree: dict[str, Any] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        gv, kind, name = obj.get("apiVersion") or "", obj.get("kind") or "", meta.get("name") or ""
        if not gv or not kind:
            raise ValueError(f"inventory object {name!r} has no apiVersion/kind")
        ns = meta.get("namespace")
        path = ["namespace", ns, gv, kind] if ns else ["cluster", gv, kind]
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[name] = obj
    return tree


def admission_request(
    obj: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    old_object: Mapping[str, Any] | None = None,
    user_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The AdmissionRequest Gatekeeper would put in ``input.review`` for this object."""
    subject = obj or old_object
    if not subject:
        raise MatchError("neither object nor oldObject is defined")
    api_version = subject.get("apiVersion") or ""
    group, _, version = api_version.rpartition("/")
    meta = object_meta(subject)
    request: dict[str, Any] = {
        "uid": "",
        "kind": {"group": group, "version": version, "kind": subject.get("kind") or ""},
        "resource": {"group": "", "version": "", "resource": ""},
        "operation": operation,
        "userInfo": dict(user_info or {}),
        "object": obj,
        "oldObject": old_object,
    }
    if meta.get("name"):
        request["name"] = meta["name"]
    if meta.get("namespace"):
        request["namespace"] = meta["namespace"]
    return request


def _effective_actions(constraint: Mapping[str, Any], enforcement_point: str) -> list[str]:
    """Actions the Constraint takes at this enforcement point ([] = not enforced there)."""
    spec = constraint.get("spec") or {}
    action = spec.get("enforcementAction") or "deny"
    if action in ENFORCEMENT_ACTIONS:
        return [action]
    if action != "scoped":
        raise ValueError(f"unrecognized enforcementAction {action!r}")
    actions = []
    for scoped in spec.get("scopedEnforcementActions") or []:
        points = {p.get("name") for p in scoped.get("enforcementPoints") or []}
        if enforcement_point in points or "*" in points:
            if scoped.get("action") not in ENFORCEMENT_ACTIONS:
                raise ValueError(f"unrecognized scoped enforcement action {scoped.get('action')!r}")
            actions.append(scoped["action"])
    return actions


def _namespace_from_inventory(name: str, inventory: Sequence[Mapping[str, Any]]) -> dict | None:
    """Gatekeeper resolves the request's Namespace from its synced cache; gator from the inventory."""
    for obj in inventory:
        if is_namespace(obj) and (obj.get("metadata") or {}).get("name") == name:
            return dict(obj)
    return None


class _CelProgram:
    """The template's K8sNativeValidation entry; it reads no inventory (no data.inventory in CEL)."""

    def __init__(self, target: Mapping[str, Any]) -> None:
        try:
            self._program = CelProgram(target)
        except CelTemplateError as err:
            raise TemplateError(str(err)) from None

    def violations(self, request: Mapping[str, Any], constraint: Mapping[str, Any],
                   namespace: Mapping[str, Any] | None, inventory: Sequence[Mapping[str, Any]]) -> list[dict]:
        return self._program.evaluate(request, constraint, namespace)


class ConstraintTemplateEngine:
    """One ConstraintTemplate, compiled once, reviewing objects against any of its Constraints.

    ``engine`` chooses the template's code Gatekeeper evaluates: ``"rego"`` (the ``rego`` field or
    a Rego code entry) or ``"cel"`` (the K8sNativeValidation code entry).
    """

    def __init__(self, template: Mapping[str, Any], *, engine: str = "rego") -> None:
        if template.get("kind") != "ConstraintTemplate":
            raise TemplateError(f"not a ConstraintTemplate: kind {template.get('kind')!r}")
        spec = template.get("spec") or {}
        self.kind: str = ((spec.get("crd") or {}).get("spec") or {}).get("names", {}).get("kind", "")
        if not self.kind:
            raise TemplateError("template has no spec.crd.spec.names.kind")
        targets = spec.get("targets") or []
        if len(targets) != 1 or targets[0].get("target") != TARGET:
            raise TemplateError(f"template must have exactly one target, {TARGET}")
        if engine not in ("rego", "cel"):
            raise ValueError(f"unknown engine {engine!r}: 'rego' or 'cel'")
        self.engine = engine
        self._program: _Program = _build_rego_program(targets[0]) if engine == "rego" else _CelProgram(targets[0])

    def _check_constraint(self, constraint: Mapping[str, Any]) -> None:
        if constraint.get("kind") != self.kind:
            raise ValueError(f"constraint kind {constraint.get('kind')!r} is not this template's {self.kind!r}")

    def review_request(
        self,
        constraint: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        namespace: Mapping[str, Any] | None = None,
        inventory: Sequence[Mapping[str, Any]] = (),
        enforcement_point: str = WEBHOOK_POINT,
        source: str = "Original",
    ) -> list[Violation]:
        """Review a raw AdmissionRequest (e.g. from an AdmissionReview) as Gatekeeper would."""
        self._check_constraint(constraint)
        request = dict(request)
        if request.get("operation") == "DELETE" and not request.get("object"):
            if not request.get("oldObject"):
                raise MatchError("DELETE request without oldObject")
            request["object"] = request["oldObject"]  # Gatekeeper reviews the deleted object
        if namespace is None and request.get("namespace"):
            namespace = _namespace_from_inventory(request["namespace"], inventory)
        actions = _effective_actions(constraint, enforcement_point)
        match = (constraint.get("spec") or {}).get("match")
        if not actions or not request_matches(
            match, [request.get("object"), request.get("oldObject")], namespace, source=source
        ):
            return []
        action = max(actions, key=_STRENGTH.__getitem__)
        violations = []
        for element in self._program.violations(request, constraint, namespace, inventory):
            if not isinstance(element, dict) or "msg" not in element:
                continue  # Gatekeeper only reports elements that carry a msg
            if not isinstance(element["msg"], str):
                raise EvaluationError(f"violation msg is not a string: {element['msg']!r}")
            violations.append(Violation(element["msg"], element.get("details", {}), action, bool(element.get("error"))))
        return violations

    def review(
        self,
        constraint: Mapping[str, Any],
        obj: Mapping[str, Any] | None,
        *,
        operation: str = "CREATE",
        old_object: Mapping[str, Any] | None = None,
        namespace: Mapping[str, Any] | None = None,
        user_info: Mapping[str, Any] | None = None,
        inventory: Sequence[Mapping[str, Any]] = (),
        enforcement_point: str = WEBHOOK_POINT,
    ) -> list[Violation]:
        """Violations of ``constraint`` by ``obj``; [] when the constraint does not match it."""
        request = admission_request(obj, operation=operation, old_object=old_object, user_info=user_info)
        return self.review_request(
            constraint, request, namespace=namespace, inventory=inventory, enforcement_point=enforcement_point
        )


def matches(
    constraint: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the Constraint's ``spec.match`` selects ``obj``.

    ``operation`` is accepted for symmetry with ``review``: Gatekeeper's match criteria never
    look at it (which operations reach Gatekeeper is the webhook configuration's business).
    """
    del operation
    return request_matches((constraint.get("spec") or {}).get("match"), [obj], namespace)


_ENGINES: OrderedDict[str, ConstraintTemplateEngine] = OrderedDict()
_ENGINE_CACHE = 32


def review(
    template: Mapping[str, Any] | ConstraintTemplateEngine,
    constraint: Mapping[str, Any],
    obj: Mapping[str, Any] | None,
    **kwargs: Any,
) -> list[Violation]:
    """One-shot ``ConstraintTemplateEngine(template).review(...)``, reusing compiled templates."""
    if not isinstance(template, ConstraintTemplateEngine):
        key = json.dumps(template, sort_keys=True)
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = ConstraintTemplateEngine(template)
            if len(_ENGINES) > _ENGINE_CACHE:
                _ENGINES.popitem(last=False)
        template = engine
    return template.review(constraint, obj, **kwargs)
