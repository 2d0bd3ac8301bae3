"""Lowering of a rule's checks to CEL, shared by the engines that evaluate Kubernetes CEL.

ValidatingAdmissionPolicy uses it, and so does Gatekeeper's `K8sNativeValidation` engine, which
is why where the inputs come from is configurable (`CelSources`): the admitted object, the
request namespace, the rule's list parameters (inlined as constants, or read from an
expression such as `variables.params`), and the exemptions: compile-time constants (VAP: the
`inline_waivers` and the rule's widenings; the rest left to the caller, e.g. matchConditions), or
data read at evaluation time (`CelSources.exemptions`, Gatekeeper: the Constraint's
`spec.parameters` carry them, so one Constraint serves its Rego and its CEL alike).

The lowering yields named variables (`variables.<name>`) and validations; semantics
(docs/semantics.md) are expressed exactly:
- null is unset: the API server drops nulls before admission, so a field is read as
  `x.?a.?b.orValue(null)` (`?.` because a missing key is an evaluation error in CEL, not false);
- a value of the wrong JSON type never complies: every comparison is guarded by `type(v) == T`;
- `EffectiveRef` is the container's value `.or()` the pod's;
- cost stays linear in containers and volumes: each check is one `filter` over a list variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from .. import describe, ir
from ..lowering import Lowering
from ..render import Safe

_TYPE_TESTS: dict[type, str] = {bool: "type({v}) == bool", int: "(type({v}) == int || type({v}) == double)",
                                str: "type({v}) == string"}


_IDENTIFIER = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
# CEL's reserved words; Kubernetes escapes such field names (`__namespace__`), which we do not emit.
_RESERVED = frozenset("false in null true as break const continue else for function if import let loop "
                      "package namespace return var void while".split())


def literal(value: ir.Scalar | list[str]) -> str:
    """A CEL literal for a bool, int, string or list of strings.

    Strings are ASCII only (`\\uXXXX` / `\\UXXXXXXXX` escapes), so no character in generated
    code can break the YAML block scalar it is written into.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _NO_ESCAPES.fullmatch(value):
            return f'"{value}"'
        return '"' + "".join(_char(c) for c in value) + '"'
    return "[" + ", ".join(literal(item) for item in value) + "]"


# Printable ASCII but `"` and `\`: the characters `_char` leaves as they are.
_NO_ESCAPES = re.compile(r'[ !#-\[\]-~]*')


def _char(c: str) -> str:
    if c in '\\"':
        return "\\" + c
    if " " <= c <= "~":
        return c
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def identifier(name: str) -> str:
    """A CEL identifier for an id like `cilium-agent-net-admin` (ids are `[a-z][a-z0-9-]*`)."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class CelSources:
    """Where the lowered expressions find their inputs (VAP defaults)."""

    object: str = "object"
    old_object: str = "oldObject"  # null unless the request is an UPDATE
    request: str = "request"  # the AdmissionRequest (operation, subResource)
    namespace: str = "request.namespace"  # the request namespace, a string
    params: str | None = None  # a map of list params; None inlines the rule's values as constants
    variables: str = "variables"
    # A map holding the lists `waivers` and `widenings` of exemption data (the shape of
    # compiler.lang.rego.exemption_data), applied at evaluation time; None: exemptions are constants.
    exemptions: str | None = None
    # A list of strings `<container>:<value>` (`*:<value>` for every container) that widen the
    # rule's list parameter where it is read (Kyverno's `exceptions.allowedValues`); None: constants.
    allowed_values: str | None = None


@dataclass(frozen=True)
class Variable:
    name: str
    expression: str
    comment: str


@dataclass(frozen=True)
class Validation:
    expression: str
    message: str  # static fallback
    message_expression: str | None  # names the failing containers or volumes
    comment: str


@dataclass(frozen=True)
class Lowered:
    variables: tuple[Variable, ...]
    validations: tuple[Validation, ...]

    def template_context(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(variables, validations) as the YAML templates render them; the CEL is already escaped code."""
        variables = [{"name": v.name, "comment": v.comment, "expression": Safe(v.expression)} for v in self.variables]
        validations = [{
            "comment": v.comment,
            "expression": Safe(v.expression),
            "message": v.message,
            "message_expression": Safe(v.message_expression) if v.message_expression else None,
        } for v in self.validations]
        return variables, validations


