"""Pure IR passes: from what policy files declared to what backends lower."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from . import ir
from .errors import PolicyError

# Where each workload kind keeps its pod spec (Kubernetes API).
POD_TARGETS: dict[str, ir.PodTarget] = {
    t.kind: t
    for t in (
        ir.PodTarget("Pod", "", "pods", ("spec",), subresources=("ephemeralcontainers",)),
        ir.PodTarget("Deployment", "apps", "deployments", ("spec", "template", "spec")),
        ir.PodTarget("ReplicaSet", "apps", "replicasets", ("spec", "template", "spec")),
        ir.PodTarget("StatefulSet", "apps", "statefulsets", ("spec", "template", "spec")),
        ir.PodTarget("DaemonSet", "apps", "daemonsets", ("spec", "template", "spec")),
        ir.PodTarget("Job", "batch", "jobs", ("spec", "template", "spec")),
        ir.PodTarget("CronJob", "batch", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
        ir.PodTarget("ReplicationController", "", "replicationcontrollers", ("spec", "template", "spec")),
    )
}


# Compile warns about exemptions that expire sooner than this.
EXPIRY_WARNING_DAYS = 14


def expand_pod_controllers(rule: ir.Rule) -> tuple[ir.PodTarget, ...]:
    """Every kind the rule applies to, with where its pod spec lives."""
    return tuple(POD_TARGETS[kind] for kind in rule.kinds)


def place(exemption: ir.Exemption) -> ir.Placement:
    """Where every backend expresses an exemption: the narrowest of the four places that is exact
    (or Compose, for an exemption of Compose services)."""
    if exemption.for_compose:
        return ir.Placement.COMPOSE
    if exemption.allow:
        return ir.Placement.WIDENING
    if exemption.containers:
        return ir.Placement.CONTAINERS
    if exemption.namespaces and not (exemption.names or exemption.labels):
        return ir.Placement.NAMESPACES
    return ir.Placement.OBJECTS


def level_as_of(rule: ir.Rule, as_of: dt.date) -> ir.Level:
    """A recommended rule scheduled for enforcement is required from its enforce_from date on."""
    if rule.enforce_from is not None and rule.enforce_from <= as_of:
        return ir.Level.REQUIRED
    return rule.level


def _check_unique(kind: str, items: list[tuple[str, ir.Loc]]) -> None:
    """The second declaration of an id is the error, pointing back at the first."""
    first: dict[str, ir.Loc] = {}
    for name, loc in items:
        if name in first:
            raise PolicyError(f"{kind} id {name!r} is declared again (first at {first[name]})", loc)
        first[name] = loc


def _validate_exemption(exemption: ir.Exemption, rules: dict[str, ir.Rule]) -> None:
    for rule_id in exemption.rules:
        rule = rules.get(rule_id)
        if rule is None:
            raise PolicyError(f"exemption {exemption.id!r} names unknown rule {rule_id!r}; known rules: {sorted(rules)}", exemption.loc)
        for name, _ in exemption.allow:
            if name not in dict(rule.params):
                raise PolicyError(
                    f"exemption {exemption.id!r} allows param {name!r}, which rule {rule_id!r} does not have "
                    f"(its params: {sorted(dict(rule.params))})", exemption.loc)
        if exemption.containers and not all(isinstance(c.subject, ir.EachContainer) for c in rule.checks):
            raise PolicyError(f"exemption {exemption.id!r} is scoped to containers, but rule {rule_id!r} checks the pod, not its containers", exemption.loc)


def resolve(
    policy_sets: tuple[ir.PolicySet, ...], exemptions: tuple[ir.Exemption, ...], as_of: dt.date
) -> tuple[ir.Program, list[str]]:
    """Attach pod targets and in-force exemptions to every rule; drop expired exemptions with a warning."""
    all_rules = [rule for ps in policy_sets for rule in ps.rules]
    _check_unique("policy set", [(ps.id, ps.loc) for ps in policy_sets])
    _check_unique("rule", [(r.id, r.loc) for r in all_rules])
    _check_unique("exemption", [(e.id, e.loc) for e in exemptions])
    by_id = {rule.id: rule for rule in all_rules}
    exemptions = tuple(replace(e, rules=tuple(by_id)) if e.every_rule else e for e in exemptions)
    for exemption in exemptions:
        _validate_exemption(exemption, by_id)

    warnings: list[str] = []
    in_force = tuple(e for e in exemptions if e.expires >= as_of)
    expired = tuple(e for e in exemptions if e.expires < as_of)
    for e in expired:
        warnings.append(f"{e.loc}: exemption {e.id!r} expired on {e.expires.isoformat()} (as of {as_of.isoformat()}); dropped")
    for e in in_force:
        days = (e.expires - as_of).days
        if days < EXPIRY_WARNING_DAYS:
            warnings.append(f"{e.loc}: exemption {e.id!r} expires on {e.expires.isoformat()} ({days} days left); renew or retire it")

    for rule in all_rules:
        if rule.level is ir.Level.REQUIRED and (rule.enforce_from or rule.enforced_in):
            warnings.append(f"{rule.loc}: rule {rule.id!r} is required everywhere already; its enforce_from/enforced_in no longer apply")
    audit_action = {ps.id: ps.audit_action for ps in policy_sets}
    resolved = tuple(
        ir.ResolvedRule(
            rule=rule,
            level=level,
            audit_action=audit_action[rule.policy_set],
            targets=expand_pod_controllers(rule),
            exemptions=tuple((e, place(e)) for e in in_force if rule.id in e.rules),
            enforced_in=rule.enforced_in if level is ir.Level.RECOMMENDED else (),
        )
        for rule in all_rules
        for level in [level_as_of(rule, as_of)]
    )
    return ir.Program(as_of, policy_sets, resolved, in_force, expired), warnings
