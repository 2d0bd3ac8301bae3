"""Kyverno's ValidatingPolicy (`policies.kyverno.io`), emulated as Kyverno 1.19 evaluates it.

Why: no Kyverno binary runs here, yet the `kyverno-vpol` artifacts must be judged as a cluster
would judge them. A ValidatingPolicy is a ValidatingAdmissionPolicy with Kyverno's additions, so
the matching and CEL evaluation are the VAP emulator's (`conformance.engines.vap.admit`, on the
CEL C++ runtime); this module adds what Kyverno does differently (Kyverno source, v1.17 to v1.19,
pkg/cel/policies/vpol):

- validationActions live in the policy (default `[Deny]`); there is no binding;
- autogen: a policy whose only resource rule is `""/v1/pods` (no resourceNames,
  excludeResourceRules or objectSelector) also applies to the pod controllers named in
  `autogen.podControllers.controllers` (absent: all six; `[]`: none), through copies whose CEL
  text reads the pod template (`object.spec` → `object.spec.template.spec`, then `object.metadata`
  → `object.spec.template.metadata`; CronJobs through `spec.jobTemplate.spec.template`; likewise
  `oldObject`; an optional selection, `object.?spec`, is left as written);
- PolicyExceptions: those whose `policyRefs` name the policy and its kind apply; an exception
  whose `expiresAt` has passed does not (admission; kyverno#17473: background scans and the CLI
  still apply it, `honour_expiry=False` reproduces them); an exception's `matchConditions` see
  `object`, `oldObject`, `request` and `namespaceObject` only, and an error in them follows the
  policy's failurePolicy (Fail: the policy errors; Ignore: the exception does not match); an
  exception without `allowedValues` or `images` that matches skips the policy; otherwise the policy
  runs with the variable `exceptions` (`allowedValues`, `allowedImages`: the lists of every
  matching exception, concatenated; empty lists when none matches);
- the policy's matchConditions see `namespaceObject` (pkg/cel/policies/vpol/compiler/policy.go
  hands them the evaluation data; the API server's plugin gives its matchConditions none);
- results as Kyverno reports them: `skip` (not matched, a matchCondition false, or a full
  exception), `fail` (a validation false), `error` (an evaluation error), `pass`.

The CEL environment is the VAP emulator's (Kubernetes libraries, optionals with cel-go's
`orValue`, bindings, strings, math, encoders). Kyverno's own libraries (http, resource, image,
globalcontext, ...) are not emulated: a policy that calls them does not compile here, which is
an `error`, never a pass. The upstream pod-security-vpol policies call none of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .vap import Decision, admit

# NamespacedValidatingPolicy (which applies only in its own namespace) is not emulated.
POLICY_KINDS = ("ValidatingPolicy",)
# autogen: plural resource → (API group, kind), and the two groups of generated policies
_CONTROLLERS = {"daemonsets": ("apps", "DaemonSet"), "deployments": ("apps", "Deployment"),
                "replicasets": ("apps", "ReplicaSet"), "statefulsets": ("apps", "StatefulSet"),
                "jobs": ("batch", "Job"), "cronjobs": ("batch", "CronJob")}
_TEMPLATE = {"defaults": "spec.template.", "cronjobs": "spec.jobTemplate.spec.template."}
_SELECTION = re.compile(r"\b(object|oldObject)\.(spec|metadata)\b")


@dataclass(frozen=True)
class Result:
    """Kyverno's verdict on one request for one policy."""

    status: str  # pass | fail | error | skip
    actions: tuple[str, ...]  # the policy's validationActions
    messages: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()  # `namespace/name` of the exceptions that skipped the policy

    @property
    def denied(self) -> bool:
        """Whether admission rejects the request: a failure or an error under `Deny`."""
        return self.status in ("fail", "error") and "Deny" in self.actions


# --- autogen ------------------------------------------------------------------------------------


def controllers(policy: Mapping[str, Any]) -> tuple[str, ...]:
    """The plural resources autogen extends the policy to: none unless it matches exactly v1 Pods."""
    spec = policy.get("spec") or {}
    match = spec.get("matchConstraints") or {}
    rules = match.get("resourceRules") or []
    if len(rules) != 1 or match.get("excludeResourceRules") or match.get("objectSelector"):
        return ()
    (rule,) = rules
    if (rule.get("apiGroups"), rule.get("apiVersions"), rule.get("resources")) != ([""], ["v1"], ["pods"]) \
            or rule.get("resourceNames"):
        return ()
    configured = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    if configured is None:
        return tuple(_CONTROLLERS)
    return tuple(c for c in _CONTROLLERS if c in configured)  # plural resource names, as Kyverno lists them


def _rewrite(text: str, template: str) -> str:
    """Autogen's text rewrite: the pod's spec and metadata become the controller's pod template's."""
    return _SELECTION.sub(lambda m: f"{m.group(1)}.{template}{m.group(2)}", text)


