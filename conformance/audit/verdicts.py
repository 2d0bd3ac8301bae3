"""Verdicts for workloads from the backends' adapters, each backend compiled once per run.

Engines are slow per object (rego-cpp evaluates the 11 shipped rules in about 10 ms), so each
rule's verdict is cached by the object's *verdict key for that rule*: the part of the object that
the rule, its stage or its exemptions can read (docs/semantics.md). The engines judge an object
only on the rules whose key is new (each adapter evaluates just those rules' artifacts); every
other rule's verdict comes from an earlier object that read the same for that rule (two objects
may share the containers one rule reads and differ in what another reads). A key holds:

* `apiVersion` and `kind` (which rules apply, and where the pod spec is);
* the namespace, the name and the label values that an exemption or a stage names; any other
  namespace, name or value is replaced by one placeholder (nothing selects it), and only the
  label keys some exemption selects on are kept;
* in the pod spec, the pod-level fields the checks read, and for every container list and
  volume list the checks iterate, each item's checked fields (and container names when an
  exemption names containers), in order.

Every step of every path is kept exactly: a value that is not a mapping where the path goes on
(`securityContext: "x"`), a missing key and a null are three different keys. Two objects with
the same key are therefore judged alike by every engine that implements the semantics, and an
engine that reads anything else is a backend bug the conformance suite is there to catch. Each
distinct key is still evaluated by every chosen backend, so engine drift is found on real
inputs. An evaluation in which some engine failed is not cached. What a check reads comes from the IR (`Check.reads`), so a new subject or reference
says what it reads or fails loudly, never silently cached.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from compiler import ir, pipeline
from compiler.passes import POD_TARGETS

from ..adapters import Adapter, AdapterError, Request, admitted, all_adapters
from ..engines.decoding import Rejected
from ..adapters.rego import RegoAdapter
from .explain import Explainer, Finding
from .model import Disagreement, Violation, Workload
from .shared import CacheClient, SharedCache

Verdicts = dict[str, str]  # rule id → deny | audit, for violated rules
Outcome = Verdicts | str  # or the adapter's error
_OTHER = "\0other"  # a namespace or name no exemption names (cannot be a Kubernetes name)


def _walk(value: Any, path: tuple[str, ...]) -> tuple[Any, ...]:
    """The value at `path`, or exactly where and on what the walk stopped."""
    depth = 0
    for part in path:
        if not isinstance(value, dict):
            return ("stop", depth, value)
        try:
            value = value[part]
        except KeyError:
            return ("missing", depth)
        depth += 1
    return ("value", value)


def _only(program: ir.Program, rule: ir.ResolvedRule) -> ir.Program:
    """The program as one rule sees it: that rule and its exemptions (what its verdict key reads)."""
    return replace(program, rules=(rule,), exemptions=tuple(e for e in program.exemptions if rule.id in e.rules))


class VerdictKey:
    """Derives, from the IR, the part of an object that can change a verdict (see the module docstring)."""

    def __init__(self, program: ir.Program, *, names: bool = False) -> None:
        """`names`: also the names of the listed items (where a report locates a violation)."""
        exemptions = program.exemptions
        self.namespaces = {n for e in exemptions for n in e.namespaces} | {n for r in program.rules for n in r.enforced_in}
        self.names = {n for e in exemptions for n in e.names}
        label_values: dict[str, set[str]] = {}
        for exemption in exemptions:
            for k, v in exemption.labels:
                label_values.setdefault(k, set()).add(v)
        pod_paths: set[tuple[str, ...]] = set()
        list_paths: dict[str, set[tuple[str, ...]]] = {}  # pod spec list (containers, volumes, ...) → item paths
        for rule in program.rules:
            for check in rule.rule.checks:
                for where, path in check.reads():
                    if where == "pod":
                        pod_paths.add(path)
                    else:
                        list_paths.setdefault(where, set()).add(path)
        if any(e.containers for e in exemptions):  # then exemptions read container names
            for where in ir.CONTAINER_LISTS:
                list_paths.setdefault(where, set()).add(("name",))
        if names:
            for paths in list_paths.values():
                paths.add(("name",))
        # In a fixed order, sorted once: a key is derived for every rule of every object.
        self.labels = sorted(label_values.items())
        self.pod_order = sorted(pod_paths)
        self.list_order = [(where, sorted(paths)) for where, paths in sorted(list_paths.items())]

    @staticmethod
    def _selected(obj: dict[str, Any], path: tuple[str, ...], known: set[str]) -> tuple[Any, ...]:
        walked = _walk(obj, path)
        if walked[0] == "value" and isinstance(walked[1], str) and walked[1] not in known:
            return ("value", _OTHER)
        return walked

    @staticmethod
    def _items(spec: dict[str, Any], field: str, ordered: list[tuple[str, ...]]) -> tuple[Any, ...]:
        walked = _walk(spec, (field,))
        if walked[0] != "value" or not isinstance(walked[1], list):
            return walked
        return tuple(tuple(_walk(item, p) for p in ordered) if isinstance(item, dict) else ("item", item) for item in walked[1])

    def __call__(self, obj: dict[str, Any]) -> str:
        key: list[Any] = [obj.get("apiVersion"), obj.get("kind"),
                          self._selected(obj, ("metadata", "namespace"), self.namespaces),
                          self._selected(obj, ("metadata", "name"), self.names),
                          [self._selected(obj, ("metadata", "labels", k), v) for k, v in self.labels]]
        target = POD_TARGETS.get(str(obj.get("kind")))
        if target is not None:
            spec = _walk(obj, target.pod_spec_path)
            if spec[0] == "value" and isinstance(spec[1], dict):
                pod = spec[1]
                key.append([_walk(pod, p) for p in self.pod_order])
                key.append([self._items(pod, where, paths) for where, paths in self.list_order])
            else:
                key.append(spec)
        return json.dumps(key, sort_keys=True, default=repr)


def _unknown(keys: dict[str, str], cache: dict[tuple[str, str], Any], shared: CacheClient | None) -> list[str]:
    """The rules whose key `cache` lacks, after taking what other workers found (one round trip, only
    when some key is new here)."""
    new = [rule for rule, key in keys.items() if (rule, key) not in cache]
    if new and shared is not None:
        cache.update(shared.known([(rule, keys[rule]) for rule in new]))
        new = [rule for rule in new if (rule, keys[rule]) not in cache]
    return new


def artifacts_for(program: ir.Program, backends: list[str]) -> dict[str, dict[str, str]]:
    """Each compiler backend's artifacts that the adapters of `backends` and the explainer read, compiled once."""
    adapters = all_adapters()
    compiled = sorted({adapters[b].compiled_backend() for b in backends} | {"rego"})
    return {name: pipeline.compile_backends(program, [name]) for name in compiled}


