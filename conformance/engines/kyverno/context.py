"""The JSON context a Kyverno rule is evaluated against.

Holds ``request`` (operation, object, oldObject, userInfo, roles, clusterRoles,
namespace), ``serviceAccountName``/``serviceAccountNamespace`` and ``images`` (the
parsed container images of a Pod or pod template), like Kyverno's engine context.
"""

from __future__ import annotations

from typing import Any, Mapping
from ..objects import object_meta

_SA_PREFIX = "system:serviceaccount:"


def pod_spec(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a Pod, a pod controller or a CronJob."""
    spec = resource.get("spec")
    if not isinstance(spec, Mapping):
        return None
    kind = resource.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    template = spec.get("template") if isinstance(spec, Mapping) else None
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else None


def image_info(image: str) -> dict[str, str]:
    """Split an image reference into Kyverno's registry/path/name/tag/digest fields."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = ""
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "docker.io", rest
    if not tag and not digest:
        tag = "latest"
    reference = f"{registry}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return {
        "registry": registry,
        "path": path,
        "name": path.rsplit("/", 1)[-1],
        "tag": tag,
        "digest": digest,
        "reference": reference,
        "referenceWithTag": f"{registry}/{path}:{tag}" if tag else f"{registry}/{path}",
    }


def images(resource: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Kyverno's ``images`` variable: containers by type, then by container name."""
    spec = pod_spec(resource or {})
    if spec is None:
        return None
    out: dict[str, Any] = {}
    for field in ("containers", "initContainers", "ephemeralContainers"):
        entries = {
            str(c.get("name")): image_info(str(c["image"]))
            for c in spec.get(field) or []
            if isinstance(c, Mapping) and isinstance(c.get("image"), str)
        }
        if entries:
            out[field] = entries
    return out or None


def base_context(
    resource: Mapping[str, Any] | None,
    old_resource: Mapping[str, Any] | None,
    operation: str,
    user_info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A fresh context for one policy evaluation. It holds `resource` and `old_resource` themselves:
    the caller hands over its own copies (`evaluate` converts them), and nothing writes into a
    context's values (every update copies on write, see `variables.deep_merge`)."""
    info = dict(user_info or {})
    user = info.get("userInfo") if isinstance(info.get("userInfo"), Mapping) else {
        k: info[k] for k in ("username", "uid", "groups", "extra") if k in info
    }
    subject = resource or old_resource or {}
    request: dict[str, Any] = {
        "operation": operation,
        "object": resource,
        "oldObject": old_resource,
        "userInfo": user,
        "roles": list(info.get("roles") or []),
        "clusterRoles": list(info.get("clusterRoles") or []),
        "namespace": object_meta(subject).get("namespace"),
    }
    context: dict[str, Any] = {"request": request, "images": images(subject)}
    username = str(user.get("username") or "")
    if username.startswith(_SA_PREFIX):
        namespace, _, name = username[len(_SA_PREFIX):].partition(":")
        context["serviceAccountName"] = name
        context["serviceAccountNamespace"] = namespace
    return context
