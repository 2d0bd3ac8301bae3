"""Verdicts for workloads from the backends' adapters, each backend compiled once per run.

Engines are slow per object (rego-cpp evaluates the 11 shipped rules in about 10 ms), so each
rule's verdict is cached by the object's *verdict key for that rule*: the part of the object that
the rule, its stage or its exemptions can read (docs/semantics.md). The engines judge an object
only on the rules whose key is new (each adapter evaluates just those rules' artifacts); every
other rule's verdict comes from an earlier object that read the same for that rule (two objects
may share the containers one rule reads and differ in what another reads). A key holds:

* `apiVersion` and `kind` (which rules apply, and where the pod spec is); for a rule's verdict,
  a workload of a kind the rule judges is keyed as the Pod of its pod spec when the rule judges
  Pods too: every kind a rule judges keeps the same pod spec (docs/semantics.md), so the
  workloads of one pod spec share one key instead of one per kind (on the 10,000-workload
  benchmark corpus, 487 rule keys instead of 2,439);
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
inputs (each distinct pod spec once, in the kind that first carried it; the conformance suite
judges every kind). An evaluation in which some engine failed is not cached. What a check reads
comes from the IR (`Check.reads`), so a new subject or reference says what it reads or fails
loudly, never silently cached.

A key is the object's *projection* (that part of it, as an object of its own) written as a Python
literal (`repr`: one text per value, so equal texts are equal projections; half the time of
sorted JSON, and a key order that differs only costs an evaluation). Each object is projected
once, on what every rule's key and finding key reads; that projection's key
(one for every kind of one pod spec, like the rule keys) finds an earlier object judged alike on
every rule, whose verdicts and violation entries are taken whole and located in the object.
Otherwise the rule keys are taken of the projection, and the explainer reads the projection
instead of the object: the same entries, for a fraction of the input rego-cpp has to parse.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from compiler import ir
from compiler.passes import POD_TARGETS

from ..adapters import Adapter, AdapterError, Request, admitted, all_adapters
from ..engines.decoding import Rejected
from ..adapters.rego import RegoAdapter
from .explain import Entry, Explainer, Finding
from .model import Disagreement, Violation, Workload
from .shared import CacheClient, SharedCache

Verdicts = dict[str, str]  # rule id → deny | audit, for violated rules
Outcome = Verdicts | str  # or the adapter's error
Judgement = tuple[dict[str, Outcome] | Rejected, list[Finding]]
_OTHER = "\0other"  # a namespace or name no exemption names (cannot be a Kubernetes name)


_WHOLE = "whole"  # a projection tree's leaf: the value is kept as it is


@dataclass(frozen=True)
class _Items:
    """A projection tree's list: each item that is a mapping is projected on `tree`; any other item, or a
    value that is no list, is kept as it is."""

    tree: dict[str, Any]


def _tree(paths: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """The paths as a tree of mappings whose leaves are _WHOLE; a path under a kept value adds nothing."""
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if node is _WHOLE:
                break
        else:
            node[path[-1]] = _WHOLE
    return tree


def _projector(tree: dict[str, Any]) -> Callable[[Any], Any]:
    """A function giving the part of a value that `tree` reaches, made once per tree (an audit
    projects each object on a dozen trees). A value that is no mapping where the tree goes on is
    kept as it is and a missing key stays missing, so every walk of a path of the tree stops, or
    ends, exactly where and on what it does in the value."""
    kept = tuple(key for key, sub in tree.items() if sub is _WHOLE)
    mappings = tuple((key, _projector(sub)) for key, sub in tree.items() if isinstance(sub, dict))
    lists = tuple((key, _projector(sub.tree)) for key, sub in tree.items() if isinstance(sub, _Items))

    def project(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        found = {key: value[key] for key in kept if key in value}
        for key, sub in mappings:
            if key in value:
                found[key] = sub(value[key])
        for key, sub in lists:
            if key in value:
                item = value[key]
                found[key] = [sub(i) for i in item] if isinstance(item, list) else item
        return found

    return project


def _as_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """A Pod of a workload's pod spec and metadata; the object itself when it has no pod spec that is a mapping."""
    target = POD_TARGETS.get(str(obj.get("kind")))
    if target is None:
        return obj
    spec: Any = obj
    for part in target.pod_spec_path:
        spec = spec.get(part) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return obj
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "spec": spec}
    if "metadata" in obj:
        pod["metadata"] = obj["metadata"]
    return pod