def _rewritten(spec: Mapping[str, Any], template: str) -> dict[str, Any]:
    """The CEL of `spec` (matchConditions, variables, validations, auditAnnotations) rewritten."""
    def each(items: Any, *fields: str) -> list[dict[str, Any]]:
        return [{k: _rewrite(v, template) if k in fields and isinstance(v, str) else v for k, v in item.items()}
                for item in items or []]
    return {**spec,
            "matchConditions": each(spec.get("matchConditions"), "expression"),
            "variables": each(spec.get("variables"), "expression"),
            "validations": each(spec.get("validations"), "expression", "messageExpression"),
            "auditAnnotations": each(spec.get("auditAnnotations"), "valueExpression")}


def autogen_specs(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's spec, then one spec per group of controllers autogen generates for it."""
    spec = dict(policy.get("spec") or {})
    plurals = controllers(policy)
    specs = [spec]
    rule = (spec.get("matchConstraints") or {}).get("resourceRules", [{}])[0] if plurals else {}
    for group_name, template in _TEMPLATE.items():
        chosen = [p for p in plurals if (p == "cronjobs") == (group_name == "cronjobs")]
        if not chosen:
            continue
        by_group: dict[str, list[str]] = {}
        for plural in chosen:
            by_group.setdefault(_CONTROLLERS[plural][0], []).append(plural)
        resource_rules = [{**rule, "apiGroups": [group], "apiVersions": ["v1"], "resources": resources}
                          for group, resources in by_group.items()]
        generated = _rewritten(spec, template)
        generated["matchConstraints"] = {**spec["matchConstraints"], "resourceRules": resource_rules}
        specs.append(generated)
    return specs


# --- evaluation ---------------------------------------------------------------------------------


def _expired(exception: Mapping[str, Any], now: dt.datetime) -> bool:
    expires = (exception.get("spec") or {}).get("expiresAt")
    if expires is None:
        return False
    at = expires if isinstance(expires, dt.datetime) else dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    return at <= now


def _refers_to(exception: Mapping[str, Any], policy: Mapping[str, Any]) -> bool:
    name, kind = (policy.get("metadata") or {}).get("name"), policy.get("kind")
    return any(ref.get("name") == name and ref.get("kind") == kind
               for ref in (exception.get("spec") or {}).get("policyRefs") or [])


def _vap(name: str, spec: Mapping[str, Any], failure_policy: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ValidatingAdmissionPolicy and binding that evaluate `spec` as the VAP emulator would."""
    policy = {"metadata": {"name": name}, "spec": {**spec, "failurePolicy": failure_policy}}
    binding = {"spec": {"policyName": name, "validationActions": ["Deny"]}}
    return policy, binding


def evaluate(policy: Mapping[str, Any], obj: dict[str, Any] | None, *, operation: str = "CREATE",
             old_object: dict[str, Any] | None = None, namespace: dict[str, Any] | None = None,
             exceptions: Sequence[Mapping[str, Any]] = (), subresource: str = "",
             now: dt.datetime | None = None, honour_expiry: bool = True,
             user_info: dict[str, Any] | None = None) -> Result:
    """Kyverno's result for one request and one ValidatingPolicy, with the PolicyExceptions given.

    `now` decides which exceptions have expired (default: the clock); `honour_expiry=False`
    applies expired ones too, as Kyverno's background scans and CLI do (kyverno#17473).
    """
    spec = policy.get("spec") or {}
    actions = tuple(spec.get("validationActions") or ("Deny",))
    failure_policy = spec.get("failurePolicy") or "Fail"
    name = (policy.get("metadata") or {}).get("name") or ""
    now = now or dt.datetime.now(dt.timezone.utc)
    request = dict(operation=operation, old_object=old_object, namespace=namespace,
                   subresource=subresource, user_info=user_info)

    def run(evaluated: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Decision:
        vap, binding = _vap(name, evaluated, failure_policy)
        return admit(vap, binding, obj, extra=extra, namespace_in_match_conditions=True, **request)

    selecting = next((s for s in autogen_specs(policy)
                      if run({"matchConstraints": s.get("matchConstraints") or {}}).matched), None)
    if selecting is None:
        return Result("skip", actions)

    in_force = [e for e in exceptions if _refers_to(e, policy) and not (honour_expiry and _expired(e, now))]
    matching = []
    for exception in in_force:
        conditions = (exception.get("spec") or {}).get("matchConditions") or []
        decision = run({"matchConstraints": selecting["matchConstraints"], "matchConditions": conditions})
        if decision.error is not None:
            return Result("error", actions, (f"exception {_key(exception)}: {decision.error}",))
        if decision.matched:
            matching.append(exception)
    full = [e for e in matching if not ((e.get("spec") or {}).get("allowedValues") or (e.get("spec") or {}).get("images"))]
    if full:
        return Result("skip", actions, exceptions=tuple(_key(e) for e in full))
    data = {"allowedValues": [v for e in matching for v in (e.get("spec") or {}).get("allowedValues") or []],
            "allowedImages": [v for e in matching for v in (e.get("spec") or {}).get("images") or []]}

    decision = run(selecting, {"exceptions": data})
    if not decision.matched:
        return Result("skip", actions)
    messages = tuple(r.message for r in decision.results)
    if decision.error is not None or decision.ignored_errors:
        return Result("error", actions, messages or decision.ignored_errors)
    return Result("fail" if decision.results else "pass", actions, messages)


def _key(exception: Mapping[str, Any]) -> str:
    metadata = exception.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
