"""Every IR node, lowered by every backend, side by side (after sqlglot's dialect tests).

Each row of PREDICATES is one check, each column the exact text a backend emits for its predicate
and reference: Rego's `ok_0` (Gatekeeper's templates carry the same Rego), the CEL condition under
which a subject complies (the `gatekeeper` column is its K8sNativeValidation block, which reads
parameters and exemptions from the Constraint where the VAP has constants), Kyverno's deny
condition (or pattern); `kyverno-vpol` reads the VAP's CEL and states only where it differs (a
parameter that exemptions widen through Kyverno's `exceptions.allowedValues`). SUBJECTS does the same for what each check iterates over: Rego's
`failing_0`, the CEL variable around the condition (`…`), Kyverno's foreach `list`. The rows cover
every predicate, reference and subject (`test_the_rows_cover_every_node`), so a new node needs a
row here; a backend that cannot lower a node refuses it, naming the rule, the construct, the
backend and the policy line.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest
import yaml

from compiler import ir, passes
from compiler.backends import all_backends
from compiler.dsl import PolicySet, Required, containers, param, pod, volumes
from compiler.errors import UnsupportedError

# One check per row; SUBJECTS reads each subject from the row named in SUBJECT_ROWS.
ROWS: dict[str, Callable[[], ir.Check]] = {
    "equals": lambda: containers().field("securityContext.allowPrivilegeEscalation").equals(False),
    "not_equals": lambda: containers().field("securityContext.privileged").not_equals(True),
    "pod_spec": lambda: pod().field("hostNetwork").not_equals(True),
    "effective": lambda: containers().effective("securityContext.runAsNonRoot").equals(True),
    "one_of": lambda: containers().field("securityContext.seccompProfile.type").one_of(["RuntimeDefault", "Localhost"]),
    "none_of_path": lambda: volumes().field("hostPath.path").as_path().none_of(["/var/run/docker.sock"]),
    "contains": lambda: containers().field("securityContext.capabilities.drop").contains("ALL"),
    "subset_of_param": lambda: containers().field("securityContext.capabilities.add").subset_of(param("allowed")),
    "present_some_lists": lambda: containers(["containers", "initContainers"]).field("resources.limits.cpu").present(),
}
SUBJECT_ROWS = {"containers": "not_equals", "pod_spec": "pod_spec", "volumes": "none_of_path",
                "some_container_lists": "present_some_lists"}

PREDICATES = {
    "equals": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.allowPrivilegeEscalation must be false
ok_0(x, _, _) if {
	v := kupe.value(x, ["securityContext", "allowPrivilegeEscalation"])
	is_boolean(v)
	v == false
}
""",
        "gatekeeper": """
(type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null)) == bool && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null) == false)
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ element."securityContext"."allowPrivilegeEscalation" != `false` }}
""",
        "vap": """
type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null)) == bool && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?allowPrivilegeEscalation.orValue(null) : null) == false
""",
    },
    "not_equals": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.privileged must not be true
ok_0(x, _, _) if {
	not kupe.has_value(x, ["securityContext", "privileged"])
}

ok_0(x, _, _) if {
	v := kupe.value(x, ["securityContext", "privileged"])
	is_boolean(v)
	v != true
}
""",
        "gatekeeper": """
((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null)) == bool && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) != true)
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ element."securityContext"."privileged" != `null` && (type(element."securityContext"."privileged") != 'boolean' || element."securityContext"."privileged" == `true`) }}
""",
        "vap": """
(type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null)) == bool && (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?privileged.orValue(null) : null) != true
""",
    },
    "pod_spec": {
        "rego": """
# Check 0, the pod spec: hostNetwork must not be true
ok_0(x, _, _) if {
	not kupe.has_value(x, ["hostNetwork"])
}

ok_0(x, _, _) if {
	v := kupe.value(x, ["hostNetwork"])
	is_boolean(v)
	v != true
}
""",
        "gatekeeper": """
(variables.podSpec.?hostNetwork.orValue(null) == null || type(variables.podSpec.?hostNetwork.orValue(null)) == bool && variables.podSpec.?hostNetwork.orValue(null) != true)
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || "" in e.containers))
""",
        "kyverno": """
deny: {{ element."hostNetwork" != `null` && (type(element."hostNetwork") != 'boolean' || element."hostNetwork" == `true`) }}
""",
        "vap": """
