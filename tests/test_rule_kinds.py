"""A rule restricted to some workload kinds judges those kinds only, in every backend.

The shipped rules apply to every kind that carries a pod spec; this is the case where the kinds a
rule names decide the verdict (Rego's rule modules name them for `lib.kupe.pod_spec`, CEL and
Kyverno match them)."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import pipeline
from compiler.dsl import PolicySet, Required, pod
from conformance.adapters import Adapter, Request, all_adapters
from conformance.suite import wrap
from conftest import program


def pods_and_jobs(ps: PolicySet) -> None:
    ps.rule("pods-and-jobs", Required, title="t", rationale="r", fix="f", kinds=["Pod", "Job"],
            check=pod().field("hostPID").not_equals(True))


def pod_with_host_pid(host_pid: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
            "spec": {"hostPID": host_pid, "containers": [{"name": "app", "image": "app:1"}]}}


@pytest.mark.parametrize("backend", list(all_adapters()))
def test_only_the_named_kinds_are_judged(backend: str) -> None:
    kind: type[Adapter] = all_adapters()[backend]
    prog = program(pods_and_jobs)
    adapter = kind(pipeline.compile_backends(prog, [kind.compiled_backend()]))
    denied = {"pods-and-jobs": "deny"}
    bad = pod_with_host_pid(True)
    assert adapter.judge(Request.create(bad)) == denied
    assert adapter.judge(Request.create(wrap(bad, "Job"))) == denied
    for other in ("Deployment", "CronJob", "DaemonSet"):
        assert adapter.judge(Request.create(wrap(bad, other))) == {}, other
    # An UPDATE that turns hostPID on is judged; one that leaves it on, and a DELETE, are not new violations.
    good = pod_with_host_pid(False)
    assert adapter.judge(Request("UPDATE", bad, good)) == denied
    assert adapter.judge(Request("UPDATE", wrap(bad, "Job"), wrap(good, "Job"))) == denied
    assert adapter.judge(Request("UPDATE", bad, bad)) == {}
    assert adapter.judge(Request("DELETE", None, bad)) == {}
