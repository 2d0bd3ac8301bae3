"""Dockerfile backend: the rules that mean something for an image, as Rego conftest runs unchanged.

`conftest test -p out/dockerfile Dockerfile`: conftest parses the Dockerfile into a list of
instructions (`Cmd`, `Value`, `Stage`, ...); the library finds the user the final stage runs as
(its last USER, or the USER of the stage it builds on, `FROM <stage>`), and `package main` denies
on required rules, warns on recommended ones. Only the user is an image's: privileges,
capabilities, seccomp, mounts, namespaces and resources are set where the container runs
(Compose, Kubernetes), so the rules that read them are not applicable here (docs/docker.md).
"""

from __future__ import annotations

from .. import ir
from ..lang.docker import Platform, Row
from . import ConftestBackend

PLATFORM = Platform("dockerfile", "Dockerfile", "lib.dockerfile", "image", rows=(
    Row("securityContext.runAsNonRoot", ir.Equals, True, "runs_as_non_root",
        "the final stage's `USER` is a numeric UID other than 0; a missing `USER` (the base image's user, root by "
        "default) or a name (the kubelet cannot verify it) fails", key="USER"),
    Row("securityContext.runAsUser", ir.NotEquals, 0, "not_uid_zero",
        "the final stage's `USER` is missing, or its user part is neither `root` nor UID 0 (nor a `$` variable)", key="USER"),
))


class DockerfileBackend(ConftestBackend):
    name = "dockerfile"
    title = "Dockerfiles, with conftest (Rego v1)"
    platform = PLATFORM