variables.podSpec.?hostNetwork.orValue(null) == null || type(variables.podSpec.?hostNetwork.orValue(null)) == bool && variables.podSpec.?hostNetwork.orValue(null) != true
""",
    },
    "effective": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.runAsNonRoot (or the pod's securityContext.runAsNonRoot when the container leaves it unset) must be true
ok_0(x, spec, _) if {
	v := kupe.effective(spec, x, ["securityContext", "runAsNonRoot"], ["securityContext", "runAsNonRoot"])
	is_boolean(v)
	v == true
}
""",
        "gatekeeper": """
(type(((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null))) == bool && ((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null)) == true)
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ ([element."securityContext"."runAsNonRoot", request.object.spec."securityContext"."runAsNonRoot"][?@ != `null`] | [0]) != `true` }}
""",
        "vap": """
type(((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null))) == bool && ((type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) != null ? (type(x.?securityContext.orValue(null)) == map ? x.?securityContext.?runAsNonRoot.orValue(null) : null) : (type(variables.podSpec.?securityContext.orValue(null)) == map ? variables.podSpec.?securityContext.?runAsNonRoot.orValue(null) : null)) == true
""",
    },
    "one_of": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.seccompProfile.type must be one of ["RuntimeDefault", "Localhost"]
ok_0(x, _, _) if {
	v := kupe.value(x, ["securityContext", "seccompProfile", "type"])
	is_string(v)
	v in {"RuntimeDefault", "Localhost"}
}
""",
        "gatekeeper": """
(type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?seccompProfile.orValue(null)) == map ? x.?securityContext.?seccompProfile.?type.orValue(null) : null)) == string && (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?seccompProfile.orValue(null)) == map ? x.?securityContext.?seccompProfile.?type.orValue(null) : null) in ["RuntimeDefault", "Localhost"])
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ type(element."securityContext"."seccompProfile"."type") != 'string' || !contains(`["RuntimeDefault", "Localhost"]`, element."securityContext"."seccompProfile"."type") }}
""",
        "vap": """
type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?seccompProfile.orValue(null)) == map ? x.?securityContext.?seccompProfile.?type.orValue(null) : null)) == string && (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?seccompProfile.orValue(null)) == map ? x.?securityContext.?seccompProfile.?type.orValue(null) : null) in ["RuntimeDefault", "Localhost"]
""",
    },
    "none_of_path": {
        "rego": """
# Check 0, each volume: hostPath.path (as a path, without //, /./ or a trailing /) must not be one of ["/var/run/docker.sock"]
ok_0(x, _, _) if {
	not kupe.has_value(x, ["hostPath", "path"])
}

ok_0(x, _, _) if {
	v := kupe.normal_path(kupe.value(x, ["hostPath", "path"]))
	is_string(v)
	not v in {"/var/run/docker.sock"}
}
""",
        "gatekeeper": """
((type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/'))) == null || type((type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/')))) == string && !((type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/'))) in ["/var/run/docker.sock"]))
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || "" in e.containers))
""",
        "kyverno": """
deny: {{ (((type(element."hostPath"."path") != 'string' && [element."hostPath"."path"]) || (contains(split(element."hostPath"."path", '/'), '..') && [`false`]) || [join('', [(starts_with(element."hostPath"."path", '/') && '/') || '', join('/', split(element."hostPath"."path", '/')[?@ != '' && @ != '.'])])]) | [0]) != `null` && (type((((type(element."hostPath"."path") != 'string' && [element."hostPath"."path"]) || (contains(split(element."hostPath"."path", '/'), '..') && [`false`]) || [join('', [(starts_with(element."hostPath"."path", '/') && '/') || '', join('/', split(element."hostPath"."path", '/')[?@ != '' && @ != '.'])])]) | [0])) != 'string' || contains(`["/var/run/docker.sock"]`, (((type(element."hostPath"."path") != 'string' && [element."hostPath"."path"]) || (contains(split(element."hostPath"."path", '/'), '..') && [`false`]) || [join('', [(starts_with(element."hostPath"."path", '/') && '/') || '', join('/', split(element."hostPath"."path", '/')[?@ != '' && @ != '.'])])]) | [0]))) }}
""",
        "vap": """
