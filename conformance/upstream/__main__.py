"""`python -m conformance.upstream`: run every upstream suite and print the README's agreement table.

Exit 0 when every suite is proven, 1 when one disagrees or lists a stale gap, 2 without the
shared fixtures.
"""

from __future__ import annotations

import sys

from . import SHARED, load_gaps, suites, table, tally


def main() -> int:
    if not (SHARED / "expected.json").is_file():
        print(f"the shared upstream fixtures are not at {SHARED}", file=sys.stderr)
        return 2
    gaps = load_gaps()
    results = [(suite, tally(suite.name, suite.run(SHARED), gaps)) for suite in suites()]
    print(table(results))
    for suite, result in results:
        if not result.proven:
            print(f"\n{suite.name}:\n{result.failures()}", file=sys.stderr)
    return 0 if all(result.proven for _, result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
