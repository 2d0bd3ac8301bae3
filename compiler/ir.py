"""The engine-neutral intermediate representation.

Every node is a small frozen dataclass; nodes that come from a policy file remember where
(`loc`), so that any backend can refuse a construct by pointing at the line that wrote it.
The IR knows no engine: backends lower it, passes rewrite it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a policy source file (path relative to the project root)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Level(str, Enum):
    """Enforcement level: required rules block, recommended rules audit."""

    REQUIRED = "required"
    RECOMMENDED = "recommended"


class AuditAction(str, Enum):
    """How an engine with a choice reports a recommended rule (Gatekeeper's audit action)."""

    DRYRUN = "dryrun"
    WARN = "warn"


class Placement(str, Enum):
    """Where an exemption is expressed, decided once for every backend (`passes.place`)."""

    NAMESPACES = "namespaces"  # waives whole namespaces: every engine has a native exclusion
    OBJECTS = "objects"  # waives whole objects, chosen by namespace, name and labels
    CONTAINERS = "containers"  # waives some containers of the objects it chooses
    WIDENING = "widening"  # widens a list parameter for what it chooses
    COMPOSE = "compose"  # waives or widens for Compose services (by project, service, labels), not Kubernetes objects


class Scope(str, Enum):
    """What a field path is relative to."""

    CONTAINER = "container"
    POD = "pod"  # the pod spec
    VOLUME = "volume"


FieldPath = tuple[str, ...]
Scalar = bool | int | str

# Where kubectl creates a namespaced object that names no namespace: every backend judges it there.
DEFAULT_NAMESPACE = "default"

# Where the containers of a pod spec live.
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")


# --- value references ---------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A field of the current subject. A null or missing field is unset."""

    scope: Scope
    path: FieldPath

    def dotted(self) -> str:
        return ".".join(self.path)

    def reads(self) -> tuple[tuple[Scope, FieldPath], ...]:
        """The fields this value is read from (what a verdict cache must key on)."""
        return ((self.scope, self.path),)


@dataclass(frozen=True)
class EffectiveRef:
    """A container field that falls back to the pod-level field when the container leaves it unset."""

    container_path: FieldPath
    pod_path: FieldPath

    def dotted(self) -> str:
        return ".".join(self.container_path)

    def reads(self) -> tuple[tuple[Scope, FieldPath], ...]:
        return ((Scope.CONTAINER, self.container_path), (Scope.POD, self.pod_path))


@dataclass(frozen=True)
class NormalPath:
    """A field holding a filesystem path, read in normal form: empty and `.` segments dropped, so
    `//`, `/./` and a trailing `/` spell nothing else (an absolute path keeps its leading `/`).
    A path with a `..` segment has no normal form: it reads as a value of the wrong type, so it
    never complies (the API server refuses such a hostPath; offline it must not slip through)."""

    field: FieldRef

    @property
    def scope(self) -> Scope:
        return self.field.scope

    @property
    def path(self) -> FieldPath:
        return self.field.path

    def dotted(self) -> str:
        return self.field.dotted()

    def reads(self) -> tuple[tuple[Scope, FieldPath], ...]:
        return self.field.reads()


Ref = FieldRef | EffectiveRef | NormalPath


@dataclass(frozen=True)
class Param:
    """A named list parameter of the rule; exemptions may widen it for the workloads they cover."""

    name: str


Values = tuple[str, ...] | Param


# --- predicates: what must hold for a subject to comply -----------------------------
# A value of the wrong type never complies (`runAsNonRoot: "true"` is not `true`).


@dataclass(frozen=True)
class Equals:
    """The field is set, has the type of `value`, and equals it."""

    ref: Ref
    value: Scalar


@dataclass(frozen=True)
class NotEquals:
    """The field is unset, or has the type of `value` and differs from it."""

    ref: Ref
    value: Scalar


@dataclass(frozen=True)
class OneOf:
    """The field is set to a string among `values`."""

    ref: Ref
    values: Values


@dataclass(frozen=True)
class NoneOf:
    """The field is unset, or a string outside `values`."""

    ref: Ref
    values: Values


@dataclass(frozen=True)
class ListContains:
    """The field is a list that contains `value`."""

    ref: Ref
    value: str


@dataclass(frozen=True)
class ListSubsetOf:
    """The field is unset, or a list all of whose items are among `allowed`."""

    ref: Ref
    allowed: Values


@dataclass(frozen=True)
class Present:
    """The field is set (not null), whatever its value."""

    ref: Ref


Predicate = Equals | NotEquals | OneOf | NoneOf | ListContains | ListSubsetOf | Present


# --- subjects: what a check iterates over ---------------------------------------------


# A subject's `lists` are the pod spec lists its items come from; () for the pod spec itself.


@dataclass(frozen=True)
class EachContainer:
    """Every container in the listed container lists of the pod spec."""

    lists: tuple[str, ...] = CONTAINER_LISTS


@dataclass(frozen=True)
class PodSpec:
    """The pod spec itself."""

    lists: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class EachVolume:
    """Every entry of the pod spec's volumes."""

    lists: ClassVar[tuple[str, ...]] = ("volumes",)


Subject = EachContainer | PodSpec | EachVolume


@dataclass(frozen=True)
class Check:
    """One condition of a rule: every subject must satisfy the predicate."""

    subject: Subject
    predicate: Predicate
    loc: Loc

    def reads(self) -> tuple[tuple[str, FieldPath], ...]:
        """(where, path) of every field the check reads: where is "pod" (the pod spec) or the pod
        spec list holding the subjects (`containers`, `volumes`, ...)."""
        return tuple(("pod", path) if scope is Scope.POD else (where, path)
                     for scope, path in self.predicate.ref.reads()
                     for where in (("pod",) if scope is Scope.POD else self.subject.lists))


# --- workload kinds -------------------------------------------------------------------


@dataclass(frozen=True)
class PodTarget:
    """A kind that carries a pod spec, and where the spec is."""

    kind: str
    group: str  # "" for the core group; any version of the group carries the same pod spec
    resource: str
    pod_spec_path: FieldPath
    # Subresources whose UPDATE can add containers (a Pod's `ephemeralcontainers`: `kubectl debug`):
    # their requests are judged like an UPDATE of the object (docs/semantics.md, Requests).
    subresources: tuple[str, ...] = ()


# --- rules and exemptions ---------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    title: str
    rationale: str
    fix: str
    checks: tuple[Check, ...]
    params: tuple[tuple[str, tuple[str, ...]], ...]
    kinds: tuple[str, ...]
    policy_set: str
    loc: Loc
    enforce_from: dt.date | None = None  # a recommended rule compiles as required from this date
    enforced_in: tuple[str, ...] = ()  # namespaces where a recommended rule is already enforced (a stage)

    def param(self, name: str) -> tuple[str, ...]:
        return dict(self.params)[name]


@dataclass(frozen=True)
class PolicySet:
    id: str
    title: str
    audit_action: AuditAction
    rules: tuple[Rule, ...]
    loc: Loc


@dataclass(frozen=True)
class Exemption:
    """A waiver of rules (or a widening of their list parameters) for the workloads it selects.

    Selection is the conjunction of the non-empty criteria: the object's namespace is one of
    `namespaces`, its name one of `names`, its own labels include `labels`; `containers`
    narrows a container rule to the named containers. An exemption for Compose services selects
    by `projects` (the Compose file's top-level `name`), `services` (service names) and `labels`
    (the service's) instead, and applies to nothing on Kubernetes.
    """

    id: str
    rules: tuple[str, ...]
    namespaces: tuple[str, ...]
    names: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    containers: tuple[str, ...]
    allow: tuple[tuple[str, tuple[str, ...]], ...]
    reason: str
    owner: str
    ticket: str
    expires: dt.date
    loc: Loc
    every_rule: bool = False  # `rules=ALL`: passes.resolve puts every rule of the program in `rules`
    projects: tuple[str, ...] = ()  # Compose projects
    services: tuple[str, ...] = ()  # Compose service names

    @property
    def for_compose(self) -> bool:
        return bool(self.projects or self.services)



# --- what backends receive --------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedRule:
    """A rule with its pod targets and the exemptions in force at the compile date."""

    rule: Rule
    level: Level  # at the compile date: enforce_from already passed makes a recommended rule required
    audit_action: AuditAction
    targets: tuple[PodTarget, ...]
    exemptions: tuple[tuple[Exemption, Placement], ...] = field(default=())  # placed by passes.place
    enforced_in: tuple[str, ...] = ()  # a recommended rule's stage: these namespaces deny already

    @property
    def id(self) -> str:
        return self.rule.id

    def placed(self, *placements: Placement) -> tuple[Exemption, ...]:
        """The rule's exemptions in force that go in these places."""
        return tuple(e for e, placement in self.exemptions if placement in placements)

    @property
    def all_exemptions(self) -> tuple[Exemption, ...]:
        return tuple(e for e, _ in self.exemptions)

    @property
    def kubernetes_exemptions(self) -> tuple[Exemption, ...]:
        return tuple(e for e, placement in self.exemptions if placement is not Placement.COMPOSE)

    @property
    def waivers(self) -> tuple[Exemption, ...]:
        return self.placed(Placement.NAMESPACES, Placement.OBJECTS, Placement.CONTAINERS)

    @property
    def widenings(self) -> tuple[Exemption, ...]:
        return self.placed(Placement.WIDENING)


@dataclass(frozen=True)
class Program:
    """Everything one compilation emits, resolved as of one date."""

    as_of: dt.date
    policy_sets: tuple[PolicySet, ...]
    rules: tuple[ResolvedRule, ...]
    exemptions: tuple[Exemption, ...]  # in force
    expired: tuple[Exemption, ...]