(type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/'))) == null || type((type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/')))) == string && !((type((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null)) != string ? (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null) : (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').exists(s, s == '..') ? dyn(false) : dyn(((type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).startsWith('/') ? '/' : '') + (type(x.?hostPath.orValue(null)) == map ? x.?hostPath.?path.orValue(null) : null).split('/').filter(s, s != '' && s != '.').join('/'))) in ["/var/run/docker.sock"])
""",
    },
    "contains": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.capabilities.drop must contain "ALL"
ok_0(x, _, _) if {
	v := kupe.value(x, ["securityContext", "capabilities", "drop"])
	is_array(v)
	"ALL" in v
}
""",
        "gatekeeper": """
(type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?drop.orValue(null) : null)) == list && "ALL" in (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?drop.orValue(null) : null))
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ type(element."securityContext"."capabilities"."drop") != 'array' || !contains(element."securityContext"."capabilities"."drop", `"ALL"`) }}
""",
        "vap": """
type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?drop.orValue(null) : null)) == list && "ALL" in (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?drop.orValue(null) : null)
""",
    },
    "subset_of_param": {
        "rego": """
# Check 0, each container in containers, initContainers, ephemeralContainers: securityContext.capabilities.add may only hold the values of parameter allowed
ok_0(x, _, wl) if {
	not kupe.has_value(x, ["securityContext", "capabilities", "add"])
}

ok_0(x, _, wl) if {
	v := kupe.value(x, ["securityContext", "capabilities", "add"])
	is_array(v)
	allowed_items := kupe.allowed(wl, params, widenings, "allowed", object.get(x, "name", ""))
	every item in v {
		item in allowed_items
	}
}
""",
        "gatekeeper": """
((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null)) == list && (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null).all(item, (item in variables.parameters["allowed"] || variables.selectedWidenings.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers) && has(e.allow) && item in e.allow[?"allowed"].orValue([])))))
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
deny: {{ element."securityContext"."capabilities"."add" != `null` && (type(element."securityContext"."capabilities"."add") != 'array' || length(element."securityContext"."capabilities"."add"[?contains(`["NET_BIND_SERVICE"]`, @)]) != length(element."securityContext"."capabilities"."add")) }}
""",
        "vap": """
(type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null)) == list && (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null).all(item, item in ["NET_BIND_SERVICE"])
""",
        # the VAP's CEL, with the widenings read from Kyverno's PolicyExceptions (allowedValues)
        "kyverno-vpol": """
(type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null) == null || type((type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null)) == list && (type(x.?securityContext.orValue(null)) == map && type(x.?securityContext.?capabilities.orValue(null)) == map ? x.?securityContext.?capabilities.?add.orValue(null) : null).all(item, (item in ["NET_BIND_SERVICE"] || type(item) == string && (('*:' + item) in exceptions.allowedValues || type(x.?name.orValue('')) == string && (x.?name.orValue('') + ':' + item) in exceptions.allowedValues)))
""",
    },
    "present_some_lists": {
        "rego": """
# Check 0, each container in containers, initContainers: resources.limits.cpu must be set
ok_0(x, _, _) if {
	kupe.has_value(x, ["resources", "limits", "cpu"])
}
""",
        "gatekeeper": """
((type(x.?resources.orValue(null)) == map && type(x.?resources.?limits.orValue(null)) == map ? x.?resources.?limits.?cpu.orValue(null) : null) != null)
  || variables.selectedWaivers.exists(e, has(e.containers) && (size(e.containers) == 0 || x.?name.orValue('') in e.containers))
""",
        "kyverno": """
pattern: {"resources": {"limits": {"cpu": "*"}}}
""",
        "vap": """
(type(x.?resources.orValue(null)) == map && type(x.?resources.?limits.orValue(null)) == map ? x.?resources.?limits.?cpu.orValue(null) : null) != null
""",
    },
}

SUBJECTS = {
    "containers": {
        "rego": """
# The containers of a pod spec failing check 0, by name (exemptions applied; none when `spec` is null: no old object).
failing_0(spec, wl) := {name |
	is_object(spec)
	some x in kupe.containers(spec, ["containers", "initContainers", "ephemeralContainers"])
	not ok_0(x, spec, wl)
	name := object.get(x, "name", "")
	not kupe.waived(wl, waivers, name)
}
""",
        "gatekeeper": "variables.containers.filter(x, !(…)).map(x, x.?name.orValue(''))",
        "kyverno": """list: request.object.spec.["containers", "initContainers", "ephemeralContainers"][?type(@) == 'array'][] | [?type(@) == 'object']""",
        "vap": "variables.containers.filter(x, !(…)).map(x, x.?name.orValue(''))",
    },
    "pod_spec": {
        "rego": """
# The pod spec, named "", when it fails check 0 (exemptions applied; none when `spec` is null: no old object).
failing_0(spec, wl) := {"" |
	is_object(spec)
	x := spec
	not ok_0(x, spec, wl)
	not kupe.waived(wl, waivers, "")
}
""",
        "gatekeeper": "variables.podSpec != null && !(…) ? [''] : []",
        "kyverno": "list: [request.object.spec] | [?type(@) == 'object']",
        "vap": "variables.podSpec != null && !(…) ? [''] : []",
    },
    "volumes": {
        "rego": """
# The volumes of a pod spec failing check 0, by name (exemptions applied; none when `spec` is null: no old object).
failing_0(spec, wl) := {name |
	is_object(spec)
	some x in kupe.volumes(spec)
	not ok_0(x, spec, wl)
	name := object.get(x, "name", "")
	not kupe.waived(wl, waivers, "")
}
""",
        "gatekeeper": "variables.volumes.filter(x, !(…)).map(x, x.?name.orValue(''))",
        "kyverno": "list: request.object.spec.volumes[*]",
        "vap": "variables.volumes.filter(x, !(…)).map(x, x.?name.orValue(''))",
    },
    "some_container_lists": {
        "rego": """
# The containers of a pod spec failing check 0, by name (exemptions applied; none when `spec` is null: no old object).
failing_0(spec, wl) := {name |
	is_object(spec)
	some x in kupe.containers(spec, ["containers", "initContainers"])
	not ok_0(x, spec, wl)
	name := object.get(x, "name", "")
	not kupe.waived(wl, waivers, name)
}
""",
        "gatekeeper": "variables.containersAndInitContainers.filter(x, !(…)).map(x, x.?name.orValue(''))",
        "kyverno": """list: request.object.spec.["containers", "initContainers"][?type(@) == 'array'][] | [?type(@) == 'object']""",
        "vap": "variables.containersAndInitContainers.filter(x, !(…)).map(x, x.?name.orValue(''))",
    },
}


def _program(check: ir.Check) -> ir.Program:
    ps = PolicySet("demo", title="Demo")
    params = {"allowed": ["NET_BIND_SERVICE"]} if "allowed" in repr(check) else None
    ps.rule("r", Required, title="t", rationale="r", fix="f", check=check, params=params)
    return passes.resolve((ps.build(),), (), dt.date(2026, 11, 1))[0]


def _rego(text: str) -> str:
    return text[text.index("# Check 0"):text.index("violation contains")].strip()


def _cel(variables: list[dict[str, str]]) -> str:
    (failing,) = [v["expression"] for v in variables if v["name"].startswith("failing_")]
    return failing


def _kyverno(policy: dict) -> str:
    (entry,) = policy["spec"]["rules"][0]["validate"]["foreach"]
    if "pattern" in entry:
        return f"list: {entry['list']}\npattern: {json.dumps(entry['pattern'])}"
    (condition,) = entry["deny"]["conditions"]["any"]
    assert (condition["operator"], condition["value"]) == ("Equals", True)
    return f"list: {entry['list']}\ndeny: {condition['key']}"


def _split_rego(text: str) -> tuple[str, str]:
    return text[:text.index("# The ")].strip(), text[text.index("# The "):].strip()


def _split_cel(text: str) -> tuple[str, str]:
    first, *condition, last = text.split("\n")
    return "\n".join(condition).strip(), f"{first}…{last}"


def _split_kyverno(text: str) -> tuple[str, str]:
    listed, condition = text.split("\n", 1)
    return condition, listed


@cache
def parts(row: str) -> dict[str, tuple[str, str]]:
    """Each column's (predicate, subject) text for one row."""
    text = lowered(row)
    return {"rego": _split_rego(text["rego"]), "gatekeeper": _split_cel(text["gatekeeper"]),
            "kyverno": _split_kyverno(text["kyverno"]), "vap": _split_cel(text["vap"]),
            "kyverno-vpol": _split_cel(text["kyverno-vpol"])}


@cache
def lowered(row: str) -> dict[str, str]:
    """Each column's whole text for one row, read from the files each backend compiles."""
    program = _program(ROWS[row]())
    files = {name: backend().compile(program) for name, backend in all_backends().items() if name in COLUMNS}
    template = yaml.safe_load(files["gatekeeper"]["gatekeeper/templates/r.yaml"])["spec"]["targets"][0]
    (cel,) = [code["source"] for code in template["code"] if code["engine"] == "K8sNativeValidation"]
    (vap,) = [d for d in yaml.safe_load_all(files["vap"]["vap/r.yaml"]) if d["kind"] == "ValidatingAdmissionPolicy"]
    (vpol,) = yaml.safe_load_all(files["kyverno-vpol"]["kyverno-vpol/r.yaml"])
    return {
        "rego": _rego(files["rego"]["rego/r.rego"]),
        "gatekeeper rego": _rego(template["rego"]),
        "gatekeeper": _cel(cel["variables"]),
        "kyverno": _kyverno(yaml.safe_load(files["kyverno"]["kyverno/policies/r.yaml"])),
        "vap": _cel(vap["spec"]["variables"]),
        "kyverno-vpol": _cel(vpol["spec"]["variables"]),
    }


COLUMNS = ["rego", "gatekeeper", "kyverno", "vap", "kyverno-vpol"]


def expected(table: dict[str, str], backend: str) -> str:
    """A column's text; kyverno-vpol states only where it differs: it reads the VAP's CEL."""
    return table.get(backend, table["vap"] if backend == "kyverno-vpol" else "").strip()


@pytest.mark.parametrize("backend", COLUMNS)
@pytest.mark.parametrize("row", PREDICATES)
def test_predicate(row: str, backend: str) -> None:
    assert parts(row)[backend][0] == expected(PREDICATES[row], backend)


@pytest.mark.parametrize("backend", COLUMNS)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject(subject: str, backend: str) -> None:
    assert parts(SUBJECT_ROWS[subject])[backend][1] == expected(SUBJECTS[subject], backend)


@pytest.mark.parametrize("row", ROWS)
def test_gatekeeper_rego_is_the_rego_column(row: str) -> None:
    assert lowered(row)["gatekeeper rego"] == lowered(row)["rego"]


# Docker's platforms map whole checks to their meaning, not nodes (docs/docker.md): tests/test_docker_platforms.py.
DOCKER_PLATFORMS = {"compose", "dockerfile"}


def test_every_backend_has_a_column() -> None:
    assert set(all_backends()) == set(COLUMNS) | DOCKER_PLATFORMS
    assert set(ROWS) == set(PREDICATES) and set(SUBJECT_ROWS) == set(SUBJECTS)
    assert {type(ROWS[row]().subject) for row in SUBJECT_ROWS.values()} == set(typing.get_args(ir.Subject))


def test_the_rows_cover_every_node() -> None:
    checks = [build() for build in ROWS.values()]
    refs = {type(c.predicate.ref) for c in checks} | {type(c.predicate.ref.field) for c in checks if isinstance(c.predicate.ref, ir.NormalPath)}
    values = [getattr(c.predicate, "values", None) or getattr(c.predicate, "allowed", None) for c in checks]
    assert {type(c.predicate) for c in checks} == set(typing.get_args(ir.Predicate))
    assert refs == set(typing.get_args(ir.Ref))
    assert {type(c.subject) for c in checks} == set(typing.get_args(ir.Subject))
    assert any(isinstance(v, ir.Param) for v in values) and any(isinstance(v, tuple) for v in values)


@dataclass(frozen=True)
class Matches:
    """A predicate no backend knows: it stands for a construct a backend cannot express exactly."""

    ref: ir.Ref
    pattern: str


@pytest.mark.parametrize("backend", [
    pytest.param(name, marks=pytest.mark.skip(reason="a field without a meaning on a Docker platform makes the rule not "
                                                     "applicable there; refusals: tests/test_docker_platforms.py"))
    if name in DOCKER_PLATFORMS else name for name in sorted(all_backends())])
def test_a_construct_a_backend_cannot_lower_is_refused_naming_rule_construct_backend_and_line(backend: str) -> None:
    check = containers().field("image").present()
    odd = ir.Check(check.subject, Matches(check.predicate.ref, "^registry/"), check.loc)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedError) as error:
        all_backends()[backend]().compile(_program(odd))
    assert str(error.value).startswith(f"{check.loc}: rule 'r': backend '{backend}' cannot express Matches exactly")
