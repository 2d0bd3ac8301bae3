"""The conformance harness: engines, adapters and cases that prove the backends agree."""

# Load the CEL runtime before regopy: see compiler/__init__.py for the measured crash.
from cel_expr_python import cel as _cel  # noqa: F401
from cel_expr_python.ext import ext_bindings, ext_math, ext_optional, ext_strings  # noqa: F401
