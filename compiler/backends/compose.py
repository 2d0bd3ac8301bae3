"""Compose backend: the rules as Rego that conftest runs unchanged on a Compose file.

`conftest test -p out/compose docker-compose.yml`: `package main` denies on required rules and
warns on recommended ones (a stage has no namespace to apply to here, so a staged rule warns);
each rule is a package `kupe.compose.<rule>` whose `violation` set names the failing service. What
each check means for a service is one row of the mapping below (docs/docker.md); a rule reading a
field without a row is not applicable here, a check on a mapped field with another predicate is
refused. Exemptions declared for Compose (`projects`, `services`, `labels`) waive a rule, or widen
its list parameter, for the services they select; Kubernetes exemptions do not apply here.
"""

from __future__ import annotations

from .. import ir
from ..lang.docker import Platform, Row
from . import ConftestBackend

PLATFORM = Platform("compose", "Compose", "lib.compose", "service", exemptions=True, rows=(
    Row("securityContext.runAsNonRoot", ir.Equals, True, "runs_as_non_root",
        "`user` is a numeric UID other than 0 (`uid` or `uid:gid`); unset, or a name, cannot be verified", key="user"),
    Row("securityContext.runAsUser", ir.NotEquals, 0, "not_uid_zero",
        "`user` is unset, or its user part is neither `root` nor UID 0", key="user"),
    Row("securityContext.allowPrivilegeEscalation", ir.Equals, False, "no_new_privileges",
        "the last `no-new-privileges` in `security_opt` is true (`no-new-privileges`, `no-new-privileges:true`, `=true`, `=1`, ...)", key="security_opt"),
    Row("securityContext.capabilities.drop", ir.ListContains, "ALL", "drops_all", "`cap_drop` holds `ALL`, in any case", key="cap_drop"),
    Row("securityContext.capabilities.add", ir.ListSubsetOf, None, "adds_only",
        "every `cap_add` entry, upper-cased and without `CAP_`, is allowed (`ALL` never is)", key="cap_add"),
    Row("securityContext.readOnlyRootFilesystem", ir.Equals, True, "read_only_root", "`read_only` is true", key="read_only"),
    Row("securityContext.seccompProfile.type", ir.OneOf, None, "seccomp_allowed",
        "the profile Docker applies is allowed: RuntimeDefault without a `seccomp` security option or with "
        "`default`/`builtin`, Unconfined with `unconfined`, Localhost with a profile file (the last option wins)", key="security_opt"),
    Row("securityContext.privileged", ir.NotEquals, True, "not_privileged", "`privileged` is not true", key="privileged"),
    Row("hostNetwork", ir.NotEquals, True, "no_host_network", "`network_mode` is not `host`", key="network_mode"),
    Row("hostPID", ir.NotEquals, True, "no_host_pid", "`pid` is not `host`", key="pid"),
    Row("hostIPC", ir.NotEquals, True, "no_host_ipc", "`ipc` is not `host`", key="ipc"),
    Row("hostPath.path", ir.NoneOf, None, "binds_none_of",
        "no bind mount (short `/src:/dst[:mode]`, or long `type: bind` with `source`) of a runtime socket or a directory above one, in normal form", key="volumes", refs=(ir.NormalPath,)),
    Row("resources.requests.cpu", ir.Present, None, "requests_cpu", "`deploy.resources.reservations.cpus` is set", key="deploy.resources.reservations.cpus"),
    Row("resources.requests.memory", ir.Present, None, "requests_memory",
        "`deploy.resources.reservations.memory` or `mem_reservation` is set", key="deploy.resources.reservations.memory"),
    Row("resources.limits.cpu", ir.Present, None, "limits_cpu", "`deploy.resources.limits.cpus` or `cpus` is set", key="deploy.resources.limits.cpus"),
    Row("resources.limits.memory", ir.Present, None, "limits_memory", "`deploy.resources.limits.memory` or `mem_limit` is set", key="deploy.resources.limits.memory"),
))


class ComposeBackend(ConftestBackend):
    name = "compose"
    title = "Compose files, with conftest (Rego v1)"
    platform = PLATFORM
