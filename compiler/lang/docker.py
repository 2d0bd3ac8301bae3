"""Rules on Docker's platforms (Compose services, Dockerfiles): each check mapped to its meaning there.

The rule model speaks of pod specs; a Compose service or a Dockerfile has no such fields, so a
check has a meaning on a Docker platform only through a row of that platform's mapping
(docs/docker.md): the Kubernetes field it reads, the exact predicate and value the row
expresses, and the function of the platform's Rego library (`lib.compose`, `lib.dockerfile`)
that decides it. A check whose field has no row makes the rule *not applicable* on the platform
(the support matrix says so: a Dockerfile has no privileged flag); a check on a mapped field with
another predicate or value is *refused* (`unsupported`): the row means what it says and nothing
near it. The conftest artifacts share one shape: a package per rule whose `violation` set names
the service (or stage), and `package main` with `deny` (required) and `warn` (recommended).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import describe, ir
from ..lowering import Lowering
from ..names import identifier
from ..render import Safe, program_sources, render

Value = ir.Scalar | None  # a row's fixed value; None: the check reads a list of values, or none (Present)
_LISTS = (ir.OneOf, ir.NoneOf, ir.ListSubsetOf)  # predicates whose row function also takes the values


@dataclass(frozen=True)
class Row:
    """One line of a platform's mapping."""

    field: str  # the Kubernetes field the check reads, dotted (the container's, for an EffectiveRef)
    predicate: type
    value: Value
    function: str  # in the platform's library: `function(subject)`, or `function(subject, values)` for a list predicate
    meaning: str  # what the platform checks, for docs/docker.md and the support matrix
    key: str  # the platform's field a violation names (`user`, `security_opt`, `USER`, ...)
    # How the check may read the field. A service or an image is one container with no pod around it,
    # so a container's field and its pod-level fallback (EffectiveRef) mean the same; a path read in
    # normal form (NormalPath) and one read as written do not.
    refs: tuple[type, ...] = (ir.FieldRef, ir.EffectiveRef)


def field_of(check: ir.Check) -> str:
    ref = check.predicate.ref
    return ".".join(ref.container_path) if isinstance(ref, ir.EffectiveRef) else ref.dotted()


def _value(predicate: object) -> Value:
    return getattr(predicate, "value", None)


def _listed(predicate: object) -> ir.Values | None:
    """The values a list predicate reads (OneOf, NoneOf: `values`; ListSubsetOf: `allowed`)."""
    return getattr(predicate, "values", None) or getattr(predicate, "allowed", None)


def _values(rule: ir.ResolvedRule, predicate: object) -> list[str]:
    values = _listed(predicate)
    return list(rule.rule.param(values.name) if isinstance(values, ir.Param) else values)


@dataclass(frozen=True)
class Platform:
    """A Docker platform: its name, its Rego library's package and what a subject of it is called."""

    name: str  # backend name, and out/<name>/
    title: str
    library: str  # Rego package of the mapping's functions
    subject: str  # what a violation names: "service", "image"
    rows: tuple[Row, ...]
    exemptions: bool = False  # whether exemptions select its subjects (Compose: by project, service, labels)

    def not_applicable(self, rule: ir.ResolvedRule) -> str | None:
        """Why the rule means nothing here: a field it reads has no row."""
        mapped = {row.field for row in self.rows}
        missing = [check for check in rule.rule.checks if field_of(check) not in mapped]
        if not missing:
            return None
        return f"no {self.title} counterpart for {field_of(missing[0])} ({missing[0].loc})"

    def row(self, rule: ir.ResolvedRule, check: ir.Check) -> Row:
        """The row expressing `check` exactly, or the refusal naming the rule, construct and line."""
        for row in self.rows:
            value = _value(check.predicate)
            if ((row.field, row.predicate) == (field_of(check), type(check.predicate)) and type(check.predicate.ref) in row.refs
                    and type(row.value) is type(value) and row.value == value):  # True is not 1, nor 0 False
                return row
        rows = [f"{'/'.join(t.__name__ for t in r.refs)} {r.predicate.__name__} {'a list' if r.value is None else json.dumps(r.value)}"
                for r in self.rows if r.field == field_of(check)]
        raise Lowering(rule, self.name).unsupported(check.predicate, check, (
            f"{self.title} gives {field_of(check)} a meaning only as {' or '.join(rows)}"))

    def _exemption_data(self, rule: ir.ResolvedRule) -> list[dict[str, object]] | None:
        """The rule's exemptions of this platform's subjects, as the library's `selects` reads them."""
        if not self.exemptions:
            return None
        return [{"id": e.id, "projects": list(e.projects), "services": list(e.services), "labels": dict(e.labels),
                 "allow": {name: list(values) for name, values in e.allow}} for e in rule.placed(ir.Placement.COMPOSE)]

    def package(self, rule_id: str) -> str:
        return f"kupe.{self.name}.{identifier(rule_id)}"

    def rule_files(self, rule: ir.ResolvedRule) -> dict[str, str]:
        return {f"{self.name}/{rule.id}.rego": self.rule_module(rule)}

    def program_files(self, program: ir.Program) -> dict[str, str]:
        """The library and `package main` (deny: required rules, warn: recommended) over the rules that apply."""
        entries = [{"rule": Safe("deny" if rule.level is ir.Level.REQUIRED else "warn"),
                    "package": Safe(self.package(rule.id)), "staged": False}
                   for rule in program.rules if self.not_applicable(rule) is None]
        sources = program_sources(program)
        return {f"{self.name}/lib/{self.name}.rego": render(f"{self.name}/lib.rego.j2", sources=sources),
                f"{self.name}/main.rego": render("rego/main.rego.j2", sources=sources, entries=entries)}

    def rule_module(self, rule: ir.ResolvedRule) -> str:
        """The rule's Rego module: a `violation` per failing subject and check."""
        checks = []
        for check in rule.rule.checks:
            row = self.row(rule, check)
            values = _values(rule, check.predicate) if isinstance(check.predicate, _LISTS) else None
            param = _listed(check.predicate)
            checks.append({"function": Safe(row.function), "values": values, "text": row.meaning, "key": row.key,
                           "param": param.name if isinstance(param, ir.Param) else None,
                           "comment": f"{describe.predicate(check.predicate)}: {row.meaning}", "loc": str(check.loc)})
        return render("docker/rule.rego.j2", source=str(rule.rule.loc), rule_id=rule.id, title=rule.rule.title,
                      level=rule.level.value, fix=rule.rule.fix, package=Safe(self.package(rule.id)), library=Safe(self.library),
                      subject=self.subject, checks=checks, exemptions=self._exemption_data(rule))
