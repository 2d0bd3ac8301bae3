"""Engine-neutral English for IR nodes: violation messages and the catalog share it."""

from __future__ import annotations

import json

from . import ir


def ref(node: ir.Ref) -> str:
    if isinstance(node, ir.EffectiveRef):
        pod = ".".join(node.pod_path)
        return f"{node.dotted()} (or the pod's {pod} when the container leaves it unset)"
    if isinstance(node, ir.NormalPath):
        return f"{node.dotted()} (as a path, without //, /./ or a trailing /)"
    return node.dotted()


def values(node: ir.Values) -> str:
    if isinstance(node, ir.Param):
        return f"the values of parameter {node.name}"
    return json.dumps(list(node))


def predicate(node: ir.Predicate) -> str:
    """What must hold, e.g. `securityContext.privileged must not be true`."""
    subject = ref(node.ref)
    match node:
        case ir.Equals(value=value):
            return f"{subject} must be {json.dumps(value)}"
        case ir.NotEquals(value=value):
            return f"{subject} must not be {json.dumps(value)}"
        case ir.OneOf(values=allowed):
            return f"{subject} must be one of {values(allowed)}"
        case ir.NoneOf(values=denied):
            return f"{subject} must not be one of {values(denied)}"
        case ir.ListContains(value=value):
            return f"{subject} must contain {json.dumps(value)}"
        case ir.ListSubsetOf(allowed=allowed):
            return f"{subject} may only hold {values(allowed)}"
        case ir.Present():
            return f"{subject} must be set"
    raise TypeError(f"no description for {type(node).__name__}")  # pragma: no cover - IR is closed


def subject(node: ir.Subject) -> str:
    match node:
        case ir.EachContainer(lists=lists):
            return "each container in " + ", ".join(lists)
        case ir.PodSpec():
            return "the pod spec"
        case ir.EachVolume():
            return "each volume"
    raise TypeError(f"no description for {type(node).__name__}")  # pragma: no cover - IR is closed