def _only(program: ir.Program, rule: ir.ResolvedRule) -> ir.Program:
    """The program as one rule sees it: that rule and its exemptions (what its verdict key reads)."""
    return replace(program, rules=(rule,), exemptions=tuple(e for e in program.exemptions if rule.id in e.rules))


class VerdictKey:
    """Derives, from the IR, the part of an object that can change a verdict (see the module docstring).

    `project` keeps that part of an object, as an object of its own; the key is that projection's
    text, with every namespace, name and label value that nothing selects made one placeholder."""

    def __init__(self, program: ir.Program, *, names: bool = False, as_pods: bool = False) -> None:
        """`names`: also the names of the listed items (where a report locates a violation).
        `as_pods`: key a workload of a kind that every rule judges as the Pod of its pod spec, when
        every rule judges Pods (see the module docstring)."""
        exemptions = program.exemptions
        judged = [{(t.kind, t.group) for t in r.targets} for r in program.rules]
        common = set.intersection(*judged) if judged else set()
        # kind → API group, of the kinds whose workloads are keyed as Pods
        self.as_pods = dict(common) if as_pods and ("Pod", "") in common else {}
        self.namespaces = {n for e in exemptions for n in e.namespaces} | {n for r in program.rules for n in r.enforced_in}
        self.names = {n for e in exemptions for n in e.names}
        self.label_values: dict[str, set[str]] = {}
        for exemption in exemptions:
            for k, v in exemption.labels:
                self.label_values.setdefault(k, set()).add(v)
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
        pod = _tree(pod_paths)
        for where, paths in list_paths.items():
            if where in pod:
                raise AssertionError(f"a check reads the pod spec's {where} both as a field and as a list")
            pod[where] = _Items(_tree(paths))
        metadata = {"namespace": _WHOLE, "name": _WHOLE, "labels": {k: _WHOLE for k in sorted(self.label_values)}}
        self.projectors: dict[str, Callable[[Any], Any]] = {}  # kind → what the key reads of an object of that kind
        for kind in [None, *POD_TARGETS]:
            tree: dict[str, Any] = {"apiVersion": _WHOLE, "kind": _WHOLE, "metadata": metadata}
            if kind is not None:
                node = tree
                *parents, last = POD_TARGETS[kind].pod_spec_path
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = pod
            self.projectors[str(kind)] = _projector(tree)

    def project(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What this key reads of `obj`: an object whose key is `obj`'s (the explainer is given it)."""
        kind = obj.get("kind")
        return self.projectors[kind if isinstance(kind, str) and kind in POD_TARGETS else "None"](obj)

    def __call__(self, obj: dict[str, Any]) -> str:
        """The key of an object, or of its projection by this key or by a wider one (the whole program's)."""
        return self.key_of_projection(self.project(obj))

    def key_of_projection(self, projection: dict[str, Any]) -> str:
        """The key of this key's own projection of an object."""
        if self.as_pods and self.as_pods.get(projection.get("kind")) == str(projection.get("apiVersion")).rpartition("/")[0]:
            projection = _as_pod(projection)
        return repr(self._masked(projection))

    def _masked(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`obj` with each namespace, name and label value that nothing selects made one placeholder."""
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict):
            return obj
        masked = dict(metadata)
        for field, known in (("namespace", self.namespaces), ("name", self.names)):
            if isinstance(masked.get(field), str) and masked[field] not in known:
                masked[field] = _OTHER
        labels = masked.get("labels")
        if isinstance(labels, dict):
            masked["labels"] = {k: _OTHER if isinstance(v, str) and v not in self.label_values.get(k, ()) else v
                                for k, v in labels.items()}
        return {**obj, "metadata": masked}


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
    # Imported here: worker processes receive the artifacts and compile nothing.
    from compiler import pipeline

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
        self.rules = {r.id: r for r in program.rules}
        self.backends = backends
        self.artifacts = artifacts or artifacts_for(program, backends)
        self.adapters: dict[str, Adapter] = {b: adapters[b](self.artifacts[adapters[b].compiled_backend()]) for b in backends}
        for adapter in self.adapters.values():
            adapter.equivalences = False  # proven by the conformance suite; one verdict per object here
        self.keys = {rule.id: VerdictKey(_only(program, rule), as_pods=True) for rule in program.rules} if cache else {}
        self.cache: dict[tuple[str, str], dict[str, str | None]] = {}  # (rule, key) → backend → verdict or None
        # Where a rule's violations are depends on what its key reads and on the names of the items.
        self.finding_keys = {r.id: VerdictKey(_only(program, r), names=True, as_pods=True) for r in program.rules} if cache else {}
        self.findings: dict[tuple[str, str], list[Entry]] = {}  # (rule, finding key) → the explainer's entries
        # What every rule's finding key reads: an object met before under the same key is judged
        # alike on every rule, and its violations have the same entries (its verdicts and entries are
        # taken whole, and only located in the object; the rule keys are derived from this
        # projection, and the explainer is given it).
        self.whole_key = VerdictKey(program, names=True, as_pods=True)
        self.judged: dict[str, tuple[dict[str, Outcome], list[Entry]]] = {}
        self.located: dict[tuple[Any, str], list[Finding]] = {}  # (kind, whole key) → the findings, located
        worker = (os.getpid(), id(self))
        self.shared_verdicts, self.shared_findings = (CacheClient(cache, worker) for cache in shared) if shared else (None, None)
        self.evaluations = 0  # single-rule evaluations handed to the engines (each by every backend)
        self._explainer: Explainer | None = None

    def evaluate(self, request: Request) -> dict[str, Outcome] | Rejected:
        """Backend → verdicts (or the adapter's error) for one request; the decoder's refusal of an
        object the API server would not admit to any engine."""
        return self.judge(request)[0]

    def judge(self, request: Request) -> Judgement:
        """`evaluate`, and where the violations are when there are any (see explain.py)."""
        request, refusal = admitted(request)
        if refusal is not None:
            return refusal, []
        if not (self.keys and request.operation == "CREATE" and not request.subresource):
            outcome = self._evaluated(request, None)
            violated = sorted({rule for v in outcome.values() if isinstance(v, dict) for rule in v})
            return outcome, self.explainer().findings(request) if violated else []
        projection = self.whole_key.project(request.subject)
        whole = self.whole_key.key_of_projection(projection)
        known = self.judged.get(whole)
        if known is None:
            known, complete = self._judged_anew(request, projection)
            if complete:
                self.judged[whole] = known
        outcome, entries = known
        if not entries:
            return outcome, []
        place = (request.subject.get("kind"), whole)  # where a kind carries the pod spec, what its items are called
        findings = self.located.get(place)
        if findings is None:
            findings = self.explainer().located(request.subject, entries)
            if whole in self.judged:
                self.located[place] = findings
        return outcome, findings

    def _judged_anew(self, request: Request, projection: dict[str, Any]) -> tuple[tuple[dict[str, Outcome], list[Entry]], bool]:
        """The verdicts of an object whose whole key is new, from the rule keys met before and the
        engines' verdicts on the others; the violations' entries; and whether every engine judged."""
        keys = {rule: key.key_of_projection(key.project(projection)) for rule, key in self.keys.items()}
        new = _unknown(keys, self.cache, self.shared_verdicts)
        evaluated = self._evaluated(request, new) if new else {}
        complete = all(isinstance(v, dict) for v in evaluated.values())  # an evaluation in which an engine failed is not cached
        if new and complete:
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
        return (outcome, self._entries(projection, violated)), complete

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

    def _entries(self, projection: dict[str, Any], rules: list[str]) -> list[Entry]:
        """The explainer's entries for the violations of the violated rules, cached under each rule's
        finding key (the explainer is asked only about rules whose finding key is new).

        The explainer is given the projection of the object (what every finding key reads) to read
        as a manifest. A finding key, like a verdict key, is one for every kind of one pod spec: an
        entry names the check, the container or volume and the field in the pod spec, never where
        the pod spec is, and `located` finds that in each object."""
        if not rules:
            return []
        keys = {rule: self.finding_keys[rule](projection) for rule in rules}
        new = _unknown(keys, self.findings, self.shared_findings)
        if new:
            found = self.explainer().entries(projection, new)
            fresh = {(rule, keys[rule]): [(v, e) for v, e in found if e["rule"] == rule] for rule in new}
            self.findings.update(fresh)
            if self.shared_findings is not None:
                self.shared_findings.add(fresh)
        return [entry for rule, key in keys.items() for entry in self.findings[(rule, key)]]

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
    first, *others = outcome.values()
    return Disagreement(workload, dict(outcome)) if any(other != first for other in others) else None
