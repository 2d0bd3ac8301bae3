"""OPA / conftest backend: one Rego v1 package per rule plus `package main` with deny and warn."""

from __future__ import annotations

from .. import ir
from ..lang.rego import LIBRARY_PATH, RegoLowering, compile_check, exemption_data, judged_subresources, library, package_name, pod_spec_paths
from ..render import Safe, render
from . import Backend


def _entries(rule: ir.ResolvedRule) -> list[dict[str, object]]:
    """How main.rego collects a rule: deny or warn by level; a staged rule both, filtered by level."""
    package = Safe(package_name(rule.id))
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

    def compile(self, program: ir.Program) -> dict[str, str]:
        files = {f"rego/{rule.id}.rego": self._rule_module(rule) for rule in program.rules}
        files[f"rego/{LIBRARY_PATH}"] = library(["import rego.v1"])
        files["rego/main.rego"] = render(
            "rego/main.rego.j2",
            sources=", ".join(sorted({str(ps.loc.file) for ps in program.policy_sets})),
            entries=[entry for rule in program.rules for entry in _entries(rule)],
        )
        parse_back(files)
        return files

    def _rule_module(self, rule: ir.ResolvedRule) -> str:
        return render(
            "rego/rule.rego.j2",
            source=str(rule.rule.loc),
            rule_id=rule.id,
            level=rule.level.value,
            enforced_in=list(rule.enforced_in),
            title=rule.rule.title,
            package=Safe(package_name(rule.id)),
            fix=rule.rule.fix,
            params={name: list(values) for name, values in rule.rule.params},
            waivers=[exemption_data(e) for e in rule.waivers],
            widenings=[exemption_data(e) for e in rule.widenings],
            pod_spec_paths=pod_spec_paths(rule),
            judged_subresources=judged_subresources(rule),
            checks=Safe(RegoLowering(rule, "rego").lower(_payload)),
        )


def parse_back(files: dict[str, str]) -> None:
    """Compile every module with rego-cpp, so a broken artifact is never written."""
    entrypoints = [f"main/{rule}" for rule in ("deny", "warn") if f"\n{rule} contains" in files["rego/main.rego"]]
    compile_check(files, entrypoints or ["main"])
