"""OPA / conftest backend: one Rego v1 package per rule plus `package main` with deny and warn."""

from __future__ import annotations

from .. import ir
from ..lang.rego import LIBRARY_PATH, compile_check, exemption_data, library, module_context
from ..names import rego_package
from ..render import Safe, program_sources, render
from . import Backend


def _entries(rule: ir.ResolvedRule) -> list[dict[str, object]]:
    """How main.rego collects a rule: deny or warn by level; a staged rule both, filtered by level."""
    package = Safe(rego_package(rule.id))
    if rule.enforced_in:
        return [{"rule": Safe("deny"), "package": package, "staged": True, "level": ir.Level.REQUIRED.value},
                {"rule": Safe("warn"), "package": package, "staged": True, "level": ir.Level.RECOMMENDED.value}]
    entry = Safe("deny" if rule.level is ir.Level.REQUIRED else "warn")
    return [{"rule": entry, "package": package, "staged": False}]


def _payload(fields: dict[str, str]) -> str:
    """A violation as conftest and OPA report it: its message, rule, level and fix, and where it is."""
    entries = {"msg": fields["msg"], "rule": "rule_id", "level": "level", "fix": "fix", **fields}
    return "{" + ", ".join(f'"{key}": {value}' for key, value in entries.items()) + "}"


class RegoBackend(Backend):
    name = "rego"
    title = "OPA / conftest (Rego v1)"
    relative_cost = 3

    def rule_files(self, rule: ir.ResolvedRule, program: ir.Program) -> dict[str, str]:
        return {f"rego/{rule.id}.rego": render(
            "rego/rule.rego.j2",
            **module_context(rule, self.name, rego_package(rule.id), _payload),
            params={name: list(values) for name, values in rule.rule.params},
            waivers=[exemption_data(e) for e in rule.waivers],
            widenings=[exemption_data(e) for e in rule.widenings],
        )}

    def program_files(self, program: ir.Program, files: dict[str, str]) -> dict[str, str]:
        """The shared helpers and `package main`; no kustomization (OPA reads Rego, not Kubernetes objects)."""
        return {
            f"rego/{LIBRARY_PATH}": library(["import rego.v1"], "rego/_request.rego.j2"),
            "rego/main.rego": render("rego/main.rego.j2", sources=program_sources(program),
                                     entries=[entry for rule in program.rules for entry in _entries(rule)]),
        }

    def parse_back(self, files: dict[str, str]) -> None:
        """Compile every module with rego-cpp, so a broken artifact is never written."""
        entrypoints = [f"main/{rule}" for rule in ("deny", "warn") if f"\n{rule} contains" in files["rego/main.rego"]]
        compile_check(files, entrypoints or ["main"])