@dataclass(frozen=True)
class CelLowering(Lowering):
    """One method per IR node; a node without a method is refused with `UnsupportedError`.

    `inline_waivers` are the waivers applied inside the validations (a waived container or
    subject complies); widenings are always applied inline, per container.

    Requests (docs/semantics.md): a `judged` variable is false for a DELETE and for any
    subresource but those that add containers. Each check lists the names of the subjects that
    fail it ("" is the pod spec itself), once for the object and once, with `old_` variables, for
    the object an UPDATE replaces (`old=True` lowers that side); both sides apply the exemptions
    that select the object. A check's validation holds when every failing subject failed before too.
    """

    sources: CelSources = CelSources()
    inline_waivers: tuple[ir.Exemption, ...] = ()
    old: bool = False

    def __post_init__(self) -> None:
        if self.sources.exemptions is not None and self.inline_waivers:
            raise ValueError("exemptions are either constants (inline_waivers) or data (CelSources.exemptions), not both")

    @property
    def _object(self) -> str:
        return self.sources.old_object if self.old else self.sources.object

    def var(self, name: str) -> str:
        """A variable of this side: `variables.<name>`, or `variables.old_<name>` for the old object."""
        return f"{self.sources.variables}.{'old_' * self.old}{name}"

    def shared(self, name: str) -> str:
        """A variable of the request, the same for both sides (`judged`, which exemptions select)."""
        return f"{self.sources.variables}.{name}"

    def _variable(self, name: str, expression: str, comment: str) -> Variable:
        return Variable("old_" * self.old + name, expression, f"{'the old object: ' * self.old}{comment}")

    def lower_rule(self) -> Lowered:
        """The variables and the validations (one per check) of the rule."""
        old = replace(self, old=True)
        variables: dict[str, Variable] = {v.name: v for v in [
            self._judged(), *self._pod_spec_variables(), *self._exemption_variables(), *old._pod_spec_variables()]}
        validations = []
        for check in self.rule.rule.checks:
            for side in (self, old):
                for variable in side._subjects(check):
                    variables.setdefault(variable.name, variable)
            validations.append(self._validation(check))
        return Lowered(tuple(variables.values()), tuple(validations))

    def _judged(self) -> Variable:
        subresources = sorted({"", *(s for t in self.rule.targets for s in t.subresources)})
        request = self.sources.request
        return Variable("judged", f"{request}.?operation.orValue('') != 'DELETE' &&\n"
                                  f"{request}.?subResource.orValue('') in {literal(subresources)}",
                        "judged: a creation or update of the object or of a subresource that adds containers (not DELETE, status, ...)")

    def _exemption_variables(self) -> list[Variable]:
        """Which exemptions select the object: constants, or the exemption data that does."""
        variables = [Variable(f"selected_{identifier(e.id)}", self.selects_object(e), f"exemption {e.id} ({e.loc}) selects this object")
                     for e in self._inline_exemptions()]
        return variables + self._exemption_data_variables()

    # --- where the pod spec is ----------------------------------------------------------

    def _pod_spec_variables(self) -> list[Variable]:
        obj = self._object
        chain = "null"
        for target in reversed(self.rule.targets):
            group_test = (f"!{obj}.apiVersion.contains('/')" if not target.group
                          else f"{obj}.apiVersion.startsWith({literal(target.group + '/')})")
            path = "".join(f".?{part}" for part in target.pod_spec_path)
            chain = f"{obj}.kind == {literal(target.kind)} && {group_test}\n  ? {obj}{path}.orValue(null)\n  : {chain}"
        raw = self.var("podSpecValue")
        if self.old:  # null unless the request is an UPDATE
            chain = f"type({obj}) != map ? null\n  : {chain}"
            spec = f"type({raw}) == map ? {raw} : null"
        else:
            spec = f"{self.shared('judged')} && type({raw}) == map ? {raw} : null"
        return [
            self._variable("podSpecValue", chain, "where each workload kind keeps its pod spec (an API group that differs is no workload)"),
            self._variable("podSpec", spec, "the pod spec, or null: then nothing is checked"),
        ]

    def _list_variable(self, name: str, fields: tuple[str, ...], comment: str) -> Variable:
        """The items of the pod spec's lists `fields` that are maps; a field that is no list holds none."""
        spec = self.var("podSpec")
        parts = " +\n  ".join(f"(type({spec}.?{field}.orValue([])) == list ? {spec}.?{field}.orValue([]) : [])"
                                for field in fields)
        return self._variable(name, f"{spec} == null ? [] : (\n  {parts}\n).filter(x, type(x) == map)", comment)

    # --- references: a value expression that is null when unset ---------------------------

    def _value(self, ref: ir.Ref, x: str, check: ir.Check) -> str:
        for part in (part for _, path in ref.reads() for part in path):
            if not _IDENTIFIER.fullmatch(part) or part in _RESERVED:
                raise self.unsupported(ref, check, f"field name {part!r} is not a plain CEL identifier "
                                                   "(Kubernetes would need it escaped)")
        return self.lower(ref, check, x)

    def lower_FieldRef(self, ref: ir.FieldRef, check: ir.Check, x: str) -> str:
        return _guarded(x, ref.path)

    def lower_NormalPath(self, ref: ir.NormalPath, check: ir.Check, x: str) -> str:
        v = _guarded(x, ref.path)
        segments = f"{v}.split('/')"
        normal = f"({v}.startsWith('/') ? '/' : '') + {segments}.filter(s, s != '' && s != '.').join('/')"
        return f"(type({v}) != string ? {v} : {segments}.exists(s, s == '..') ? dyn(false) : dyn({normal}))"

    def lower_EffectiveRef(self, ref: ir.EffectiveRef, check: ir.Check, x: str) -> str:
        container = _guarded(x, ref.container_path)
        return f"({container} != null ? {container} : {_guarded(self.var('podSpec'), ref.pod_path)})"

    def _values(self, values: ir.Values, check: ir.Check, name: str) -> str:
        """A list literal, or a list param widened by the exemptions that select this subject."""
        if not isinstance(values, ir.Param):
            return literal(list(values))
        if self.sources.params is None:
            base = literal(list(self.rule.rule.param(values.name)))
        else:
            base = f"{self.sources.params}[{literal(values.name)}]"
        constants = () if self.sources.exemptions or self.sources.allowed_values else self.rule.widenings  # else `_member` reads them
        widened = [f"({self.selects(e, name)} ? {literal(list(dict(e.allow)[values.name]))} : [])"
                   for e in constants if values.name in dict(e.allow)]
        return " + ".join([base, *widened])

    # --- predicates: a CEL condition under which subject `x` complies ----------------------

    def _complies(self, check: ir.Check, x: str, name: str) -> str:
        return self.lower(check.predicate, check, x, name)

    def _typed(self, v: str, value: ir.Scalar) -> str:
        return _TYPE_TESTS[type(value)].format(v=v)

    def lower_Equals(self, node: ir.Equals, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"{self._typed(v, node.value)} && {v} == {literal(node.value)}"

    def lower_NotEquals(self, node: ir.NotEquals, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"{v} == null || {self._typed(v, node.value)} && {v} != {literal(node.value)}"

    def _member(self, v: str, values: ir.Values, check: ir.Check, name: str) -> str:
        """`v` is among the values; with exemption data or allowed values, also among what a selecting widening allows."""
        if isinstance(values, ir.Param) and self.sources.allowed_values is not None:
            allowed = self.sources.allowed_values
            return (f"({v} in {self._values(values, check, name)} || type({v}) == string && (('*:' + {v}) in {allowed}"
                    f" || type({name}) == string && ({name} + ':' + {v}) in {allowed}))")
        if self.sources.exemptions is None or not isinstance(values, ir.Param):
            return f"{v} in {self._values(values, check, name)}"
        widened = (f"{self.shared('selectedWidenings')}.exists(e, {_any_or_member('e', 'containers', name)}"
                   f" && has(e.allow) && {v} in e.allow[?{literal(values.name)}].orValue([]))")
        return f"({v} in {self._values(values, check, name)} || {widened})"

    def lower_OneOf(self, node: ir.OneOf, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"type({v}) == string && {self._member(v, node.values, check, name)}"

    def lower_NoneOf(self, node: ir.NoneOf, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"{v} == null || type({v}) == string && !({self._member(v, node.values, check, name)})"

    def lower_ListContains(self, node: ir.ListContains, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"type({v}) == list && {literal(node.value)} in {v}"

    def lower_ListSubsetOf(self, node: ir.ListSubsetOf, check: ir.Check, x: str, name: str) -> str:
        v = self._value(node.ref, x, check)
        return f"{v} == null || type({v}) == list && {v}.all(item, {self._member('item', node.allowed, check, name)})"

    def lower_Present(self, node: ir.Present, check: ir.Check, x: str, name: str) -> str:
        return f"{self._value(node.ref, x, check)} != null"

    # --- subjects: which fail a check, and the validation ----------------------------------

    def _subjects(self, check: ir.Check) -> list[Variable]:
        """This side's variables for `check`: the list of its subjects, and the names of those failing it."""
        return self.lower(check.subject, check)

    def _failing(self, check: ir.Check, items: str, noun: str, selected_name: str) -> Variable:
        """The names of the failing items (one pass over the list).

        `selected_name` is what exemptions scoped to containers compare with: the container's
        name for containers, '' for anything else (as the Rego reference does).
        """
        expression = (f"{items}.filter(x, !(\n  {self._complies_or_waived(check, 'x', selected_name)}\n))"
                      ".map(x, x.?name.orValue(''))")
        return self._variable(self._failing_name(check), expression, f"the {noun}s failing: {self._comment(check)}")

    def _validation(self, check: ir.Check) -> Validation:
        """Every subject failing `check` failed it in the old object too (none does on a CREATE)."""
        failing, before = self.var(self._failing_name(check)), replace(self, old=True).var(self._failing_name(check))
        noun = {ir.EachContainer: "container", ir.EachVolume: "volume"}.get(type(check.subject))
        new = f"{failing}.filter(n, !(n in {before}))"
        return Validation(
            expression=f"{failing}.all(n, n in {before})",
            message=self._message(check),
            message_expression=None if noun is None else
            f"{literal(f'{self.rule.id}: {noun} ')} + {new}.join(', ') + {literal(': ' + self._text(check))}",
            comment=self._comment(check),
        )

    def _failing_name(self, check: ir.Check) -> str:
        """`failing_<field>`, unique within the rule (checks of one field are numbered)."""
        ref = check.predicate.ref
        path = ref.container_path if isinstance(ref, ir.EffectiveRef) else ref.path
        name = "failing_" + "_".join(path)
        same = [c for c in self.rule.rule.checks if c.predicate.ref == ref]
        return name if len(same) == 1 else f"{name}_{same.index(check)}"

    def _complies_or_waived(self, check: ir.Check, x: str, name: str) -> str:
        complies = self._complies(check, x, name)
        waived = [self.selects(e, name) for e in self.inline_waivers]
        if self.sources.exemptions is not None:
            waived.append(f"{self.shared('selectedWaivers')}.exists(e, {_any_or_member('e', 'containers', name)})")
        return "\n  || ".join([f"({complies})" if waived else complies, *waived])

    def lower_EachContainer(self, node: ir.EachContainer, check: ir.Check) -> list[Variable]:
        name = "containers" if node.lists == ir.CONTAINER_LISTS else "And".join(
            [node.lists[0], *(part[:1].upper() + part[1:] for part in node.lists[1:])])
        variable = self._list_variable(name, node.lists, "the containers of " + ", ".join(node.lists))
        return [variable, self._failing(check, self.var(name), "container", "x.?name.orValue('')")]

    def lower_EachVolume(self, node: ir.EachVolume, check: ir.Check) -> list[Variable]:
        variable = self._list_variable("volumes", ("volumes",), "the volumes of the pod spec")
        return [variable, self._failing(check, self.var("volumes"), "volume", literal(""))]

    def lower_PodSpec(self, node: ir.PodSpec, check: ir.Check) -> list[Variable]:
        spec = self.var("podSpec")
        expression = f"{spec} != null && !(\n  {self._complies_or_waived(check, spec, literal(''))}\n) ? [''] : []"
        return [self._variable(self._failing_name(check), expression, f"[''] when the pod spec fails: {self._comment(check)}")]

    def _comment(self, check: ir.Check) -> str:
        return f"{describe.subject(check.subject)}: {describe.predicate(check.predicate)} ({check.loc})"

    def _text(self, check: ir.Check) -> str:
        return f"{describe.predicate(check.predicate)}. Fix: {self.rule.rule.fix}"

    def _message(self, check: ir.Check) -> str:
        return f"{self.rule.id}: {self._text(check)}"

    # --- exemptions ------------------------------------------------------------------------

    def _inline_exemptions(self) -> list[ir.Exemption]:
        if self.sources.exemptions is not None:
            return []
        return [*self.inline_waivers, *(() if self.sources.allowed_values else self.rule.widenings)]

    def _exemption_data_variables(self) -> list[Variable]:
        """With exemption data: the waivers and widenings whose object-level criteria select this object.

        As the Rego helpers (`lib.kupe.selects`): every criterion must be present, and holds when
        empty or met; a label criterion holds when the object's own label has the wanted value.
        """
        if self.sources.exemptions is None:
            return []
        obj, data = self.sources.object, self.sources.exemptions
        labels = _guarded(obj, ("metadata", "labels"))
        selects = " &&\n  ".join([
            _any_or_member("e", "namespaces", self.sources.namespace),
            _any_or_member("e", "names", _guarded(obj, ("metadata", "name"))),
            f"has(e.labels) && e.labels.all(k, type({labels}) == map && {labels}[?k] == optional.of(e.labels[k]))",
        ])
        return [Variable(f"selected{kind.title()}", f"{data}.{kind}.filter(e,\n  {selects}\n)",
                         f"the {kind} of the exemption data whose namespace, name and label criteria select this object")
                for kind in ("waivers", "widenings")]

    def selects_object(self, exemption: ir.Exemption) -> str:
        """The exemption's namespace, name and label criteria, on the object (true when none)."""
        obj = self.sources.object
        terms = []
        if exemption.namespaces:
            terms.append(f"{self.sources.namespace} in {literal(list(exemption.namespaces))}")
        if exemption.names:
            terms.append(f"{_guarded(obj, ('metadata', 'name'))} in {literal(list(exemption.names))}")
        labels = _guarded(obj, ("metadata", "labels"))
        terms += [f"type({labels}) == map && {labels}[?{literal(key)}] == optional.of({literal(value)})"
                  for key, value in exemption.labels]
        return " && ".join(terms) or "true"

    def selects(self, exemption: ir.Exemption, name: str) -> str:
        """The exemption selects the object and, when it names containers, the container `name`."""
        selected = self.shared(f"selected_{identifier(exemption.id)}")
        if not exemption.containers:
            return selected
        return f"({selected} && {name} in {literal(list(exemption.containers))})"


def _path(path: ir.FieldPath) -> str:
    return "".join(f".?{part}" for part in path)


def _guarded(x: str, path: ir.FieldPath) -> str:
    """The value at `path`, or null when it is missing, null, or a step on the way is no map.

    `?.` alone is not enough: selecting a field of a string is an evaluation error, while
    Rego's object.get and Kyverno's JMESPath read such a value as unset.
    """
    value = f"{x}{_path(path)}.orValue(null)"
    guards = [f"type({x}{_path(path[:depth])}.orValue(null)) == map" for depth in range(1, len(path))]
    return f"({' && '.join(guards)} ? {value} : null)" if guards else value


def _any_or_member(exemption: str, field: str, value: str) -> str:
    """The criterion `field` of exemption data is present, and empty (any) or holds `value`."""
    return f"has({exemption}.{field}) && (size({exemption}.{field}) == 0 || {value} in {exemption}.{field})"


@cache
def environment(variables: tuple[str, ...]) -> cel.Env:
    """A CEL environment declaring `variables` as dyn, with the extensions the API server offers us."""
    return cel.NewEnv(variables={name: cel.Type.DYN for name in variables},
                      extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()])


@cache
def compile_error(variables: tuple[str, ...], expression: str) -> str | None:
    """Why `expression` does not compile in the CEL C++ runtime, or None.

    Expressions that differ only in their string literals (2,526 expressions of the generated
    benchmark set have 169 shapes) compile alike: compiling parses and type-checks, and a
    string literal is one STRING token of type string whatever it holds (regexes, formats and
    timestamps inside literals are checked when a program runs, not here; tests pin this). So
    an expression compiles when its shape does (every literal emptied) and each distinct
    literal compiles on its own. Otherwise, or when the shape cannot be found safely, the
    expression itself is compiled, which also gives the exact error."""
    shape = literal_shape(expression)
    if shape is not None and _compiles(variables, shape[0]) and all(_compiles((), text) for text in shape[1]):
        return None
    try:
        environment(variables).compile(expression)
    except RuntimeError as error:
        return " ".join(str(error).split())
    return None


@cache
def _compiles(variables: tuple[str, ...], expression: str) -> bool:
    try:
        environment(variables).compile(expression)
    except RuntimeError:
        return False
    return True


# A quoted string literal with escapes, or a token that makes finding literals by pattern unsafe:
# a comment, or a quote left unclosed.
_LITERAL_SCAN = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|//|["']""")
# The runtime refuses expressions over 100,000 code points; an emptied shape may fall under it.
_SHAPE_MAX = 50_000


def literal_shape(expression: str) -> tuple[str, frozenset[str]] | None:
    """`expression` with every string literal emptied, and the literals; None when a literal could
    be misread by this scan (raw, bytes or triple-quoted strings, comments)."""
    if len(expression) > _SHAPE_MAX:
        return None
    pieces, literals, last = [], set(), 0
    for match in _LITERAL_SCAN.finditer(expression):
        token, start, end = match.group(), match.start(), match.end()
        if len(token) < 2 or token[0] not in "\"'":
            return None
        if _touches(expression[start - 1:start]) or _touches(expression[end:end + 1]):
            return None  # a prefix (r"", b"") or a quote beside the literal (""" ... """)
        pieces.append(expression[last:start] + '""')
        literals.add(token)
        last = end
    return "".join(pieces) + expression[last:], frozenset(literals)


def _touches(beside: str) -> bool:
    """Whether the character beside a literal would join it into another token."""
    return beside != "" and (beside.isalnum() or beside in "_\"'")
