"""Kupe Cloud runtime-security guide: isolation from the node and its container runtime."""

from compiler.dsl import PolicySet, Required, containers, pod, volumes

RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/host-containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
)


def socket_paths(sockets: tuple[str, ...]) -> list[str]:
    """Each socket and every directory above it (paths in normal form: the check reads the field as a path)."""
    paths: set[str] = {"/"}
    for socket in sockets:
        parts = socket.strip("/").split("/")
        paths.update("/" + "/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return sorted(paths)


runtime = PolicySet("runtime-security", title="Runtime Security")

runtime.rule(
    "disallow-privileged", Required,
    title="Disallow privileged containers",
    rationale="A privileged container has every capability and all host devices: it is root on the node.",
    check=containers().field("securityContext.privileged").not_equals(True),
    fix="Remove securityContext.privileged or set it to false",
)

runtime.rule(
    "disallow-host-namespaces", Required,
    title="Disallow host network, PID and IPC namespaces",
    rationale="Sharing the node's namespaces exposes its network interfaces, processes and shared memory.",
    check=[pod().field(name).not_equals(True) for name in ("hostNetwork", "hostPID", "hostIPC")],
    fix="Remove hostNetwork, hostPID and hostIPC from the pod spec, or set them to false",
)

runtime.rule(
    "disallow-runtime-socket-mounts", Required,
    title="Disallow container runtime socket mounts",
    rationale="Whoever reaches the Docker, cri-dockerd, containerd, CRI-O or Podman socket controls every container on the node.",
    check=volumes().field("hostPath.path").as_path().none_of(socket_paths(RUNTIME_SOCKETS)),
    fix="Remove hostPath volumes that expose a container runtime socket or a directory holding one",
)

runtime.rule(
    "run-as-non-root-user", Required,
    title="Disallow running as UID 0",
    rationale="runAsUser: 0 makes the process root whatever the image declares.",
    check=containers().effective("securityContext.runAsUser").not_equals(0),
    fix="Set securityContext.runAsUser to a non-zero UID, or leave it unset and rely on runAsNonRoot",
)
