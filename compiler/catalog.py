"""out/POLICIES.md: the human catalog of rules, generated from the same IR as every backend."""

from __future__ import annotations

import json
from collections.abc import Mapping

from . import describe, ir
from .render import program_sources, render


def exemption_scope(e: ir.Exemption) -> str:
    parts = []
    if e.projects:
        parts.append("Compose projects " + ", ".join(e.projects))
    if e.services:
        parts.append("Compose services " + ", ".join(e.services))
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


def catalog(program: ir.Program, support: Mapping[str, Mapping[str, object]]) -> str:
    """The catalog; `support` is backend → rule → how the backend expresses it (`pipeline.support_matrix`)."""
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
            "support": [{"backend": backend, "support": str(by_rule[r.id])} for backend, by_rule in support.items()],
            "exemptions": [
                {"id": e.id, "scope": exemption_scope(e), "effect": exemption_effect(e), "reason": e.reason,
                 "owner": e.owner or "-", "ticket": e.ticket or "-", "expires": e.expires.isoformat()}
                for e in r.all_exemptions
            ],
        }
        for r in program.rules
    ]
    return render(
        "POLICIES.md.j2",
        sources=program_sources(program),
        rules=rules,
        rule_count=len(rules),
        exemption_count=len(program.exemptions),
        backends=list(support),
        exemptions=[{"id": e.id, "rules": ", ".join(e.rules), "source": str(e.loc)} for e in program.exemptions],
    )
