"""The conformance harness: engines, adapters and cases that prove the backends agree."""

import compiler  # noqa: F401  (one C++ allocator for regopy and the CEL runtime, before either loads)
