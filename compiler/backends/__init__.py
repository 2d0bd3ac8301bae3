"""Backends: one module per engine, each lowering the resolved IR into that engine's files.

Every backend follows one interface (`Backend`): it renders each rule's files (`rule_files`),
then the files of the whole program (`program_files`: a kustomization, exceptions, ...), and
parses every file back (`parse_back`) before anything is written. `supports` answers whether a
rule is expressed exactly, has no meaning on the backend's platform, or is refused (and why),
without failing. The envelope problems every backend has are solved once here and in
`compiler.render`: the generated-file header, YAML, parse-back and the schema check.

Backends never import each other; lowering that two backends share lives in `compiler.lang`.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from .. import proven
from ..errors import ArtifactError, UnsupportedError
from ..ir import Program, ResolvedRule
from ..lang.docker import Platform
from ..lang.rego import compile_check
from ..render import parse_yaml, program_sources, render
from ..schemas import StrictSchema


@dataclass(frozen=True)
class Support:
    """How a backend expresses a rule: `exact`, `not applicable` on its platform, or `refused`, with why."""

    state: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.state}: {self.reason}" if self.reason else self.state


EXACT = Support("exact")


class Backend(ABC):
    """An engine target. Subclasses register themselves by `name`; their files go under `out/<name>/`."""

    name: ClassVar[str]
    title: ClassVar[str]
    registry: ClassVar[dict[str, type[Backend]]] = {}
    # Roughly how long a large program takes to compile, relative to the others (measured on the
    # generated benchmark set: a Rego bundle build is the costliest check), so that a parallel
    # compile starts the longest first.
    relative_cost: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a concrete backend, not a shared base such as ConftestBackend
            Backend.registry[cls.name] = cls

    def compile(self, program: Program) -> dict[str, str]:
        """Every artifact, parsed back and validated, keyed by path under out/; a refused rule raises.
        Artifacts byte-identical to ones that passed the same checks before are not checked again
        (`compiler.proven`)."""
        files: dict[str, str] = {}
        for rule in program.rules:
            if self.not_applicable(rule) is None:
                files.update(self.rule_files(rule, program))
        files.update(self.program_files(program, files))
        files = dict(sorted(files.items()))
        pass_key = proven.key(type(self), files)
        if not proven.known(pass_key):
            self.parse_back(files)
            proven.remember(pass_key)
        return files

    @abstractmethod
    def rule_files(self, rule: ResolvedRule, program: Program) -> dict[str, str]:
        """The files of one rule; UnsupportedError when the rule cannot be expressed exactly."""

    def program_files(self, program: Program, files: dict[str, str]) -> dict[str, str]:
        """The files that depend on the whole program (by default, a kustomization of `files`)."""
        return {f"{self.name}/kustomization.yaml": kustomization(program, self.name, files)}

    @abstractmethod
    def parse_back(self, files: dict[str, str]) -> None:
        """Raise ArtifactError unless every file reads back as the engine would read it."""

    def not_applicable(self, rule: ResolvedRule) -> str | None:
        """Why the rule has no meaning on this backend's platform, or None (the default: it has)."""
        return None

    def supports(self, rule: ResolvedRule, program: Program) -> Support:
        """Whether the rule is expressed exactly, has no meaning here, or is refused; never raises."""
        why = self.not_applicable(rule)
        if why is not None:
            return Support("not applicable", why)
        try:
            self.rule_files(rule, program)
        except UnsupportedError as error:
            return Support("refused", str(error))
        return EXACT


class ConftestBackend(Backend):
    """A Docker platform (Compose, Dockerfiles): its rules through `platform`'s mapping, as conftest Rego."""

    platform: ClassVar[Platform]

    def not_applicable(self, rule: ResolvedRule) -> str | None:
        return self.platform.not_applicable(rule)

    def rule_files(self, rule: ResolvedRule, program: Program) -> dict[str, str]:
        return self.platform.rule_files(rule)

    def program_files(self, program: Program, files: dict[str, str]) -> dict[str, str]:
        return self.platform.program_files(program)

    def parse_back(self, files: dict[str, str]) -> None:
        compile_check(files, ["main/deny", "main/warn"])


def all_backends() -> dict[str, type[Backend]]:
    """Every backend module of this package, imported (which registers it), in a stable order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(Backend.registry.items()))


# --- envelope helpers every backend shares ---------------------------------------------------


def kustomization(program: Program, folder: str, files: Iterable[str], notes: tuple[str, ...] = (),
                  first: tuple[str, ...] = ()) -> str:
    """`<folder>/kustomization.yaml` over the files below `folder` (a sub-folder with a kustomization of
    its own stands for its files), those named in `first` first (kustomize applies resources in
    order), the others sorted."""
    below = set(_resources(folder, files))
    resources = [name for name in first if name in below] + sorted(below - set(first))
    return render("kustomization.yaml.j2", sources=program_sources(program), notes=list(notes), resources=resources)


def _resources(folder: str, files: Iterable[str]) -> list[str]:
    prefix = folder + "/"
    paths = [path.removeprefix(prefix) for path in files if path.startswith(prefix)]
    nested = {path.split("/")[0] for path in paths if path.count("/") == 1 and path.endswith("/kustomization.yaml")}
    return sorted({path.split("/")[0] if path.split("/")[0] in nested else path for path in paths if path != "kustomization.yaml"})


def documents(path: str, text: str) -> list[dict[str, Any]]:
    """The YAML documents of one generated file, each a mapping; ArtifactError names the file otherwise."""
    try:
        found = parse_yaml(text)
    except yaml.YAMLError as error:
        raise ArtifactError(f"{path}: generated YAML does not parse: {error}") from None
    if not found or not all(isinstance(d, dict) for d in found):
        raise ArtifactError(f"{path}: generated YAML is not a list of mappings")
    return found


def check_kustomizations(files: dict[str, str]) -> None:
    """Each kustomization lists exactly the files and folders beside it."""
    for path in (p for p in files if p.endswith("/kustomization.yaml")):
        (document,) = documents(path, files[path])
        if sorted(document.get("resources") or []) != _resources(path.rsplit("/", 1)[0], files):
            raise ArtifactError(f"{path}: resources do not list exactly the files below it")


def check_schema(where: str, document: dict[str, Any], schema: StrictSchema) -> None:
    """Validate one generated object; ArtifactError names the file, the field and the reason."""
    error = schema.error(document)
    if error is not None:
        field, reason = error
        raise ArtifactError(f"{where}: {document.get('kind', 'document')} does not validate at {field}: {reason}")
