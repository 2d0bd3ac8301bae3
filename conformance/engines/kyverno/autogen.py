"""Kyverno autogen: Pod rules expanded to pod controllers.

``autogen-<rule>`` targets DaemonSet, Deployment, Job, StatefulSet, ReplicaSet and
ReplicationController (pod template at ``spec.template``); ``autogen-cronjob-<rule>``
targets CronJob (``spec.jobTemplate.spec.template``).  The
``pod-policies.kyverno.io/autogen-controllers`` annotation picks the controllers
(``none`` disables).  Autogen is refused for the whole policy when any rule filters
by name, selector or annotations, mixes Pod with other kinds, or generates.
Patterns are nested under the template; ``request.object.spec|metadata`` in
JMESPath text is rewritten to the template's path.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping

ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
CONTROLLERS = ("DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController")
_ALL = set(CONTROLLERS) | {"CronJob"}

_POD_REWRITES = (
    ("request.object.spec", "request.object.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.template.metadata"),
)
_CRONJOB_REWRITES = (
    ("request.object.spec", "request.object.spec.jobTemplate.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.jobTemplate.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.jobTemplate.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.jobTemplate.spec.template.metadata"),
)


def _filters(block: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    block = block or {}
    filters = [f.get("resources") or {} for f in (block.get("any") or []) + (block.get("all") or [])]
    if block.get("resources"):
        filters.append(block["resources"])
    return filters


def _can_autogen(rules: list[Mapping[str, Any]]) -> bool:
    needed = False
    for rule in rules:
        if rule.get("generate"):
            return False
        mutate = rule.get("mutate") or {}
        if mutate.get("patchesJson6902") or any(f.get("patchesJson6902") for f in mutate.get("foreach") or []):
            return False
        for description in _filters(rule.get("match")) + _filters(rule.get("exclude")):
            kinds = description.get("kinds") or []
            if description.get("name") or description.get("names") or description.get("selector") is not None \
                    or description.get("annotations") is not None or (len(kinds) > 1 and "Pod" in kinds):
                return False
            needed = needed or bool(_ALL.union({"Pod"}) & set(kinds))
    return needed


def _all_kinds(block: Mapping[str, Any] | None) -> list[str]:
    return [k for f in _filters(block) for k in f.get("kinds") or []]


def _retarget(block: Mapping[str, Any] | None, kinds: list[str], *, only_pod: bool) -> Any:
    """Replace kinds of the filters (only those naming Pod, for controllers)."""
    if not block:
        return block
    block = copy.deepcopy(dict(block))
    for key in ("any", "all"):
        if block.get(key):
            for entry in block[key]:
                resources = entry.get("resources")
                if resources is not None and (not only_pod or "Pod" in (resources.get("kinds") or [])):
                    resources["kinds"] = list(kinds)
            return block
    resources = block.get("resources")
    if resources is not None and resources.get("kinds"):
        resources["kinds"] = list(kinds)
    return block


def _wrap(pattern: Any, template_key: str) -> dict[str, Any]:
    return {"spec": {template_key: pattern}}


def _derive(rule: Mapping[str, Any], name: str, kinds: list[str], template_key: str, *, only_pod: bool) -> dict[str, Any] | None:
    """One generated rule (before the JMESPath text rewrite)."""
    validate = rule.get("validate")
    if not validate:
        return None
    out = {k: copy.deepcopy(v) for k, v in rule.items() if k not in ("name", "match", "exclude", "validate")}
    out["name"] = name[:63]
    out["match"] = _retarget(rule.get("match"), kinds, only_pod=only_pod)
    if rule.get("exclude"):
        out["exclude"] = _retarget(rule.get("exclude"), kinds, only_pod=only_pod)
    keep = {k: validate[k] for k in ("message", "failureAction", "failureActionOverrides", "allowExistingViolations")
            if k in validate}
    if validate.get("pattern") is not None:
        new = {**keep, "pattern": _wrap(validate["pattern"], template_key)}
    elif validate.get("deny") is not None:
        new = {**keep, "deny": validate["deny"]}
    elif validate.get("podSecurity") is not None:
        new = {**keep, "podSecurity": validate["podSecurity"]}
    elif validate.get("anyPattern") is not None:
        new = {**keep, "anyPattern": [_wrap(p, template_key) for p in validate["anyPattern"]]}
    elif validate.get("foreach"):
        new = {**keep, "foreach": validate["foreach"]}
    else:
        new = dict(validate)
    out["validate"] = copy.deepcopy(new)
    return out


def _rewrite(rule: dict[str, Any], rewrites: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    text = json.dumps(rule)
    for old, new in rewrites:
        text = text.replace(old, new)
    return json.loads(text)


def _controllers(policy: Mapping[str, Any], rules: list[Mapping[str, Any]]) -> set[str]:
    if not _can_autogen(rules):
        return set()
    annotations = (policy.get("metadata") or {}).get("annotations") or {}
    if ANNOTATION not in annotations:
        return set(_ALL)
    requested = {c.strip() for c in str(annotations[ANNOTATION]).split(",")}
    if "none" in requested:
        return set()
    if "all" in requested:
        return set(_ALL)
    return requested & _ALL


def compute_rules(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's rules plus the autogen rules Kyverno would add."""
    rules = list((policy.get("spec") or {}).get("rules") or [])
    controllers = _controllers(policy, rules)
    pod_kinds = sorted(controllers & set(CONTROLLERS))
    generated: list[dict[str, Any]] = []
    for rule in rules:
        name = str(rule.get("name", ""))
        match_kinds, exclude_kinds = _all_kinds(rule.get("match")), _all_kinds(rule.get("exclude"))
        if name.startswith("autogen-") or "Pod" not in match_kinds or (exclude_kinds and "Pod" not in exclude_kinds):
            continue
        if pod_kinds:
            derived = _derive(rule, f"autogen-{name}", pod_kinds, "template", only_pod=True)
            if derived:
                generated.append(_rewrite(derived, _POD_REWRITES))
        if "CronJob" in controllers:
            base = _derive(rule, f"autogen-{name}", sorted(controllers & set(CONTROLLERS)) or list(CONTROLLERS),
                           "template", only_pod=True)
            derived = _derive(base, f"autogen-cronjob-{name}", ["CronJob"], "jobTemplate", only_pod=False) if base else None
            if derived:
                generated.append(_rewrite(derived, _CRONJOB_REWRITES))
    if not generated:
        return [dict(r) for r in rules]
    return [dict(r) for r in rules if not str(r.get("name", "")).startswith("autogen-")] + generated
