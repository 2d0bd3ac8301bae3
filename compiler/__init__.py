"""kupe-policy: compile one policy DSL into every admission engine's artifacts."""

# Measured (regopy 1.5.2, cel-expr-python 0.1.3): once regopy's native library is loaded, the
# CEL runtime aborts the process (`free(): invalid size`) on its first evaluation error; loaded
# the other way round, both work. Every process that may use both imports this package or
# `conformance` first, so the CEL runtime is loaded before regopy.
from cel_expr_python import cel as _cel  # noqa: F401
from cel_expr_python.ext import ext_bindings, ext_math, ext_optional, ext_strings  # noqa: F401
