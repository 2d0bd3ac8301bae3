"""Bad-input benchmark: every input of tests/bad_inputs.py audited alone, in its own process.

Run: python benchmarks/bench_bad_inputs.py   (target: each under 5 s wall and 500 MB peak memory)
Prints wall time and peak resident memory per input (interpreter start and compilation
included) and exits 1 when an input misses a target.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from bad_inputs import make, measured, peak_kib  # noqa: E402

SECONDS, MEGABYTES = 5.0, 500


def measure(path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak MB, exit code) of `kupe-policy audit PATH` in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run(measured(["audit", str(path)]), cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - start, peak_kib(result.stderr) / 1024, result.returncode


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory() as folder:
        inputs = make(Path(folder))
        print(f"{'input':40} {'seconds':>8} {'peak MB':>8} {'exit':>5}")
        for item in inputs:
            seconds, megabytes, code = measure(Path(folder) / item.name)
            bad = seconds > SECONDS or megabytes > MEGABYTES or code != 2
            missed += bad
            print(f"{item.name:40} {seconds:8.2f} {megabytes:8.0f} {code:5}{'  MISSED' if bad else ''}")
    print(f"{len(inputs)} inputs; {missed} missed a target (each under {SECONDS:.0f} s and {MEGABYTES} MB, exit 2)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