class Auditor:
    """The chosen backends' adapters, built once from one compilation, with a verdict cache."""

    def __init__(self, program: ir.Program, backends: list[str], *, cache: bool = True,
                 artifacts: dict[str, dict[str, str]] | None = None,
                 shared: tuple[SharedCache, SharedCache] | None = None) -> None:
        """`artifacts`: from `artifacts_for` (worker processes receive them instead of compiling again);
        `shared`: the verdicts and the findings of other workers, asked for what this one has not met."""
        adapters = all_adapters()
        self.program = program
        self.backends = backends
        self.artifacts = artifacts or artifacts_for(program, backends)
        self.adapters: dict[str, Adapter] = {b: adapters[b](self.artifacts[adapters[b].compiled_backend()]) for b in backends}
        for adapter in self.adapters.values():
            adapter.equivalences = False  # proven by the conformance suite; one verdict per object here
        self.keys = {rule.id: VerdictKey(_only(program, rule)) for rule in program.rules} if cache else {}
        self.cache: dict[tuple[str, str], dict[str, str | None]] = {}  # (rule, key) → backend → verdict or None
        # Where a rule's violations are depends on what its key reads and on the names of the items.
        self.finding_keys = {r.id: VerdictKey(_only(program, r), names=True) for r in program.rules} if cache else {}
        self.findings: dict[tuple[str, str], list[Finding]] = {}
        worker = (os.getpid(), id(self))
        self.shared_verdicts, self.shared_findings = (CacheClient(cache, worker) for cache in shared) if shared else (None, None)
        self.evaluations = 0  # single-rule evaluations handed to the engines (each by every backend)
        self._explainer: Explainer | None = None

    def evaluate(self, request: Request) -> dict[str, Outcome] | Rejected:
        """Backend → verdicts (or the adapter's error) for one request; the decoder's refusal of an
        object the API server would not admit to any engine."""
        return self.judge(request)[0]

    def judge(self, request: Request) -> tuple[dict[str, Outcome] | Rejected, list[Finding]]:
        """`evaluate`, and where the violations are when there are any (see explain.py)."""
        request, refusal = admitted(request)
        if refusal is not None:
            return refusal, []
        if not (self.keys and request.operation == "CREATE" and not request.subresource):
            outcome = self._evaluated(request, None)
            violated = sorted({rule for v in outcome.values() if isinstance(v, dict) for rule in v})
            return outcome, self.explainer().findings(request) if violated else []
        keys = {rule: key(request.subject) for rule, key in self.keys.items()}
        new = _unknown(keys, self.cache, self.shared_verdicts)
        evaluated = self._evaluated(request, new) if new else {}
        if new and all(isinstance(v, dict) for v in evaluated.values()):  # an evaluation in which an engine failed is not cached
            fresh = {(rule, keys[rule]): {b: v.get(rule) for b, v in evaluated.items() if isinstance(v, dict)} for rule in new}
            self.cache.update(fresh)
            if self.shared_verdicts is not None:
                self.shared_verdicts.add(fresh)
        outcome: dict[str, Outcome] = {b: v for b, v in evaluated.items() if isinstance(v, str)}  # a failed engine's error
        for backend in self.backends:
            if backend in outcome:
                continue
            fresh = evaluated.get(backend, {})
            assert isinstance(fresh, dict)
            verdicts = {rule: self.cache[(rule, key)][backend] if (rule, key) in self.cache else fresh.get(rule)
                        for rule, key in keys.items()}
            outcome[backend] = {rule: verdict for rule, verdict in verdicts.items() if verdict is not None}
        violated = sorted({rule for v in outcome.values() if isinstance(v, dict) for rule in v})
        return outcome, self._findings(request, violated)

    def _evaluated(self, request: Request, rules: list[str] | None) -> dict[str, Outcome]:
        """Each backend's verdicts on `rules` (None: all), or its error."""
        outcome: dict[str, Outcome] = {}
        for backend, adapter in self.adapters.items():
            try:
                outcome[backend] = adapter.judge(request, rules)
            except AdapterError as error:
                outcome[backend] = f"{backend} could not evaluate: {error}"
        self.evaluations += len(self.program.rules) if rules is None else len(rules)
        return outcome

    def _findings(self, request: Request, rules: list[str]) -> list[Finding]:
        """The explainer's findings for the violated rules, each rule's cached under its finding key;
        the explainer is asked only about the rules whose finding key is new."""
        keys = {rule: self.finding_keys[rule](request.subject) for rule in rules}
        new = _unknown(keys, self.findings, self.shared_findings)
        if new:
            found = self.explainer().findings(request, new)
            fresh = {(rule, keys[rule]): [f for f in found if f.rule == rule] for rule in new}
            self.findings.update(fresh)
            if self.shared_findings is not None:
                self.shared_findings.add(fresh)
        return sorted((f for rule, key in keys.items() for f in self.findings[(rule, key)]),
                      key=lambda f: (f.rule, f.subject, f.field))

    def flush(self) -> None:
        """Hand what this worker evaluated and located to the others (at the end of each share of files)."""
        for client, cache in ((self.shared_verdicts, self.cache), (self.shared_findings, self.findings)):
            if client is not None:
                cache.update(client.flush())

    def explainer(self) -> Explainer:
        """The reference lowering's violation entries locate violations (a Rego adapter, built once)."""
        if self._explainer is None:
            rego = self.adapters.get("rego")
            if not isinstance(rego, RegoAdapter):
                rego = RegoAdapter(self.artifacts["rego"])
            self._explainer = Explainer(self.program, rego)
        return self._explainer


