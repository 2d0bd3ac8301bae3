"""Gatekeeper's K8sNativeValidation (CEL) engine, emulated on the proven CEL layer (conformance.engines.cel).

Why: a ConstraintTemplate may carry its validation as ``code: [{engine: K8sNativeValidation,
source: {...}}]``, which Gatekeeper (pkg/drivers/k8scel) evaluates with the API server's
ValidatingAdmissionPolicy validator instead of Rego. This module reproduces that driver's
behaviour, re-implemented from its source and Kubernetes' (never copied):

Template (checked when the engine is built, as Gatekeeper does when it ingests the template)
    The first K8sNativeValidation entry of the target's ``code``; its ``source`` keys are
    ``validations`` (``expression``, ``message``, ``messageExpression``), ``variables``,
    ``matchCondition`` (singular: Gatekeeper's JSON key; unknown keys such as ``matchConditions``
    are ignored, as Gatekeeper's unstructured conversion ignores them), ``failurePolicy``
    (``Fail`` or ``Ignore``, default ``Fail``) and ``generateVAP`` (not used here). A variable named
    ``params`` or ``anyObject``, or a variable or match condition named with the prefix
    ``gatekeeper_internal_``, is refused. Compile errors are *not* refused: Gatekeeper cannot see
    them at ingestion and reports them when it evaluates (below).

Bindings
    ``object`` (null on DELETE: the driver unsets it), ``oldObject``, ``request`` (the
    AdmissionRequest as the API server's CEL sees it: no object/oldObject, empty fields left out,
    an operation other than CREATE/UPDATE/DELETE/CONNECT read as ""), ``namespaceObject`` (the
    request's Namespace, when known), and ``params`` = the whole Constraint, declared for
    variables only: in validations, match conditions and message expressions a bare ``params``
    does not compile. Two driver variables precede the template's: ``variables.anyObject``
    (oldObject on DELETE, else object) and ``variables.params`` (the Constraint's spec.parameters,
    or null), each evaluated from Gatekeeper's own expression text. Values keep their JSON nulls
    (Gatekeeper decodes the request's raw JSON; only the API server's typed decoding drops nulls).

Variables
    Evaluated in order; each may read only earlier ones (Gatekeeper types ``variables`` field by
    field as it compiles them, so a later or unknown name is a compile error). Kubernetes
    evaluates them lazily: one that fails is an error only in an expression that reads it, where
    it is reported as ``composited variable "x" fails to evaluate: …`` (or ``… fails to compile``).

Verdict (the API server's validator, then the driver)
    Match conditions: any false → no violation; otherwise any error → under Fail one violation
    whose message is the error(s), under Ignore none. Validations: an error → under Fail a
    violation whose message is ``expression '<e>' resulted in error: <why>`` (or
    ``compilation error: <why>``), under Ignore nothing; a result other than true → a violation
    whose message is the messageExpression's (a one-line, non-blank string of at most 5 KiB,
    trimmed), else ``message``, else ``failed expression: <e>``. Gatekeeper turns each denying
    decision into a result with that message and no details. So an evaluation error is reported
    as a violation, never a silent pass; this emulator marks such violations (``error``) so that
    callers can tell them from a false validation.

Not emulated: the CEL cost budgets, and Kubernetes CEL libraries the CEL layer lacks (quantity,
url, ip/cidr, format, authorizer): a template using one is refused with TemplateError rather than
judged wrongly.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..cel import CelCompileError, CelError, CelEvaluator, VariableBindings, evaluator_for, to_cel

__all__ = ["CEL_ENGINE", "CelProgram", "CelTemplateError"]

CEL_ENGINE = "K8sNativeValidation"
_RESERVED_PREFIX = "gatekeeper_internal_"
_ANY_OBJECT = 'has(request.operation) && request.operation == "DELETE" && object == null ? oldObject : object'
_PARAMS = "!has(params.spec) ? null : !has(params.spec.parameters) ? null: params.spec.parameters"
_DRIVER_VARIABLES = (("anyObject", _ANY_OBJECT), ("params", _PARAMS))
_BASE = ("namespaceObject", "object", "oldObject", "request", "variables")
_OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
_MAX_MESSAGE_BYTES = 5 * 1024
_VARIABLE_REF = re.compile(r"\bvariables\s*\.\s*([_a-zA-Z][_a-zA-Z0-9]*)")
_MISSING_KEY = re.compile(r'Key not found in map : "([^"]*)"')
_UNEMULATED = re.compile(r"\b(quantity|isQuantity|url|isURL|ip|isIP|cidr|isCIDR|format|authorizer)\s*[.(]")


class CelTemplateError(ValueError):
    """Gatekeeper would refuse the K8sNativeValidation source, or it cannot be emulated."""


@dataclass(frozen=True)
class _Expression:
    """One expression of the source, with the compile error Gatekeeper would meet (if any)."""

    text: str
    compile_error: str | None


def _source(target: Mapping[str, Any]) -> Mapping[str, Any]:
    for code in target.get("code") or []:
        if code.get("engine") == CEL_ENGINE:
            source = code.get("source")
            if not isinstance(source, Mapping):
                raise CelTemplateError(f"{CEL_ENGINE} source must be an object")
            return source
    raise CelTemplateError(f"template has no {CEL_ENGINE} code entry")


class CelProgram:
    """A template's K8sNativeValidation source, compiled once, reviewing requests against Constraints."""

    def __init__(self, target: Mapping[str, Any]) -> None:
        source = _source(target)
        policy = source.get("failurePolicy") or "Fail"
        if policy not in ("Fail", "Ignore"):
            raise CelTemplateError(f"unrecognized failure policy: {policy}")
        self.ignore = policy == "Ignore"
        self._for_variables = evaluator_for(tuple(sorted((*_BASE, "params"))))
        self._for_conditions = evaluator_for(_BASE)
        known = [name for name, _ in _DRIVER_VARIABLES]
        self.variables: list[tuple[str, _Expression]] = [
            (name, _Expression(text, None)) for name, text in _DRIVER_VARIABLES]
        for variable in source.get("variables") or []:
            name = variable.get("name") or ""
            if name.startswith(_RESERVED_PREFIX) or name in ("params", "anyObject"):
                raise CelTemplateError(f"{name!r} is not a valid variable name (reserved)")
            self.variables.append((name, self._compile(self._for_variables, variable.get("expression") or "", known)))
            known.append(name)
        self.conditions: list[tuple[str, _Expression]] = []
        for condition in source.get("matchCondition") or []:
            name = condition.get("name") or ""
            if name.startswith(_RESERVED_PREFIX):
                raise CelTemplateError(f"{name!r} is not a valid match condition name (reserved prefix)")
            self.conditions.append((name, self._compile(self._for_conditions, condition.get("expression") or "", known)))
        self.validations: list[tuple[_Expression, str, _Expression | None]] = []
        for validation in source.get("validations") or []:
            message_expression = validation.get("messageExpression") or ""
            self.validations.append((
                self._compile(self._for_conditions, validation.get("expression") or "", known),
                validation.get("message") or "",
                self._compile(self._for_conditions, message_expression, known) if message_expression else None,
            ))

    @staticmethod
    def _compile(evaluator: CelEvaluator, text: str, known: list[str]) -> _Expression:
        """Compile as Gatekeeper would: `variables` has a field per variable declared before this expression."""
        try:
            evaluator.compile(text)
        except CelCompileError as error:
            if _UNEMULATED.search(text):
                raise CelTemplateError(f"uses a Kubernetes CEL library the emulator lacks: {text.strip()[:120]}") from None
            return _Expression(text, str(error).removeprefix("compilation failed: "))
        undefined = [name for name in _VARIABLE_REF.findall(text) if name not in known]
        return _Expression(text, f"undefined field '{undefined[0]}'" if undefined else None)

    def evaluate(self, request: Mapping[str, Any], constraint: Mapping[str, Any],
                 namespace: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The violations Gatekeeper reports: ``{"msg", "details": {}, "error"}`` per denying decision."""
        operation = request.get("operation") or ""
        data = {
            "object": None if operation == "DELETE" else to_cel(request.get("object"), drop_nulls=False),
            "oldObject": to_cel(request.get("oldObject"), drop_nulls=False),
            "request": to_cel(_cel_request(request), drop_nulls=False),
            "namespaceObject": to_cel(_namespace_object(namespace), drop_nulls=False),
        }
        run = _Run(self, data, to_cel(dict(constraint), drop_nulls=False))
        errors: list[str] = []
        for name, condition in self.conditions:
            try:
                value = run.evaluate(self._for_conditions, condition)
            except CelError as error:
                errors.append(str(error))
                continue
            if value is False:
                return []
        if errors:
            message = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            return [] if self.ignore else [{"msg": message, "details": {}, "error": True}]
        found = []
        for expression, message, message_expression in self.validations:
            try:
                verdict = run.evaluate(self._for_conditions, expression)
            except CelError as error:
                if not self.ignore:
                    found.append({"msg": str(error), "details": {}, "error": True})
                continue
            if verdict is not True:
                found.append({"msg": self._message(run, expression, message, message_expression), "details": {}, "error": False})
        return found

    def _message(self, run: _Run, expression: _Expression, message: str, message_expression: _Expression | None) -> str:
        """messageExpression's one-line non-blank string, else message, else the failed expression."""
        if message_expression is not None:
            try:
                text = run.evaluate(self._for_conditions, message_expression)
            except CelError:
                text = None
            if isinstance(text, str):
                text = text.strip()
                if text and "\n" not in text and len(text.encode()) <= _MAX_MESSAGE_BYTES:
                    return text
        return message.strip() or f"failed expression: {expression.text.strip()}"


class _Run:
    """One review: the variables' values (in order) and errors, shared by every expression."""

    def __init__(self, program: CelProgram, data: dict[str, Any], constraint: Any) -> None:
        self.data = data
        self.errors: dict[str, str] = {}
        bindings = VariableBindings(program._for_variables, {**data, "params": constraint})
        for name, expression in program.variables:
            if expression.compile_error is not None:
                self.errors[name] = f'composited variable "{name}" fails to compile: {expression.compile_error}'
                continue
            try:
                bindings.add(name, program._for_variables.evaluate(expression.text, bindings.activation(expression.text)))
            except CelError as error:
                self.errors[name] = f'composited variable "{name}" fails to evaluate: {self._why(expression.text, error)}'
        self.values = bindings.values
        self._activation = program._for_conditions.bind({**data, "variables": self.values}, normalise=False)

    def _why(self, text: str, error: CelError) -> str:
        """The error, or the failed variable's own when that is what the expression tripped on."""
        missing = _MISSING_KEY.search(str(error))
        if missing and missing.group(1) in self.errors and missing.group(1) in _VARIABLE_REF.findall(text):
            return self.errors[missing.group(1)]
        return str(error)

    def evaluate(self, evaluator: CelEvaluator, expression: _Expression) -> Any:
        """The expression's value; CelError carries the message Gatekeeper would report."""
        if expression.compile_error is not None:
            raise CelError(f"compilation error: {expression.compile_error}")
        try:
            return evaluator.evaluate(expression.text, self._activation)
        except CelError as error:
            raise CelError(f"expression '{expression.text}' resulted in error: {self._why(expression.text, error)}") from None


def _cel_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The AdmissionRequest the validator rebuilds from the request's attributes (JSON omitempty)."""
    kind = request.get("kind") or {}
    resource = request.get("resource") or {}
    gvk = {key: kind.get(key) or "" for key in ("group", "version", "kind")}
    gvr = {key: resource.get(key) or "" for key in ("group", "version", "resource")}
    user = request.get("userInfo") or {}
    operation = request.get("operation") or ""
    cel_request: dict[str, Any] = {
        "uid": "", "kind": gvk, "resource": gvr, "requestKind": dict(gvk), "requestResource": dict(gvr),
        "operation": operation if operation in _OPERATIONS else "",
        "userInfo": {key: user[key] for key in ("username", "uid", "groups", "extra") if user.get(key)},
        "dryRun": bool(request.get("dryRun")),
    }
    for key in ("subResource", "name", "namespace"):
        if request.get(key):
            cel_request[key] = request[key]
    if request.get("subResource"):
        cel_request["requestSubResource"] = request["subResource"]
    if request.get("options"):
        cel_request["options"] = request["options"]
    return cel_request


def _namespace_object(namespace: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the validator exposes of a Namespace: metadata (no managedFields/ownerReferences), spec, status."""
    if namespace is None:
        return None
    metadata = {k: v for k, v in (namespace.get("metadata") or {}).items() if k not in ("managedFields", "ownerReferences")}
    exposed = {"metadata": metadata}
    exposed.update({k: namespace[k] for k in ("spec", "status") if namespace.get(k) is not None})
    return exposed
