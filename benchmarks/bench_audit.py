"""Benchmark `kupe-policy audit` side by side: every backend, `all`, the parse-only rate and gator.

    python3 benchmarks/bench_audit.py [--objects 1000 10000 100000] [--runs 3] [--seed 7] [--backends vap all] [--json]

For each corpus size, one run audits the same generated corpus with each backend that has an
adapter and with `--backend all`, each as its own process (`python -m compiler audit`), and
prints: objects/s (wall), CPU seconds, the ratio to the parse-only rate (reading and parsing
the same files with the same loader and the worker count of a one-engine audit: `all` starts
its workers at a smaller corpus), peak memory (the largest
resident set among the audit's processes: workers are separate processes; CPU seconds add them up), the disagreements under `all` (target 0) and, when a `gator` binary is on
PATH, the ratio to `gator test` on the same corpus and templates (gator's default, which runs
each template's CEL block; its Rego mode is printed beside it). Each figure is the median of
`--runs` runs. The machine should be otherwise idle. kupe-policy's own bytecode is compiled first
(bytecode.py).

The corpus is deterministic (seeded): all 8 workload kinds, in files of 100 documents (YAML
streams; with --json, `kubectl get -o json` Lists), over
12 namespaces (kube-system included, which an exemption covers). Each workload starts from a
compliant pod spec with 1 to 3 containers and takes 0 to 2 of 24 deviations (one per rule
and edge: unset, wrong type, root UID, added capability, host namespace, socket mount, …), so
most are compliant and the rest violate one or more rules, as in a real cluster.

Targets (issue 14): every backend at least gator's rate; the fastest at least 10x gator and 70% of
the parse-only rate; `all` at least gator's rate; peak memory under 1 GB at 100,000 objects.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from bytecode import compile_packages

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

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
    from conformance.suite import wrap

    return copy.deepcopy(pod) if kind == "Pod" else wrap(pod, kind)


def corpus(folder: Path, count: int, seed: int, as_json: bool) -> None:
    rng = random.Random(seed)
    objects = [workload(rng, i) for i in range(count)]
    for start in range(0, count, 100):
        name, part = f"workloads-{start // 100:03d}", objects[start:start + 100]
        if as_json:
            (folder / f"{name}.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": part}, indent=4))
        else:
            (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(part, sort_keys=False))


@dataclass(frozen=True)
class Measure:
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak_mb: float  # maximum resident set size
    summary: dict  # the audit report's summary ({} for gator)


def helper(*args: str) -> str:
    """This script in another mode, in its own process: this process imports neither the engines nor
    the corpus, so the processes it measures do not inherit its resident set as their peak (Linux
    keeps the peak of the image a process is exec'ed from)."""
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], check=True, capture_output=True,
                          text=True, cwd=REPO).stdout


def run_process(command: list[str]) -> Measure:
    """Run a command to completion: its wall time, its own CPU time and peak memory (wait4), and the
    summary of the JSON report it writes."""
    with tempfile.NamedTemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")[-2000:]
        # exit 1: violations; 2: input problems (the corpus holds objects the API server would refuse)
        if process.returncode not in (0, 1, 2):
            sys.exit(f"{' '.join(command)} failed ({process.returncode}): {errors}")
        try:
            summary = json.loads(helper("--summary", stdout.name))
        except subprocess.CalledProcessError:
            sys.exit(f"{' '.join(command)} wrote no JSON report ({process.returncode}): {errors}")
    return Measure(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, summary)


def print_summary(report: Path) -> None:
    """The summary of a JSON report (an audit's; gator's list of results has none), read in a process
    of its own: this one starts every measured process, which would inherit its peak memory as
    theirs had it read a report itself (gator's for 10,000 objects, 47 MB of JSON, takes 144 MB:
    every audit measured after it showed a peak of 238 MB)."""
    found = json.loads(report.read_bytes())
    print(json.dumps(found.get("summary", {}) if isinstance(found, dict) else {}))


def audit(folder: Path, policies: Path, backend: str) -> Measure:
    return run_process([sys.executable, "-m", "compiler", "audit", str(folder), "--backend", backend, "--format", "json",
                        "--policies", str(policies), "--as-of", "2026-11-01"])


def parse_only(folder: Path) -> Measure:
    """Read and parse the corpus as a one-engine audit does (same loader, same worker count), judging nothing."""
    return run_process([sys.executable, str(Path(__file__).resolve()), "--parse-only", str(folder)])


def _parse_files(files: list[Path]) -> int:
    from conformance.audit.reading import load

    return sum(len(d["items"]) if isinstance(d, dict) and d.get("kind") == "List" else 1 for f in files for d, _ in load(f)[0])


