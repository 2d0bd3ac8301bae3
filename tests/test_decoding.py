"""The API server's typed decoding, emulated from the Kubernetes OpenAPI schemas (conformance/engines/decoding.py).

Measured with the real API server (../shared/ENGINE-NOTES.md): string booleans, a string
runAsUser and containers or volumes that are not lists are refused before admission; a null
quantity decodes to "0" and `seccompProfile: {type: null}` to `{type: ""}`; other nulls vanish.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

import pytest

from conformance.engines.decoding import Rejected, decode
from conformance.suite import load_cases, wrap


def pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "app", "image": "nginx"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"}, "spec": spec}


def container(**fields: Any) -> dict[str, Any]:
    return pod(containers=[{"name": "app", "image": "nginx", **fields}])


@pytest.mark.parametrize(("obj", "field", "reason"), [
    (container(securityContext={"runAsNonRoot": "true"}), "spec.containers[0].securityContext.runAsNonRoot",
     'expected a boolean, got string "true"'),
    (container(securityContext={"runAsUser": "1000"}), "spec.containers[0].securityContext.runAsUser",
     'expected an integer, got string "1000"'),
    (container(securityContext={"runAsUser": 1.5}), "spec.containers[0].securityContext.runAsUser",
     "expected an integer, got number 1.5"),
    (container(securityContext={"runAsUser": math.nan}), "spec.containers[0].securityContext.runAsUser",
     "nan is not a JSON number"),
    (container(securityContext={"runAsUser": math.inf}), "spec.containers[0].securityContext.runAsUser",
     "inf is not a JSON number"),
    (container(securityContext={"runAsUser": 2**63}), "spec.containers[0].securityContext.runAsUser",
     "out of range for int64"),
    (pod(containers={"app": {"name": "app"}}), "spec.containers", "expected an array"),
    (container(resources={"limits": {"cpu": "a lot"}}), "spec.containers[0].resources.limits.cpu", "does not parse"),
    (container(resources={"limits": {"cpu": True}}), "spec.containers[0].resources.limits.cpu", "expected a quantity"),
    ({**pod(), "metadata": "web"}, "metadata", 'expected an object, got string "web"'),
    ({**pod(), "metadata": {"name": "p", "labels": ["a"]}}, "metadata.labels", "expected an object"),
    ({**pod(), "metadata": {"name": "p", "labels": {"tier": 1}}}, "metadata.labels.tier", "expected a string, got number 1"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(obj: dict, field: str, reason: str) -> None:
    rejected = decode(obj)
    assert isinstance(rejected, Rejected), rejected
    assert rejected.field == field and reason in rejected.reason


def test_nulls_decode_as_go_leaves_them() -> None:
    decoded = decode(container(securityContext={"privileged": None, "seccompProfile": {"type": None}},
                               resources={"requests": {"cpu": None, "memory": "1Gi"}}))
    assert decoded["spec"]["containers"][0]["securityContext"] == {"seccompProfile": {"type": ""}}, \
        "an optional null vanishes; a required string becomes empty"
    assert decoded["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "0", "memory": "1Gi"}}, \
        "a null quantity in a resource list is the quantity 0"
    assert decode(pod(hostNetwork=None))["spec"] == {"containers": [{"name": "app", "image": "nginx"}]}
    assert decode(pod(containers=[None]))["spec"]["containers"] == [{"name": ""}], "a null item is a zero struct"


def test_integral_numbers_unknown_fields_and_yaml_values_decode_like_kubectl_sends_them() -> None:
    decoded = decode(container(securityContext={"runAsUser": 1000.0}, bogus=1, ports=[{"containerPort": 80}]))
    assert decoded["spec"]["containers"][0] == {"name": "app", "image": "nginx", "securityContext": {"runAsUser": 1000},
                                                "ports": [{"containerPort": 80}]}
    assert decode({**pod(), "metadata": {"name": "p", "labels": {True: "x"}}})["metadata"]["labels"] == {"true": "x"}
    stamp = dt.datetime(2026, 11, 1, 12, 30)
    managed = [{"manager": "kubectl", "time": stamp, "fieldsV1": {"f:metadata": {1: {}, "at": stamp, "on": [dt.date(2026, 11, 1)]}}}]
    decoded = decode({**pod(), "metadata": {"name": "p", "creationTimestamp": stamp, "managedFields": managed}})["metadata"]
    assert decoded["creationTimestamp"] == "2026-11-01T12:30:00Z"
    assert decoded["managedFields"] == [{"manager": "kubectl", "time": "2026-11-01T12:30:00Z",
                                         "fieldsV1": {"f:metadata": {"1": {}, "at": "2026-11-01T12:30:00Z", "on": ["2026-11-01"]}}}], \
        "a free-form value (fieldsV1) is kept in its JSON form"
    refused = decode(container(securityContext={"privileged": stamp}))
    assert isinstance(refused, Rejected) and refused.reason == 'expected a boolean, got string "2026-11-01T12:30:00Z"'
    binary = decode({**pod(), "metadata": {"name": "p", "managedFields": [{"fieldsV1": {"f:data": b"\x00"}}]}})
    assert isinstance(binary, Rejected) and binary.field == "metadata.managedFields[0].fieldsV1" and "bytes" in binary.reason


def test_controllers_are_decoded_and_api_versions_no_longer_served_are_refused() -> None:
    bad = container(securityContext={"privileged": "yes"})
    assert decode(wrap(bad, "CronJob")).field == "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
    daemonset = {**wrap(pod(), "DaemonSet"), "apiVersion": "extensions/v1beta1"}
    refused = decode(daemonset)
    assert isinstance(refused, Rejected) and refused.field == "apiVersion" and "not served" in refused.reason


def test_custom_resources_and_non_objects_are_left_as_they_are() -> None:
    custom = {"apiVersion": "example.com/v1", "kind": "Pod", "spec": {"containers": "anything"}}
    assert decode(custom) is custom
    assert decode(["not", "an", "object"]) == ["not", "an", "object"]


def test_decoding_does_not_change_its_input() -> None:
    obj = container(securityContext={"privileged": None})
    before = copy.deepcopy(obj)
    decode(obj)
    assert obj == before


MEASURED_REFUSALS = {  # the manifests of conformance/cases/ the real API server refused (v0.34), in every kind
    "disallow-host-namespaces/host-network-string", "disallow-privilege-escalation/string-false",
    "disallow-privileged/string-true", "disallow-privileged/string-false", "drop-all-capabilities/drop-string-all",
    "malformed/containers-not-a-list", "malformed/volumes-not-a-list", "malformed/security-context-not-a-mapping",
    "read-only-root-filesystem/string-true", "restrict-added-capabilities/add-string",
    "run-as-non-root-user/container-uid-string", "run-as-non-root/container-string-true", "run-as-non-root/pod-string-true",
}


def test_the_decoder_refuses_the_conformance_cases_the_real_api_server_refuses() -> None:
    """Measured: the API server refused 104 of the 1,059 object cases then in the suite (13 manifests × 8 kinds)."""
    measured = [c for c in load_cases() if c.name in MEASURED_REFUSALS]
    assert len(measured) == 104 and all(isinstance(decode(c.object), Rejected) for c in measured)
    nulls = {c.name: decode(c.object) for c in load_cases() if c.kind == "Pod" and c.name in (
        "container-resources/cpu-request-null", "seccomp-runtime-default/container-type-null-is-empty")}
    assert nulls["container-resources/cpu-request-null"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "0"
    assert nulls["seccomp-runtime-default/container-type-null-is-empty"]["spec"]["containers"][0]["securityContext"][
        "seccompProfile"] == {"type": ""}
