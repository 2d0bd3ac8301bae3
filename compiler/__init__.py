"""kupe-policy: compile one policy DSL into every admission engine's artifacts."""

import ctypes
import os
import sys


def _one_operator_new() -> None:
    """Make regopy and the CEL runtime share one C++ allocator (measured, docs/engine-notes.md).

    regopy's native library exports its own `operator new`/`delete` (snmalloc) and both libraries
    use the shared libstdc++. Whichever loads libstdc++ first decides which allocator libstdc++'s
    own code calls, so memory allocated by one allocator is released by the other: regopy loaded
    first aborts the CEL runtime's first evaluation error (`free(): invalid size`); the CEL
    runtime loaded first makes every rego-cpp query leak (~0.3 MiB with the shipped rules).
    Loading libstdc++ into the global scope before either binds every `operator new` in the
    process to libstdc++'s, whatever is imported next. Every process that evaluates either
    engine imports `compiler` (or `conformance`, which imports it) first.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL | os.RTLD_NOW)
        except OSError:  # no shared libstdc++ (a static build): nothing to share
            pass


_one_operator_new()
