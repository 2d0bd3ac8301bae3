"""The policy DSL: what files in `policies/` call to declare rules and exemptions.

Every call validates its arguments at once and names the offending field, and every node
records the policy file and line that created it. The DSL only builds IR.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from . import ir
from .errors import PolicyError

Required = ir.Level.REQUIRED
Recommended = ir.Level.RECOMMENDED

POD_KINDS: tuple[str, ...] = (
    "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController",
)
_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_PARAM = re.compile(r"^[a-z][a-z0-9_]*$")
_COMPILER_DIR = Path(__file__).resolve().parent


@dataclass
class Collector:
    """What one load of `policies/` declared, in declaration order."""

    root: Path
    policy_sets: list[PolicySet] = field(default_factory=list)
    exemptions: list[ir.Exemption] = field(default_factory=list)


_collector: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("kupe_collector", default=None)


def collecting(root: Path) -> tuple[Collector, contextvars.Token]:
    """Start collecting declarations; the loader resets the token when done."""
    collector = Collector(root=root.resolve())
    return collector, _collector.set(collector)


def stop_collecting(token: contextvars.Token) -> None:
    _collector.reset(token)


@cache
def _resolved(filename: str) -> Path:
    """A code object's file, resolved once (policy sets make thousands of DSL calls from a few files)."""
    return Path(filename).resolve()


def _caller_loc() -> ir.Loc:
    """The first stack frame outside the compiler package: the policy line that made this call."""
    frame = sys._getframe(1)
    while frame and _resolved(frame.f_code.co_filename).parent == _COMPILER_DIR:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - a DSL call always has a caller
        return ir.Loc("<unknown>", 0)
    path = _resolved(frame.f_code.co_filename)
    collector = _collector.get()
    root = collector.root if collector else Path.cwd().resolve()
    try:
        shown = path.relative_to(root).as_posix()
    except ValueError:
        shown = path.as_posix()
    return ir.Loc(shown, frame.f_lineno)


def _fail(loc: ir.Loc, message: str) -> PolicyError:
    return PolicyError(message, loc)


def _path(text: str, what: str, loc: ir.Loc) -> ir.FieldPath:
    if not isinstance(text, str) or not text or any(not part for part in text.split(".")):
        raise _fail(loc, f"{what}: expected a dotted field path like 'securityContext.runAsNonRoot', got {text!r}")
    return tuple(text.split("."))


# Characters no artifact may carry: controls, lone surrogates (not even UTF-8), and the bidi
# controls that make text read otherwise than it is (Trojan Source).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unprintable(text: str) -> str | None:
    """The first character of `text` that no artifact may carry, as a \\u escape; None if there is none."""
    for char in text:
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs"):
            return f"\\u{ord(char):04x}"
    return None


