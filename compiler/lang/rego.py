"""Lowering of a rule's checks to Rego, shared by the backends that emit Rego (OPA, Gatekeeper).

The emitted Rego uses only keywords that parse alike in Rego v1 and in Rego v0 with
`future.keywords` imports (`if`, `contains`, `in`, `every`), so one lowering serves both.
The helpers live once in `package lib.kupe` (templates/rego/lib.rego.j2); a rule module imports
`data.lib.kupe` (which also holds the request, its namespace and workload: the dialect reads
them from its own input), defines `params`, `waivers`, `widenings`, includes
`rego/_logic.rego.j2`, and gets its per-check code from this module.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable

import regopy
from dataclasses import dataclass

from .. import describe, ir, passes
from ..errors import ArtifactError
from ..lowering import Lowering
from ..render import Safe, render, rule_context

# Builds the element of the `violation` set from Rego expressions by field name: the message and
# what locates the violation (`msg`, `check`, `field`, `container`, `volume`).
Payload = Callable[[dict[str, str]], str]


def literal(value: object) -> str:
    """A Rego literal for JSON data (Rego's term syntax is a superset of JSON)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def exemption_data(exemption: ir.Exemption) -> dict[str, object]:
    """How the Rego helpers see an exemption (see templates/rego/_logic.rego.j2)."""
    return {
        "id": exemption.id,
        "namespaces": list(exemption.namespaces),
        "names": list(exemption.names),
        "labels": dict(exemption.labels),
        "containers": list(exemption.containers),
        "allow": {name: list(values) for name, values in exemption.allow},
    }


def pod_spec_targets() -> dict[str, dict[str, object]]:
    """`pod_spec_targets` of templates/rego/lib.rego.j2: where each workload kind keeps its pod spec,
    and the subresources whose requests add containers (every kind a rule can judge)."""
    return {t.kind: {"group": t.group, "path": list(t.pod_spec_path), "subresources": list(t.subresources)}
            for t in sorted(passes.POD_TARGETS.values(), key=lambda t: t.kind)}


def module_context(rule: ir.ResolvedRule, backend: str, package: str, payload: Payload) -> dict[str, object]:
    """What every dialect's rule module template reads (the Rego backend's, Gatekeeper's)."""
    return dict(
        **rule_context(rule), enforced_in=sorted(rule.enforced_in), package=Safe(package), fix=rule.rule.fix, kinds=[t.kind for t in rule.targets],
        checks=Safe(RegoLowering(rule, backend).lower_rule(payload)),
    )


LIBRARY_PATH = "lib/kupe.rego"


def library(imports: list[str], request_template: str) -> str:
    """The shared helpers, `package lib.kupe`, headed by the dialect's import lines; the dialect's
    `request` rule comes from `request_template`."""
    return render("rego/lib.rego.j2", imports=[Safe(line) for line in imports], request_template=request_template,
                  default_namespace=ir.DEFAULT_NAMESPACE, pod_spec_targets=pod_spec_targets())


def compile_check(modules: dict[str, str], entrypoints: list[str]) -> None:
    """Compile the modules with rego-cpp into a bundle for `entrypoints` (parse and well-formedness checks).

    A build compiles without evaluating: with thousands of exemptions evaluation costs seconds.
    Its cost follows what the modules hold, so two things are read by a JSON parser instead:
    - a constant whose value is JSON (the exemption data, above all): rego-cpp reads an empty
      array or object in its place (Rego's term syntax extends JSON's);
    - string literals: modules that differ only in their string literals (each valid JSON; equal
      literals stay equal), their comments and their package names (each its module's alone, and
      neither within nor around another) are one shape, and rego-cpp builds the first module of
      each shape (202 generated modules are 10 shapes). Entry points of the others name the module
      built in their place.
    """
    texts = {path: _JSON_CONSTANT.sub(_emptied, text) for path, text in sorted(modules.items())}
    packages = [_package(text) for text in texts.values()]
    modules_of = Counter(packages)
    # A package within another (`a` and `a.b`) may clash with it: both are built as they are.
    named = [p for p in modules_of if p is not None]
    nested = {package for outer in named for inner in named if inner.startswith(outer + ".") for package in (outer, inner)}
    shapes: dict[str, str] = {}  # shape → the package of the module built for it
    standing_in: dict[str, str] = {}  # package → the package of the module of its shape that is built
    built: dict[str, str] = {}
    for (path, text), package in zip(texts.items(), packages):
        shape = _shape(text) if package is not None and modules_of[package] == 1 and package not in nested else None
        if package is not None and shape is not None:
            if shape in shapes:
                standing_in[package] = shapes[shape]
                continue
            shapes[shape] = package
        built[path] = text
    entries = sorted({_entrypoint(entry, standing_in) for entry in entrypoints})
    interpreter = regopy.Interpreter()
    try:
        for path, text in built.items():
            interpreter.add_module(path, text)
        bundle = interpreter.build(None, entries)
    except regopy.RegoError as error:
        raise ArtifactError(f"generated Rego does not compile with rego-cpp: {error}") from None
    if not bundle.ok():
        raise ArtifactError(f"generated Rego does not compile with rego-cpp (modules: {', '.join(sorted(modules))})")


_PACKAGE = re.compile(r"^package ([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*$", re.MULTILINE)
# A string, a raw string or a comment, whichever starts first (a `#` in a string is the string's).
_LITERAL_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*')


_KEYWORDS = frozenset({"as", "contains", "data", "default", "else", "every", "false", "if", "import", "in", "input",
                       "not", "null", "package", "some", "true", "with"})


def _package(text: str) -> str | None:
    """The module's package when it has one, plainly named (no keyword: rego-cpp must judge those)."""
    found = _PACKAGE.findall(text)
    return found[0] if len(found) == 1 and not _KEYWORDS & set(found[0].split(".")) else None


def _shape(text: str) -> str | None:
    """The module with its package name, comments and string literals taken out (each literal a
    numbered placeholder, equal literals one number); None when a string literal is not valid JSON
    (rego-cpp must read that module as it is)."""
    numbers: dict[str, int] = {}

    def placeholder(token: re.Match[str]) -> str:
        literal = token.group()
        if literal.startswith("#"):
            return ""
        if literal.startswith('"'):
            json.loads(literal)  # ValueError: not a JSON string
        return f"\0{numbers.setdefault(literal, len(numbers))}\0"

    try:
        return _LITERAL_OR_COMMENT.sub(placeholder, _PACKAGE.sub("package \0", text))
    except ValueError:
        return None


def _entrypoint(entry: str, standing_in: dict[str, str]) -> str:
    """`pkg/path/rule` (or `pkg/path`): with the package of the module built in its module's place."""
    parts = entry.split("/")
    for cut in range(len(parts), 0, -1):
        package = ".".join(parts[:cut])
        if package in standing_in:
            return "/".join([*standing_in[package].split("."), *parts[cut:]])
    return entry


_JSON_CONSTANT = re.compile(r"^([a-z_][a-z0-9_]*) := ([\[{].*)$", re.MULTILINE)


def _emptied(constant: re.Match[str]) -> str:
    """A constant whose value parses as JSON (no repeated key, no NaN), with an empty value of its kind."""
    try:
        value = json.loads(constant.group(2), object_pairs_hook=_unique_keys, parse_constant=_not_json)
    except ValueError:
        return constant.group(0)  # Rego, not JSON (a comprehension, a reference): rego-cpp reads it
    return f"{constant.group(1)} := {'[]' if isinstance(value, list) else '{}'}"


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a repeated key")
    return dict(pairs)


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


_TYPE_TESTS = {bool: "is_boolean", int: "is_number", str: "is_string"}


@dataclass(frozen=True)
class RegoLowering(Lowering):
    """One method per IR node; a node without a method is refused with `unsupported`.

    Each check `i` becomes `ok_i` (the subject complies), `failing_i(spec, wl)` (the names of the
    subjects of a pod spec that fail it under the exemptions that select the workload: "" names the
    pod spec itself) and a `violation` rule for each failing subject of the object that the old
    object, on an UPDATE, did not fail already (docs/semantics.md, Requests).
    """

    def lower_rule(self, payload: Payload) -> str:
        """All checks of the rule."""
        blocks = []
        for index, check in enumerate(self.rule.rule.checks):
            alternatives = self.lower(check.predicate, check)
            text = describe.predicate(check.predicate)
            head = f"ok_{index}({', '.join(self._parameters(check))})"
            blocks.append(f"# Check {index}, {describe.subject(check.subject)}: {text}")
            blocks.extend(f"{head} if {{\n{_body(lines)}\n}}\n" for lines in alternatives)
            blocks.append(self.lower(check.subject, check, index, text, payload))
        return "\n".join(blocks)

    @staticmethod
    def _parameters(check: ir.Check) -> list[str]:
        """`ok_i(x, spec, wl)`: the subject, the pod spec (read by an effective value) and the workload
        (read by a list parameter that exemptions widen). One arity for every `ok_i`: rego-cpp crashes
        when packages define a function of the same name with other arities (docs/engine-notes.md);
        a parameter the body does not read is `_`, as OPA's strict mode requires."""
        predicate = check.predicate
        values = getattr(predicate, "values", None) or getattr(predicate, "allowed", None)
        return ["x", "spec" if isinstance(predicate.ref, ir.EffectiveRef) else "_", "wl" if isinstance(values, ir.Param) else "_"]

    # --- references: a value expression, and the conditions under which it is unset ---------

    def _value(self, ref: ir.Ref, check: ir.Check) -> str:
        return self.lower(ref, check)

    def lower_FieldRef(self, node: ir.FieldRef, check: ir.Check) -> str:
        return f"kupe.value(x, {literal(list(node.path))})"

    def lower_EffectiveRef(self, node: ir.EffectiveRef, check: ir.Check) -> str:
        return f"kupe.effective(spec, x, {literal(list(node.container_path))}, {literal(list(node.pod_path))})"

    def lower_NormalPath(self, node: ir.NormalPath, check: ir.Check) -> str:
        return f"kupe.normal_path({self.lower(node.field, check)})"

    def _unset(self, ref: ir.Ref) -> list[str]:
        if isinstance(ref, ir.EffectiveRef):
            return [f"not kupe.has_value(x, {literal(list(ref.container_path))})",
                    f"not kupe.has_value(spec, {literal(list(ref.pod_path))})"]
        return [f"not kupe.has_value(x, {literal(list(ref.path))})"]

    def _set_of(self, values: ir.Values, check: ir.Check) -> str:
        if isinstance(values, ir.Param):
            subject_name = 'object.get(x, "name", "")' if isinstance(check.subject, ir.EachContainer) else '""'
            return f"kupe.allowed(wl, params, widenings, {literal(values.name)}, {subject_name})"
        return "{" + ", ".join(literal(v) for v in values) + "}"

    def _typed(self, ref: ir.Ref, value: ir.Scalar, check: ir.Check) -> list[str]:
        return [f"v := {self._value(ref, check)}", f"{_TYPE_TESTS[type(value)]}(v)"]

    # --- predicates: alternatives (OR) of bodies (AND) under which the subject complies -----

    def lower_Equals(self, node: ir.Equals, check: ir.Check) -> list[list[str]]:
        return [[*self._typed(node.ref, node.value, check), f"v == {literal(node.value)}"]]

    def lower_NotEquals(self, node: ir.NotEquals, check: ir.Check) -> list[list[str]]:
        return [self._unset(node.ref), [*self._typed(node.ref, node.value, check), f"v != {literal(node.value)}"]]

    def lower_OneOf(self, node: ir.OneOf, check: ir.Check) -> list[list[str]]:
        return [[*self._typed(node.ref, "", check), f"v in {self._set_of(node.values, check)}"]]

    def lower_NoneOf(self, node: ir.NoneOf, check: ir.Check) -> list[list[str]]:
        return [self._unset(node.ref), [*self._typed(node.ref, "", check), f"not v in {self._set_of(node.values, check)}"]]

    def lower_ListContains(self, node: ir.ListContains, check: ir.Check) -> list[list[str]]:
        return [[f"v := {self._value(node.ref, check)}", "is_array(v)", f"{literal(node.value)} in v"]]

    def lower_ListSubsetOf(self, node: ir.ListSubsetOf, check: ir.Check) -> list[list[str]]:
        allowed = self._set_of(node.allowed, check)
        return [self._unset(node.ref), [f"v := {self._value(node.ref, check)}", "is_array(v)", f"allowed_items := {allowed}",
                                        "every item in v {\n\t\titem in allowed_items\n\t}"]]

    def lower_Present(self, node: ir.Present, check: ir.Check) -> list[list[str]]:
        if isinstance(node.ref, ir.EffectiveRef):
            return [[f"kupe.has_value(x, {literal(list(node.ref.container_path))})"],
                    [f"kupe.has_value(spec, {literal(list(node.ref.pod_path))})"]]
        return [[f"kupe.has_value(x, {literal(list(node.ref.path))})"]]

    # --- subjects: which subjects fail, and the violation rule ------------------------------

    def _failing(self, check: ir.Check, index: int, noun: str, subjects: list[str], exempt_as: str) -> str:
        lines = ["is_object(spec)", *subjects, f"not ok_{index}(x, spec, wl)", *(['name := object.get(x, "name", "")'] if noun else []),
                 f"not kupe.waived(wl, waivers, {exempt_as})"]
        head = "name" if noun else '""'
        what = f"The {noun}s of a pod spec failing check {index}, by name" if noun else f"The pod spec, named \"\", when it fails check {index}"
        return f"# {what} (exemptions applied; none when `spec` is null: no old object).\nfailing_{index}(spec, wl) := {{{head} |\n{_body(lines)}\n}}\n"

    def _violation(self, payload: Payload, check: ir.Check, index: int, name: str, message: str) -> str:
        """The rule for the subjects failing check `index`, each named `name` ("" for the pod spec)."""
        subject = f"some {name} in" if name != '""' else f"{name} in"
        lines = ["kupe.judged(kinds)", f"{subject} failing_{index}(pod_spec, kupe.workload)",
                 f"not {name} in failing_{index}(old_pod_spec, kupe.workload)", f"msg := {message}"]
        ref = check.predicate.ref
        fields = {"msg": "msg", "check": str(index), "field": literal(".".join(ref.container_path if isinstance(ref, ir.EffectiveRef) else ref.path)),
                  "container": name if name == "container" else "null", **({"volume": name} if name == "volume" else {})}
        return f"violation contains {payload(fields)} if {{\n{_body(lines)}\n}}\n"

    def lower_EachContainer(self, node: ir.EachContainer, check: ir.Check, index: int, text: str, payload: Payload) -> str:
        failing = self._failing(check, index, "container", [f"some x in kupe.containers(spec, {literal(list(node.lists))})"], "name")
        message = f'sprintf("%v: container %v: %v. Fix: %v", [rule_id, kupe.display(container), {literal(text)}, fix])'
        return failing + "\n" + self._violation(payload, check, index, "container", message)

    def lower_PodSpec(self, node: ir.PodSpec, check: ir.Check, index: int, text: str, payload: Payload) -> str:
        failing = self._failing(check, index, "", ["x := spec"], '""')
        message = f'sprintf("%v: %v. Fix: %v", [rule_id, {literal(text)}, fix])'
        return failing + "\n" + self._violation(payload, check, index, '""', message)

    def lower_EachVolume(self, node: ir.EachVolume, check: ir.Check, index: int, text: str, payload: Payload) -> str:
        failing = self._failing(check, index, "volume", ["some x in kupe.volumes(spec)"], '""')
        message = f'sprintf("%v: volume %v: %v. Fix: %v", [rule_id, kupe.display(volume), {literal(text)}, fix])'
        return failing + "\n" + self._violation(payload, check, index, "volume", message)


def _body(lines: list[str]) -> str:
    return "\n".join(f"\t{line}" for line in lines)
