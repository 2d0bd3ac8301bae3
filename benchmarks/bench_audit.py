"""Benchmark `kupe-policy audit`: 10,000 generated workload manifests, every backend with an adapter, then `all`.

    python3 benchmarks/bench_audit.py [--objects 10000] [--seed 7]

The corpus is deterministic (seeded): all 8 workload kinds, in files of 100 documents, over
12 namespaces (kube-system included, which an exemption covers). Each workload starts from a
compliant pod spec with 1 to 3 containers and takes 0 to 2 of 24 deviations (one per rule
and edge: unset, wrong type, root UID, added capability, host namespace, socket mount, …), so
most are compliant and the rest violate one or more rules, as in a real cluster.

Prints, per backend: wall time of the whole command (compile, read, evaluate, render JSON),
objects/s, how many distinct verdict keys the engine really evaluated, and the disagreement
count of `--backend all`. Targets: 0 disagreements; the fastest backend at 1,000 objects/s or more.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

import compiler  # noqa: F401  (loads the CEL runtime before regopy)
from compiler.cli import main
from conformance.audit.cli import adapter_backends
from conformance.suite import wrap

REPO = Path(__file__).resolve().parent.parent
NAMESPACES = ["web", "api", "payments", "billing", "data", "ml", "ops", "monitoring", "cilium", "vault", "batch", "kube-system"]
KINDS = ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"]


def _container(name: str) -> dict:
    return {
        "name": name, "image": f"registry.example.com/{name}:1.0.0",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    }


def _sc(spec: dict) -> dict:
    return spec["containers"][0]["securityContext"]


DEVIATIONS = [
    lambda s: s["securityContext"].pop("runAsNonRoot"),
    lambda s: s["securityContext"].update(runAsNonRoot=False),
    lambda s: _sc(s).update(runAsNonRoot="true"),
    lambda s: _sc(s).update(runAsUser=0),
    lambda s: s["securityContext"].update(runAsUser=0),
    lambda s: _sc(s).update(allowPrivilegeEscalation=True),
    lambda s: _sc(s).pop("allowPrivilegeEscalation"),
    lambda s: _sc(s)["capabilities"].update(drop=["NET_RAW"]),
    lambda s: _sc(s)["capabilities"].update(add=["NET_BIND_SERVICE"]),
    lambda s: _sc(s)["capabilities"].update(add=["SYS_ADMIN"]),
    lambda s: _sc(s).update(privileged=True),
    lambda s: _sc(s).pop("readOnlyRootFilesystem"),
    lambda s: _sc(s).update(readOnlyRootFilesystem=False),
    lambda s: s["securityContext"].pop("seccompProfile"),
    lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    lambda s: _sc(s).update(seccompProfile={"type": "Localhost", "localhostProfile": "profiles/app.json"}),
    lambda s: s["containers"][0]["resources"].pop("limits"),
    lambda s: s["containers"][0]["resources"]["requests"].pop("memory"),
    lambda s: s.update(hostNetwork=True),
    lambda s: s.update(hostPID=True),
    lambda s: s.update(volumes=[{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]),
    lambda s: s.update(volumes=[{"name": "logs", "hostPath": {"path": "/var/log"}}]),
    lambda s: s.update(initContainers=[{"name": "init", "image": "busybox:1.36", "securityContext": {"privileged": True}}]),
    lambda s: s.update(ephemeralContainers=[{"name": "debug", "image": "busybox:1.36"}]),
]


def workload(rng: random.Random, index: int) -> dict:
    """A Pod or controller: compliant, or with up to two deviations."""
    spec = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(name) for name in ["app", "proxy", "log-shipper"][: rng.choice([1, 1, 2, 3])]]}
    for deviation in rng.sample(DEVIATIONS, rng.choice([0, 0, 0, 1, 1, 2])):
        deviation(spec)
    namespace = rng.choice(NAMESPACES)
    app = f"app-{index:05d}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": app, "namespace": namespace, "labels": {"app.kubernetes.io/name": app, "team": rng.choice("abcde")}},
           "spec": spec}
    kind = KINDS[index % len(KINDS)]
    return copy.deepcopy(pod) if kind == "Pod" else wrap(pod, kind)


def corpus(folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    objects = [workload(rng, i) for i in range(count)]
    for start in range(0, count, 100):
        (folder / f"workloads-{start // 100:03d}.yaml").write_text(yaml.safe_dump_all(objects[start:start + 100], sort_keys=False))


def timed_audit(folder: Path, policies: Path, backend: str) -> tuple[float, dict]:
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["audit", str(folder), "--backend", backend, "--format", "json",
                                       "--policies", str(policies), "--as-of", "2026-11-01"], catch_exceptions=False)
    elapsed = time.perf_counter() - started
    if result.exit_code not in (0, 1):
        sys.exit(f"audit --backend {backend} failed ({result.exit_code}): {result.output[-2000:]}")
    return elapsed, json.loads(result.stdout)


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kupe-bench-audit-") as tmp:
        folder, policies = Path(tmp) / "corpus", Path(tmp) / "policies"
        folder.mkdir()
        shutil.copytree(REPO / "policies", policies)  # every backend sees the same rules, whatever changes meanwhile
        corpus(folder, args.objects, args.seed)
        print(f"corpus: {args.objects} workloads in {len(list(folder.iterdir()))} files (seed {args.seed})")
        best = 0.0
        for backend in [*adapter_backends("all"), "all"]:
            elapsed, report = timed_audit(folder, policies, backend)
            summary = report["summary"]
            rate = summary["workloads"] / elapsed
            if backend != "all":
                best = max(best, rate)
            print(f"{backend:>10}: {elapsed:6.1f} s  {rate:7.0f} objects/s  distinct evaluated {summary['distinct_workloads_evaluated']:5d}  "
                  f"deny {summary['deny']:5d}  audit {summary['audit']:5d}  disagreements {summary['disagreements']}")
        print(f"fastest backend: {best:.0f} objects/s (target ≥ 1000); disagreements under `all`: {summary['disagreements']} (target 0)")


if __name__ == "__main__":
    main_()
