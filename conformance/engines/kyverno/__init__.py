"""Kyverno validation emulator.

Evaluates ClusterPolicy/Policy validate rules (match/exclude, autogen, exceptions,
preconditions, patterns with anchors, deny conditions, foreach, ``{{ }}`` variables
through JMESPath) the way the Kyverno CLI does, without a Kyverno binary.  Only the
standard library, PyYAML and jmespath are used.
"""

from .engine import RuleResult, evaluate, policy_key

__all__ = ["RuleResult", "evaluate", "policy_key"]
