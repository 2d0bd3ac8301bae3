"""Kupe Cloud container-security standard: what every workload's containers must declare."""

from compiler.dsl import PolicySet, Recommended, Required, containers, param

security = PolicySet("container-security", title="Container Security", audit_action="dryrun")

security.rule(
    "run-as-non-root", Required,
    title="Run containers as a non-root user",
    rationale="A process running as root inside a container is root on the node if it escapes.",
    check=containers().effective("securityContext.runAsNonRoot").equals(True),
    fix="Set securityContext.runAsNonRoot: true on the pod or on every container",
)

security.rule(
    "disallow-privilege-escalation", Required,
    title="Disallow privilege escalation",
    rationale="setuid binaries and file capabilities must not let a process gain more privileges than its parent.",
    check=containers().field("securityContext.allowPrivilegeEscalation").equals(False),
    fix="Set securityContext.allowPrivilegeEscalation: false on every container",
)

security.rule(
    "drop-all-capabilities", Required,
    title="Drop all Linux capabilities",
    rationale="Containers start with a default capability set; dropping ALL leaves only what is added back explicitly.",
    check=containers().field("securityContext.capabilities.drop").contains("ALL"),
    fix='Set securityContext.capabilities.drop: ["ALL"] on every container',
)

security.rule(
    "restrict-added-capabilities", Required,
    title="Add back only allowed capabilities",
    rationale="Only NET_BIND_SERVICE may be added back by default; anything else needs an exemption.",
    check=containers().field("securityContext.capabilities.add").subset_of(param("allowed_capabilities")),
    params={"allowed_capabilities": ["NET_BIND_SERVICE"]},
    fix="Remove capabilities outside the allowlist from securityContext.capabilities.add, or request an exemption",
)

security.rule(
    "read-only-root-filesystem", Recommended,
    title="Mount the root filesystem read-only",
    rationale="An immutable root filesystem stops an attacker from persisting tools or tampering with binaries.",
    check=containers().field("securityContext.readOnlyRootFilesystem").equals(True),
    fix="Set securityContext.readOnlyRootFilesystem: true and mount writable emptyDir volumes where needed",
    enforced_in=["payments"],  # stage: the payments team enforces it already (PLAT-88)
)

security.rule(
    "seccomp-runtime-default", Recommended,
    title="Use the RuntimeDefault seccomp profile",
    rationale="The runtime's default seccomp profile blocks rarely used, dangerous system calls.",
    check=containers().effective("securityContext.seccompProfile.type").one_of(param("allowed_profile_types")),
    params={"allowed_profile_types": ["RuntimeDefault"]},
    fix="Set securityContext.seccompProfile.type: RuntimeDefault on the pod or on every container",
    enforce_from="2027-06-01",  # announced in PLAT-91
)

security.rule(
    "container-resources", Recommended,
    title="Declare CPU and memory requests and limits",
    rationale="Requests let the scheduler place pods safely; limits keep one workload from starving its neighbours.",
    check=[
        containers(["containers", "initContainers"]).field(f"resources.{kind}.{resource}").present()
        for kind in ("requests", "limits")
        for resource in ("cpu", "memory")
    ],
    fix="Set resources.requests and resources.limits for cpu and memory on every container and init container",
)
