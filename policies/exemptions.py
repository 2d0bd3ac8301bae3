"""Exemptions: every waiver names its reason, an owner or ticket, and an expiry date."""

from compiler.dsl import ALL, exempt

exempt(
    "system-namespaces", rules=ALL,
    namespaces=["kube-system", "kube-node-lease"],
    reason="control-plane and node components are managed by the cluster provider",
    owner="platform-team", ticket="SEC-101", expires="2027-12-31",
)

exempt(
    "node-exporter-host-namespaces", rules=["disallow-host-namespaces"],
    namespaces=["monitoring"], labels={"app.kubernetes.io/name": "node-exporter"},
    reason="reads host network and process metrics",
    owner="observability-team", ticket="SEC-142", expires="2027-06-30",
)

exempt(
    "cilium-agent-net-admin", rules=["restrict-added-capabilities"],
    namespaces=["cilium"], labels={"app.kubernetes.io/name": "cilium-agent"}, containers=["cilium-agent"],
    allow={"allowed_capabilities": ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]},
    reason="the CNI agent programs routes, iptables and eBPF maps on the node",
    owner="network-team", ticket="SEC-157", expires="2027-03-31",
)

exempt(
    "vault-agent-localhost-seccomp", rules=["seccomp-runtime-default"],
    namespaces=["vault"], labels={"app.kubernetes.io/name": "vault"},
    allow={"allowed_profile_types": ["Localhost"]},
    reason="Vault ships a tailored seccomp profile installed on every node",
    owner="security-team", ticket="SEC-163", expires="2027-09-30",
)

exempt(
    "legacy-billing-root", rules=["run-as-non-root", "run-as-non-root-user"],
    namespaces=["billing"], names=["legacy-invoicer"],
    reason="vendor image runs as root until the v5 upgrade",
    owner="billing-team", ticket="SEC-171", expires="2027-01-31",
)