def _text(value: object, what: str, loc: ir.Loc) -> str:
    """Free text (a title, a reason): whitespace runs, line breaks included, become one space."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(loc, f"{what}: must be a non-empty string")
    text = " ".join(value.split())
    bad = _unprintable(text)
    if bad:
        raise _fail(loc, f"{what}: holds the character {bad}, which no artifact may carry")
    return text


def _strings(value: object, what: str, loc: ir.Loc, *, allow_empty: bool = True) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _fail(loc, f"{what}: expected a list of strings, got {value!r}")
    items = tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise _fail(loc, f"{what}: expected a list of non-empty strings, got {list(items)!r}")
    bad = next(filter(None, map(_unprintable, items)), None)
    if bad:
        raise _fail(loc, f"{what}: holds the character {bad}, which no artifact may carry")
    if not allow_empty and not items:
        raise _fail(loc, f"{what}: must not be empty")
    if len(set(items)) != len(items):
        raise _fail(loc, f"{what}: lists {sorted(i for i in set(items) if items.count(i) > 1)!r} twice")
    return items


def param(name: str) -> ir.Param:
    """Refer to a list parameter of the rule being declared."""
    if not isinstance(name, str) or not _PARAM.match(name):
        raise _fail(_caller_loc(), f"param: expected a snake_case name, got {name!r}")
    return ir.Param(name)


# --- checks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldCheck:
    """A field of a subject, waiting for the comparison that makes it a check."""

    subject: ir.Subject
    ref: ir.Ref

    def _check(self, predicate: ir.Predicate) -> ir.Check:
        return ir.Check(self.subject, predicate, _caller_loc())

    def _scalar(self, value: object, what: str) -> ir.Scalar:
        if not isinstance(value, (bool, int, str)):
            raise _fail(_caller_loc(), f"{what}: expected a bool, int or string value, got {value!r}")
        return value

    def _values(self, values: object, what: str) -> ir.Values:
        if isinstance(values, ir.Param):
            return values
        return _strings(values, what, _caller_loc(), allow_empty=False)

    def equals(self, value: ir.Scalar) -> ir.Check:
        return self._check(ir.Equals(self.ref, self._scalar(value, "equals")))

    def not_equals(self, value: ir.Scalar) -> ir.Check:
        return self._check(ir.NotEquals(self.ref, self._scalar(value, "not_equals")))

    def one_of(self, values: Sequence[str] | ir.Param) -> ir.Check:
        return self._check(ir.OneOf(self.ref, self._values(values, "one_of")))

    def none_of(self, values: Sequence[str] | ir.Param) -> ir.Check:
        return self._check(ir.NoneOf(self.ref, self._values(values, "none_of")))

    def contains(self, value: str) -> ir.Check:
        if not isinstance(value, str) or not value:
            raise _fail(_caller_loc(), f"contains: expected a non-empty string, got {value!r}")
        return self._check(ir.ListContains(self.ref, value))

    def subset_of(self, allowed: Sequence[str] | ir.Param) -> ir.Check:
        return self._check(ir.ListSubsetOf(self.ref, self._values(allowed, "subset_of")))

    def present(self) -> ir.Check:
        return self._check(ir.Present(self.ref))

    def as_path(self) -> FieldCheck:
        """Compare the field as a filesystem path in normal form (`//`, `/./`, a trailing `/` removed;
        a `..` segment never complies)."""
        if not isinstance(self.ref, ir.FieldRef):
            raise _fail(_caller_loc(), "as_path: only a plain field (not an effective value) is read as a path")
        return FieldCheck(self.subject, ir.NormalPath(self.ref))


@dataclass(frozen=True)
class SubjectBuilder:
    subject: ir.Subject
    scope: ir.Scope

    def field(self, path: str) -> FieldCheck:
        return FieldCheck(self.subject, ir.FieldRef(self.scope, _path(path, "field", _caller_loc())))

    def effective(self, path: str, *, pod_path: str | None = None) -> FieldCheck:
        """The container's value, or the pod's when the container leaves it unset."""
        loc = _caller_loc()
        if self.scope is not ir.Scope.CONTAINER:
            raise _fail(loc, "effective: only container fields fall back to a pod-level value")
        container_path = _path(path, "effective", loc)
        return FieldCheck(self.subject, ir.EffectiveRef(container_path, _path(pod_path or path, "pod_path", loc)))


def containers(lists: Sequence[str] = ir.CONTAINER_LISTS) -> SubjectBuilder:
    """Each container of the pod spec; `lists` picks among containers/initContainers/ephemeralContainers."""
    chosen = _strings(lists, "containers", _caller_loc(), allow_empty=False)
    unknown = sorted(set(chosen) - set(ir.CONTAINER_LISTS))
    if unknown:
        raise _fail(_caller_loc(), f"containers: unknown container list(s) {unknown}; expected {list(ir.CONTAINER_LISTS)}")
    return SubjectBuilder(ir.EachContainer(tuple(lst for lst in ir.CONTAINER_LISTS if lst in chosen)), ir.Scope.CONTAINER)


def pod() -> SubjectBuilder:
    """The pod spec."""
    return SubjectBuilder(ir.PodSpec(), ir.Scope.POD)


def volumes() -> SubjectBuilder:
    """Each volume of the pod spec."""
    return SubjectBuilder(ir.EachVolume(), ir.Scope.VOLUME)


# --- policy sets -----------------------------------------------------------------------------


def _params_used(check: ir.Check) -> set[str]:
    values = getattr(check.predicate, "values", None) or getattr(check.predicate, "allowed", None)
    return {values.name} if isinstance(values, ir.Param) else set()


class PolicySet:
    """A named group of rules sharing defaults (the audit action of recommended rules)."""

    def __init__(self, id: str, *, title: str, audit_action: str = "dryrun") -> None:
        self.loc = _caller_loc()
        if not isinstance(id, str) or not _ID.match(id):
            raise _fail(self.loc, f"PolicySet id: expected a lowercase DNS label, got {id!r}")
        title = _text(title, "PolicySet title", self.loc)
        try:
            self.audit_action = ir.AuditAction(audit_action)
        except ValueError:
            raise _fail(self.loc, f"PolicySet audit_action: expected 'dryrun' or 'warn', got {audit_action!r}") from None
        self.id, self.title = id, title
        self.rules: list[ir.Rule] = []
        collector = _collector.get()
        if collector is not None:
            collector.policy_sets.append(self)

    def rule(
        self,
        id: str,
        level: ir.Level,
        *,
        title: str,
        rationale: str,
        fix: str,
        check: ir.Check | Sequence[ir.Check],
        params: Mapping[str, Sequence[str]] | None = None,
        kinds: Sequence[str] = POD_KINDS,
        enforce_from: str | dt.date | None = None,
        enforced_in: Sequence[str] = (),
    ) -> ir.Rule:
        """Declare a rule: every check must hold for every subject of every matching workload."""
        loc = _caller_loc()
        where = f"rule {id!r}"
        if not isinstance(id, str) or not _ID.match(id):
            raise _fail(loc, f"rule id: expected a lowercase DNS label like 'run-as-non-root', got {id!r}")
        if not isinstance(level, ir.Level):
            raise _fail(loc, f"{where} level: expected Required or Recommended, got {level!r}")
        title, rationale, fix = (_text(text, f"{where} {name}", loc) for name, text in
                                 (("title", title), ("rationale", rationale), ("fix", fix)))
        checks = (check,) if isinstance(check, ir.Check) else tuple(check) if isinstance(check, Sequence) else ()
        if not checks or not all(isinstance(c, ir.Check) for c in checks):
            raise _fail(loc, f"{where} check: expected a check like containers().field('…').equals(True), or a list of them")
        declared: dict[str, tuple[str, ...]] = {}
        for name, values in (params or {}).items():
            if not isinstance(name, str) or not _PARAM.match(name):
                raise _fail(loc, f"{where} params: expected snake_case names, got {name!r}")
            declared[name] = _strings(values, f"{where} params[{name!r}]", loc)
        used = set().union(*(_params_used(c) for c in checks))
        if used - declared.keys():
            raise _fail(loc, f"{where} check uses undeclared param(s) {sorted(used - declared.keys())}")
        if declared.keys() - used:
            raise _fail(loc, f"{where} params: {sorted(declared.keys() - used)} declared but no check uses them")
        chosen_kinds = _strings(kinds, f"{where} kinds", loc, allow_empty=False)
        if set(chosen_kinds) - set(POD_KINDS):
            raise _fail(loc, f"{where} kinds: unknown kind(s) {sorted(set(chosen_kinds) - set(POD_KINDS))}; expected some of {list(POD_KINDS)}")
        stage = _strings(enforced_in, f"{where} enforced_in", loc)
        start = None if enforce_from is None else _date(enforce_from, loc, f"{where} enforce_from")
        if any(r.id == id for r in self.rules):
            raise _fail(loc, f"{where} is declared twice in policy set {self.id!r}")
        rule = ir.Rule(
            id=id, level=level, title=title, rationale=rationale, fix=fix, checks=checks,
            params=tuple(sorted(declared.items())), kinds=tuple(k for k in POD_KINDS if k in chosen_kinds),
            policy_set=self.id, loc=loc, enforce_from=start, enforced_in=stage,
        )
        self.rules.append(rule)
        return rule

    def build(self) -> ir.PolicySet:
        return ir.PolicySet(self.id, self.title, self.audit_action, tuple(self.rules), self.loc)


def _date(value: object, loc: ir.Loc, what: str = "exemption expires") -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(loc, f"{what}: expected a date like '2027-06-30', got {value!r}")


class _AllRules:
    """`exempt(rules=ALL)`: every rule of the program, resolved when it compiles."""

    def __repr__(self) -> str:
        return "ALL"


ALL = _AllRules()


def exempt(
    id: str,
    *,
    rules: Sequence[str] | _AllRules,
    reason: str,
    expires: str | dt.date,
    owner: str = "",
    ticket: str = "",
    namespaces: Sequence[str] = (),
    names: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    containers: Sequence[str] = (),
    allow: Mapping[str, Sequence[str]] | None = None,
    projects: Sequence[str] = (),
    services: Sequence[str] = (),
) -> ir.Exemption:
    """Waive `rules` for the selected workloads until `expires`; with `allow`, widen list params instead.

    Kubernetes workloads are selected by `namespaces`, `names`, `labels` (and `containers`);
    Compose services by `projects`, `services` and `labels`: one exemption is for one of the two.
    """
    loc = _caller_loc()
    if not isinstance(id, str) or not _ID.match(id):
        raise _fail(loc, f"exemption id: expected a lowercase DNS label, got {id!r}")
    where = f"exemption {id!r}"
    every_rule = rules is ALL
    rule_ids = () if every_rule else _strings(rules, f"{where} rules", loc, allow_empty=False)
    if not isinstance(reason, str) or not reason.strip():
        raise _fail(loc, f"{where} reason: must say why the exemption exists")
    reason = _text(reason, f"{where} reason", loc)
    if not any(isinstance(x, str) and x.strip() for x in (owner, ticket)):
        raise _fail(loc, f"{where}: needs an owner or a ticket")
    owner, ticket = (_text(x, f"{where} {name}", loc) if isinstance(x, str) and x.strip() else ""
                     for name, x in (("owner", owner), ("ticket", ticket)))
    label_items = tuple(sorted((labels or {}).items()))
    if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in label_items):
        raise _fail(loc, f"{where} labels: expected a mapping of strings, got {labels!r}")
    _strings([part for pair in label_items for part in pair if part], f"{where} labels", loc)
    selected_namespaces = _strings(namespaces, f"{where} namespaces", loc)
    selected_names = _strings(names, f"{where} names", loc)
    selected_projects = _strings(projects, f"{where} projects", loc)
    selected_services = _strings(services, f"{where} services", loc)
    if (selected_projects or selected_services) and (selected_namespaces or selected_names or containers):
        raise _fail(loc, f"{where}: selects Compose services (projects, services) and Kubernetes workloads "
                         "(namespaces, names, containers) at once; declare one exemption for each")
    if not (selected_namespaces or selected_names or label_items or selected_projects or selected_services):
        raise _fail(loc, f"{where}: selects every workload; scope it with namespaces, names or labels "
                         "(Compose: projects, services or labels)")
    widened = tuple(sorted((k, _strings(v, f"{where} allow[{k!r}]", loc, allow_empty=False)) for k, v in (allow or {}).items()))
    exemption = ir.Exemption(
        id=id, rules=rule_ids, namespaces=selected_namespaces, names=selected_names, labels=label_items,
        containers=_strings(containers, f"{where} containers", loc), allow=widened,
        reason=reason, owner=owner, ticket=ticket, expires=_date(expires, loc), loc=loc, every_rule=every_rule,
        projects=selected_projects, services=selected_services,
    )
    collector = _collector.get()
    if collector is not None:
        collector.exemptions.append(exemption)
    return exemption
