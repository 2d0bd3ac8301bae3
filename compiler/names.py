"""Every name kupe-policy gives what it generates, in one place.

Backends write these names into their artifacts; the conformance harness, `audit` and the
catalog read them back, so each is defined once.
"""

from __future__ import annotations

from collections.abc import Iterable

RULE_LABEL = "policy.kupe.cloud/rule"  # on every generated object: the rule it enforces
LEVEL_LABEL = "policy.kupe.cloud/level"
MANAGED_BY = "app.kubernetes.io/managed-by"
TOOL = "kupe-policy"
WAIVER_CONDITION = "waiver.policy.kupe.cloud/"  # + exemption id: a VAP matchCondition
EXEMPTION_ANNOTATION = "exemptions.kupe.cloud/"  # + exemption id, or reason/owner/ticket/expires
KYVERNO_EXCEPTION_NAMESPACE = "kyverno"  # where PolicyExceptions go: Kyverno's `--exceptionNamespace`


def identifier(rule_id: str) -> str:
    """An id (`run-as-non-root`) as an identifier of Rego, CEL and Python (`run_as_non_root`)."""
    return rule_id.replace("-", "_")


def rego_package(rule_id: str) -> str:
    """The Rego package of a rule's module (the Rego backend)."""
    return f"kupe.rules.{identifier(rule_id)}"


def constraint_kind(rule_id: str) -> str:
    """A rule's Gatekeeper Constraint kind: `run-as-non-root` → `KupeRunAsNonRoot`."""
    return "Kupe" + "".join(part[:1].upper() + part[1:] for part in rule_id.split("-"))


def constraint_template(rule_id: str) -> str:
    """Gatekeeper requires a ConstraintTemplate's name to be its kind, lowercased."""
    return constraint_kind(rule_id).lower()


def admission_policy(rule_id: str) -> str:
    """A rule's ValidatingAdmissionPolicy (and binding) name."""
    return f"kupe-{rule_id}"


def enforced_stage_policy(rule_id: str) -> str:
    """The second policy of a staged rule (kyverno-vpol), denying in the stage namespaces."""
    return f"{admission_policy(rule_id)}-enforced"


def rule_of_validating_policy(policy: str, rule_ids: Iterable[str]) -> str | None:
    """The rule among `rule_ids` that a kyverno-vpol ValidatingPolicy named `policy` enforces, or None."""
    for rule_id in rule_ids:
        if policy in (admission_policy(rule_id), enforced_stage_policy(rule_id)):
            return rule_id
    return None


def kyverno_autogen_rules(rule_id: str, controllers: tuple[str, ...]) -> list[str]:
    """The rules Kyverno's autogen adds for these controllers (names cut to 63 characters, as Kyverno does)."""
    names = []
    if set(controllers) - {"CronJob"}:
        names.append(f"autogen-{rule_id}"[:63])
    if "CronJob" in controllers:
        names.append(f"autogen-cronjob-{rule_id}"[:63])
    return names


def kyverno_rule_names(rule_id: str) -> tuple[str, ...]:
    """Every name a Kyverno result for the rule may carry: the rule and its autogen rules."""
    return (rule_id, *kyverno_autogen_rules(rule_id, ("Deployment", "CronJob")))
