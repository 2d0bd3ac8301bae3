"""Where a violation is: the container or volume, the field path in the object, its actual value.

The engines give verdicts per rule; a report needs more. The reference lowering (the Rego
backend, docs/semantics.md) says which subject fails which check of a rule in each violation
entry (`check`, `container` or `volume`, `field`); this module only *reads* the object to turn
that into the full field path (`spec.template.spec.containers[1].securityContext.privileged`)
and the value found there. It judges nothing: no predicate is evaluated here.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from compiler import ir
from compiler.passes import POD_TARGETS

from ..adapters import AdapterError, Request
from ..adapters.rego import RegoAdapter

_VERDICT = {"deny": "deny", "audit": "audit"}
Entry = tuple[str, dict[str, Any]]  # a verdict (deny | audit) and a violation entry of the reference lowering


@dataclass(frozen=True)
class Finding:
    """One subject failing one check of a rule."""

    rule: str
    verdict: str  # deny | audit, as the reference lowering gives it
    message: str
    subject: str  # "container app", "volume sock" or "pod spec"
    field: str  # the full path in the object
    value: str  # the value found there, as JSON, or "unset"


class Explainer:
    """The Rego backend's violation entries for a request, located in its object."""

    def __init__(self, program: ir.Program, adapter: RegoAdapter) -> None:
        self.rules = {r.id: r for r in program.rules}
        self.adapter = adapter

    def findings(self, request: Request, rules: Collection[str] | None = None) -> list[Finding]:
        """Every violation entry of the request (of `rules`; None: all), located; an engine failure leaves no findings."""
        try:
            return self.located(request.subject, self.adapter.violations(request, rules))
        except AdapterError:
            return []

    def entries(self, manifest: dict[str, Any], rules: Collection[str]) -> list[Entry]:
        """The violation entries of `rules` for a manifest's creation (what `located` reads), as conftest
        sees it; none when the engine fails."""
        try:
            return [(verdict, entry) for verdict, entry in self.adapter.manifest_violations(manifest, rules) if entry.get("rule") in rules]
        except AdapterError:
            return []

    def located(self, obj: dict[str, Any], entries: list[Entry]) -> list[Finding]:
        """The entries, each located in `obj`."""
        return sorted({self._finding(obj, verdict, entry) for verdict, entry in entries if entry.get("rule") in self.rules},
                      key=lambda f: (f.rule, f.subject, f.field))

    def _finding(self, obj: dict[str, Any], verdict: str, entry: dict[str, Any]) -> Finding:
        rule = self.rules[entry["rule"]]
        check = rule.rule.checks[int(entry.get("check", 0))]
        target = POD_TARGETS[str(obj.get("kind"))]
        spec = _walk(obj, target.pod_spec_path)
        base = list(target.pod_spec_path)
        ref = check.predicate.ref
        if isinstance(check.subject, ir.PodSpec):
            subject, item = "pod spec", spec
        else:
            name = entry.get("container") if isinstance(check.subject, ir.EachContainer) else entry.get("volume")
            lists = check.subject.lists if isinstance(check.subject, ir.EachContainer) else ("volumes",)
            subject = f"{'container' if isinstance(check.subject, ir.EachContainer) else 'volume'} {name or '(unnamed)'}"
            item = None
            for list_name in lists:
                items = spec.get(list_name) if isinstance(spec, dict) else None
                index = next((i for i, x in enumerate(items or []) if isinstance(x, dict) and x.get("name", "") == name), None)
                if isinstance(items, list) and index is not None:
                    base, item = [*base, list_name, index], items[index]
                    break
        path = list(ref.container_path if isinstance(ref, ir.EffectiveRef) else ref.path)
        value = _walk(item, path)
        if value is None and isinstance(ref, ir.EffectiveRef):  # unset here: the pod's value applies
            base, path, value = list(target.pod_spec_path), list(ref.pod_path), _walk(spec, ref.pod_path)
        return Finding(rule.id, _VERDICT.get(verdict, verdict), str(entry.get("msg", "")), subject,
                       _render(base + path), "unset" if value is None else json.dumps(value, sort_keys=True))


def _walk(value: Any, path: tuple[str, ...] | list[str]) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _render(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
