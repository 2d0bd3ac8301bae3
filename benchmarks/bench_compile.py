"""Compile-time benchmark: the shipped policies, and a generated set of 200 rules and 2,000 exemptions.

Run: python benchmarks/bench_compile.py   (targets: shipped < 1 s wall, generated < 5 s wall)
Each figure is the wall time of a whole `kupe-policy compile` process, interpreter start included,
best of 3, in four cases:
- cold: no check remembered (as on a fresh machine, or after any change to the compiler or the
  engines; KUPE_POLICY_CACHE is an empty folder), into a fresh out/ and into an up-to-date one;
- warm: the same artifacts passed their checks before (compiler.proven), fresh and up to date.
A first run fills Jinja's compiled-template cache (kept between runs in every case); kupe-policy's
own bytecode is compiled first (bytecode.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_packages

REPO = Path(__file__).resolve().parent.parent

GENERATED = '''
from compiler.dsl import PolicySet, Recommended, Required, containers, exempt, param, pod, volumes

ps = PolicySet("generated", title="Generated")
SHAPES = [
    lambda: containers().effective("securityContext.runAsNonRoot").equals(True),
    lambda: containers().field("securityContext.allowPrivilegeEscalation").equals(False),
    lambda: containers().field("securityContext.capabilities.drop").contains("ALL"),
    lambda: containers().field("securityContext.privileged").not_equals(True),
    lambda: pod().field("hostNetwork").not_equals(True),
    lambda: volumes().field("hostPath.path").as_path().none_of(["/", "/var/run", "/run"]),
    lambda: containers(["containers", "initContainers"]).field("resources.limits.memory").present(),
]
for i in range({rules}):
    level = Required if i % 3 else Recommended
    if i % 8 == 7:
        ps.rule(f"rule-{{i:03d}}", level, title=f"Rule {{i}}", rationale="generated", fix="generated",
                check=containers().field("securityContext.capabilities.add").subset_of(param("allowed")),
                params={{"allowed": ["NET_BIND_SERVICE"]}})
    else:
        ps.rule(f"rule-{{i:03d}}", level, title=f"Rule {{i}}", rationale="generated", fix="generated", check=SHAPES[i % 7]())
for j in range({exemptions}):
    rule = j % {rules}
    # Kyverno lowers each combination of widenings of one parameter: keep 4 per parameter (its limit is 6).
    kwargs = {{"allow": {{"allowed": ["NET_ADMIN"]}}}} if rule % 8 == 7 and j < 4 * {rules} else {{}}
    exempt(f"exemption-{{j:04d}}", rules=[f"rule-{{rule:03d}}"], namespaces=[f"team-{{j % 50}}"],
           labels={{"app": f"app-{{j}}"}} if j % 2 else {{}}, reason="generated", ticket=f"GEN-{{j}}",
           expires="2099-12-31", **kwargs)
'''


def timed_compile(workdir: Path, fresh: bool, cache: Path) -> float:
    if fresh:
        shutil.rmtree(workdir / "out", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compiler", "compile", "--out", str(workdir / "out"), "--as-of", "2026-11-01"],
                   cwd=workdir, check=True, capture_output=True, env={**os.environ, "KUPE_POLICY_CACHE": str(cache)})
    return time.perf_counter() - start


def cold_compile(workdir: Path, fresh: bool) -> float:
    """A compile that remembers no check: its remembered passes are in a new, empty folder."""
    with tempfile.TemporaryDirectory(prefix="proven-", dir=workdir) as cache:
        return timed_compile(workdir, fresh, Path(cache))


def main() -> None:
    compile_packages()
    # In the checkout's own file system, where out/ is written in real use (a tmpfs or overlay /tmp
    # may create files at a very different cost).
    with tempfile.TemporaryDirectory(prefix=".bench-compile-", dir=REPO) as tmp:
        shipped = Path(tmp) / "shipped"
        (shipped / "policies").mkdir(parents=True)
        for source in (REPO / "policies").glob("*.py"):
            (shipped / "policies" / source.name).write_text(source.read_text())
        generated = Path(tmp) / "generated"
        (generated / "policies").mkdir(parents=True)
        (generated / "policies" / "generated.py").write_text(GENERATED.format(rules=200, exemptions=2000))
        for name, folder, target in (("shipped policies (11 rules)", shipped, 1.0),
                                     ("generated (200 rules, 2,000 exemptions)", generated, 5.0)):
            warm = folder / "proven"
            timed_compile(folder, True, warm)  # fills Jinja's cache and the remembered passes
            for state, compile_once in (("cold", cold_compile),
                                        ("warm", lambda workdir, fresh, cache=warm: timed_compile(workdir, fresh, cache))):
                for out in ("fresh out/", "out/ up to date"):
                    best = min(compile_once(folder, out == "fresh out/") for _ in range(3))
                    verdict = "ok" if best < target else "SLOW"
                    print(f"{name}, {state}, {out}: {best:.2f} s wall, best of 3 (target < {target:.0f} s) {verdict}",
                          flush=True)


if __name__ == "__main__":
    main()
