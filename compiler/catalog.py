"""out/POLICIES.md: the human catalog of rules, generated from the same IR as every backend."""

from __future__ import annotations

import json

from . import describe, ir
from .render import render


def exemption_scope(e: ir.Exemption) -> str:
    parts = []
    if e.namespaces:
        parts.append("namespaces " + ", ".join(e.namespaces))
    if e.names:
        parts.append("names " + ", ".join(e.names))
    if e.labels:
        parts.append("labels " + ", ".join(f"{k}={v}" for k, v in e.labels))
    if e.containers:
        parts.append("containers " + ", ".join(e.containers))
    return "; ".join(parts)


def exemption_effect(e: ir.Exemption) -> str:
    if not e.allow:
        return "waived"
    return "allows " + "; ".join(f"{name} += {', '.join(values)}" for name, values in e.allow)


def schedule(rule: ir.ResolvedRule) -> str:
    """How a recommended rule is on its way to enforcement, as of the compile date."""
    parts = []
    if rule.enforced_in:
        parts.append("already enforced in namespaces " + ", ".join(rule.enforced_in))
    if rule.rule.enforce_from and rule.level is ir.Level.RECOMMENDED:
        parts.append(f"required from {rule.rule.enforce_from.isoformat()}")
    return "; ".join(parts)


def catalog(program: ir.Program, backends: list[str]) -> str:
    rules = [
        {
            "id": r.id,
            "anchor": r.id,
            "level": r.level.value,
            "policy_set": r.rule.policy_set,
            "title": r.rule.title,
            "source": str(r.rule.loc),
            "rationale": r.rule.rationale,
            "checks": "; ".join(f"{describe.subject(c.subject)}: {describe.predicate(c.predicate)}" for c in r.rule.checks),
            "kinds": ", ".join(r.rule.kinds),
            "schedule": schedule(r),
            "fix": r.rule.fix,
            "params": "; ".join(f"{name} = {json.dumps(list(values))}" for name, values in r.rule.params),
            "exemptions": [
                {"id": e.id, "scope": exemption_scope(e), "effect": exemption_effect(e), "reason": e.reason,
                 "owner": e.owner or "-", "ticket": e.ticket or "-", "expires": e.expires.isoformat()}
                for e in r.exemptions
            ],
        }
        for r in program.rules
    ]
    return render(
        "POLICIES.md.j2",
        sources=", ".join(sorted({ps.loc.file for ps in program.policy_sets})),
        rules=rules,
        rule_count=len(rules),
        exemption_count=len(program.exemptions),
        backends=", ".join(backends),
    )