def parse_corpus(folder: Path) -> None:
    from conformance.audit.reading import files_under
    from conformance.audit.run import worker_count

    files = [f for f in files_under([folder]) if isinstance(f, Path)]
    workers = worker_count(files, 1)  # as an audit with one engine
    if workers <= 1:
        count = _parse_files(files)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            count = sum(pool.map(_parse_files, [files[i::workers] for i in range(workers)]))
    print(json.dumps({"summary": {"workloads": count}}))


def gator(folder: Path, out: Path, *flags: str) -> Measure:
    """`gator test` of the corpus against the compiled templates and constraints (JSON output, as a
    CI job reads it; exit 1: violations)."""
    binary = shutil.which("gator")
    assert binary is not None
    return run_process([binary, "test", *flags, "-f", str(out / "gatekeeper"), "-f", str(folder), "-o", "json"])


def median(measures: list[Measure]) -> Measure:
    pick = sorted(measures, key=lambda m: m.wall)[len(measures) // 2]
    return Measure(pick.wall, statistics.median(m.cpu for m in measures), max(m.peak_mb for m in measures), pick.summary)


def bench(count: int, runs: int, seed: int, backends: list[str], as_json: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="kupe-bench-audit-") as tmp:
        folder, policies, out = Path(tmp) / "corpus", Path(tmp) / "policies", Path(tmp) / "out"
        folder.mkdir()
        shutil.copytree(REPO / "policies", policies)  # every backend sees the same rules, whatever changes meanwhile
        shutil.copytree(REPO / "out", out)
        helper("--make-corpus", str(folder), str(count), str(seed), *(["--json"] if as_json else []))
        parsed = median([parse_only(folder) for _ in range(runs)])
        base = count / parsed.wall
        print(f"corpus: {count} workloads in {len(list(folder.iterdir()))} {'JSON' if as_json else 'YAML'} files (seed {seed}); "
              f"median of {runs} runs")
        print(f"{'parse only':>14}: {parsed.wall:7.1f} s  {base:7.0f} objects/s  cpu {parsed.cpu:6.1f} s  peak {parsed.peak_mb:6.0f} MB")
        gator_rate = None
        if shutil.which("gator"):
            # By default gator runs a template's CEL block (each has one); the flag makes it run the Rego.
            for label, flags in (("gator", ()), ("gator (Rego)", ("--enable-k8s-native-validation=false",))):
                reference = median([gator(folder, out, *flags) for _ in range(runs)])
                if not flags:
                    gator_rate = count / reference.wall
                print(f"{label:>14}: {reference.wall:7.1f} s  {count / reference.wall:7.0f} objects/s  cpu {reference.cpu:6.1f} s  "
                      f"peak {reference.peak_mb:6.0f} MB")
        else:
            print(f"{'gator':>14}: not on PATH (no ratio to it)")
        for backend in backends:
            m = median([audit(folder, policies, backend) for _ in range(runs)])
            rate = count / m.wall
            versus = f"  {rate / gator_rate:5.1f}x gator" if gator_rate else ""
            print(f"{backend:>14}: {m.wall:7.1f} s  {rate:7.0f} objects/s  cpu {m.cpu:6.1f} s  peak {m.peak_mb:6.0f} MB  "
                  f"{rate / base:5.0%} of parse-only{versus}  disagreements {m.summary.get('disagreements', '?')}")


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", nargs="+", help="what to audit with (default: every backend with an adapter, then all)")
    parser.add_argument("--json", action="store_true", help="the corpus as JSON Lists instead of YAML streams")
    parser.add_argument("--parse-only", type=Path, help=argparse.SUPPRESS)  # the parse-only process
    parser.add_argument("--make-corpus", nargs=3, help=argparse.SUPPRESS)  # folder, count, seed
    parser.add_argument("--list-backends", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--summary", type=Path, help=argparse.SUPPRESS)  # a report's summary, read apart
    args = parser.parse_args()
    if args.summary:
        print_summary(args.summary)
        return
    if args.parse_only:
        parse_corpus(args.parse_only)
        return
    if args.make_corpus:
        corpus(Path(args.make_corpus[0]), int(args.make_corpus[1]), int(args.make_corpus[2]), args.json)
        return
    if args.list_backends:
        from conformance.audit.cli import adapter_backends

        print(" ".join([*adapter_backends("all"), "all"]))
        return
    compile_packages()
    args.backends = args.backends or helper("--list-backends").split()
    for count in args.objects:
        bench(count, args.runs, args.seed, args.backends, args.json)


if __name__ == "__main__":
    main_()