def violations(workload: Workload, outcome: dict[str, Outcome], findings: list[Finding],
               rules: dict[str, ir.ResolvedRule]) -> Iterator[Violation]:
    """One Violation per failing subject and check of each rule and verdict, naming every backend
    that gave the verdict; a rule-level one when the reference lowering located none."""
    given: dict[tuple[str, str], list[str]] = {}
    for backend, verdicts in sorted(outcome.items()):
        if isinstance(verdicts, dict):
            for rule, verdict in verdicts.items():
                given.setdefault((rule, verdict), []).append(backend)
    for (rule, verdict), backends in sorted(given.items()):
        common = dict(rule=rule, verdict=verdict, kind=workload.kind, namespace=workload.namespace, name=workload.name,
                      file=workload.file, line=workload.line, source=",".join(backends), fix=rules[rule].rule.fix)
        located = [f for f in findings if f.rule == rule]
        if not located:
            yield Violation(**common, message=f"{rule}: {rules[rule].rule.title}")
        for finding in located:
            yield Violation(**common, message=finding.message, subject=finding.subject, field=finding.field, value=finding.value)


def disagreement(workload: Workload, outcome: dict[str, Outcome]) -> Disagreement | None:
    """Engine drift: the backends did not all give the same verdicts (an error counts as a verdict)."""
    distinct = {json.dumps(v, sort_keys=True) for v in outcome.values()}
    return Disagreement(workload, dict(outcome)) if len(distinct) > 1 else None
