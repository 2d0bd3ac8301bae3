"""The Rego backend evaluated by rego-cpp (regopy), as OPA sees an AdmissionReview and conftest a manifest."""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import cached_property
from typing import Any

import regopy

from . import Adapter, AdapterError, Request, admission_request

_VERDICT = {"deny": "deny", "warn": "audit"}
_ENTRY = "result = data.main"


def entries(main: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(verdict, violation entry) for each `deny` (deny) and `warn` (audit) of `data.main`, as OPA and conftest read them."""
    return [(verdict, violation) for entry_point, verdict in _VERDICT.items() for violation in main.get(entry_point, [])]


class MainBundle:
    """Rego modules compiled once into a rego-cpp bundle that evaluates `data.main` (the rego backend's, conftest's).

    A plain query recompiles every module (~110 ms); a prebuilt bundle evaluates in ~7 ms."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.interpreter = regopy.Interpreter()  # kept alive with the bundle it built
        for path, text in sorted(modules.items()):
            self.interpreter.add_module(path, text)
        self.bundle = self.interpreter.build(_ENTRY)
        if not self.bundle.ok():
            raise AdapterError("the rego backend's modules do not compile in rego-cpp")

    def main(self, interpreter: regopy.Interpreter) -> dict[str, Any]:
        """`data.main` for the input set on `interpreter` (any interpreter runs a built bundle)."""
        try:
            output = interpreter.query_bundle(self.bundle)
        except (regopy.RegoError, ValueError) as error:  # ValueError: rego-cpp wrote output that is not JSON
            raise AdapterError(f"rego-cpp failed: {error}") from None
        if not output.ok() or not output.results:
            raise AdapterError(f"rego-cpp failed: {output}")
        return output.results[0].bindings["result"]


class RegoAdapter(Adapter):
    backend = "rego"
    engine = f"regopy {regopy.__version__} (rego-cpp)"

    def __init__(self, artifacts: dict[str, str]) -> None:
        modules = {path: text for path, text in artifacts.items() if path.startswith("rego/") and path.endswith(".rego")}
        # rego/<rule>.rego is one rule's package; main.rego and lib/ serve every rule.
        rule_paths = {path for path in modules if path.count("/") == 1 and path != "rego/main.rego"}
        self.rule_modules = {path.removeprefix("rego/").removesuffix(".rego"): path for path in rule_paths}
        self.shared = {path: text for path, text in modules.items() if path not in rule_paths}
        self.modules = modules
        self.per_rule: dict[str, MainBundle] = {}  # built on first use
        self.interpreter = regopy.Interpreter()  # holds the input; runs every bundle
        # The input last set, and `data.main` of each bundle run on it (None: the whole bundle): an
        # audit asks for the verdicts and then for where the violations are, on the same input.
        self._input: str | None = None
        self._mains: dict[str | None, dict[str, Any]] = {}

    @cached_property
    def whole(self) -> MainBundle:
        """Every rule's module in one bundle, built on first use (~0.1 s): an audit asks per rule."""
        return MainBundle(self.modules)

    def _bundles(self, rules: Collection[str] | None) -> list[MainBundle]:
        """The whole bundle, or one per rule: its module beside main.rego and the library, where main's
        clauses for the other rules read undefined packages and add nothing, as OPA reads them."""
        if rules is None:
            return [self.whole]
        unknown = sorted(set(rules) - set(self.rule_modules))
        if unknown:
            raise AdapterError(f"no Rego module for rules {unknown}")
        for rule in rules:
            if rule not in self.per_rule:
                path = self.rule_modules[rule]
                self.per_rule[rule] = MainBundle({**self.shared, path: self.modules[path]})
        return [self.per_rule[rule] for rule in rules]

    def _query(self, document: dict[str, Any], rules: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(verdict, violation entry) for each violation main.rego reports. The input is set once (rego-cpp
        parses it in ~1 ms) on one interpreter, which runs every bundle on it; a bundle already run
        on the same input is not run again."""
        bundles = dict(zip([None] if rules is None else rules, self._bundles(rules)))
        text = json.dumps(document)
        if text != self._input:
            self._input, self._mains = None, {}
            self.interpreter.set_input_term(text)
            self._input = text
        for key, bundle in bundles.items():
            if key not in self._mains:
                self._mains[key] = bundle.main(self.interpreter)
        return [entry for key in bundles for entry in entries(self._mains[key])]

    def violations(self, request: Request, rules: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The request as OPA sees it behind an admission webhook (an AdmissionReview): each violation
        with its verdict (its entry names the rule, the check, the container or volume, and the field)."""
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": admission_request(request)}
        return self._query(review, rules)

    def manifest_violations(self, obj: dict[str, Any], rules: Collection[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """`violations` of the object's creation, as conftest sees the manifest."""
        return self._query(obj, rules)

    def evaluate(self, request: Request, rules: Collection[str] | None = None) -> dict[str, str]:
        """The request's verdicts; a CREATE also as conftest sees the manifest, which must give the same."""
        as_review = _verdicts(self.violations(request, rules))
        if self.equivalences and request.operation == "CREATE" and not request.subresource:
            as_manifest = _verdicts(self.manifest_violations(request.subject, rules))
            if as_manifest != as_review:
                raise AdapterError(f"manifest input gives {as_manifest}, AdmissionReview input gives {as_review}")
        return as_review


def _verdicts(violations: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    for verdict, violation in violations:
        rule = violation.get("rule")
        if verdicts.get(rule, verdict) != verdict:
            raise AdapterError(f"rule {rule} both denies and warns")
        verdicts[rule] = verdict
    return verdicts
