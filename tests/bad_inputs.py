"""A corpus of bad inputs for `kupe-policy audit`: each with the one-line problem it must give, where.

Used by tests/test_bad_inputs.py (messages, locations, exit code, the rest of the run still
judged, bounded memory) and benchmarks/bench_bad_inputs.py (time and memory per input).
Written to a folder at run time, because some inputs are not files one can commit (a FIFO, a
symbolic link loop) and some are made large on purpose.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: shop
spec:
  securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
  - name: app
    image: registry.example.com/app:1.0
    securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL]}}{extra}}}
    resources: {{requests: {{cpu: 100m, memory: 64Mi}}, limits: {{cpu: 200m, memory: 128Mi}}}}
"""


def pod(name: str, extra: str = "") -> str:
    """A compliant Pod, or a violating one with `extra` securityContext fields (`, privileged: true`)."""
    return POD.format(name=name, extra=extra)


def bomb(levels: int, fanout: int, indent: str = "") -> str:
    """A "billion laughs" document: `fanout ** levels` nodes in a few hundred bytes."""
    lines = [f"{indent}l0: &l0 [{', '.join(['x'] * fanout)}]"]
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BadInput:
    name: str  # the file (or link, or FIFO) name in the corpus folder
    content: str | bytes | None  # None: made by `make` (see `special`)
    message: str  # part of the problem reported for it
    line: int | None = 1  # where: file:line, or the bare file (None)


CORPUS: tuple[BadInput, ...] = (
    BadInput("metadata-string.yaml", "apiVersion: v1\nkind: Pod\nmetadata: web\nspec: {containers: [{name: a, image: i}]}\n",
             'the API server would refuse this Pod: metadata: expected an object, got string "web"'),
    BadInput("metadata-list.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [web]\nspec: {containers: [{name: a, image: i}]}\n",
             "metadata: expected an object, got array"),
    BadInput("labels-list.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: [a, b]}\nspec: {containers: [{name: a, image: i}]}\n",
             "metadata.labels: expected an object, got array"),
    BadInput("labels-string.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: app=web}\nspec: {containers: [{name: a, image: i}]}\n",
             'metadata.labels: expected an object, got string "app=web"'),
    BadInput("label-number.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {tier: 1}}\nspec: {containers: [{name: a, image: i}]}\n",
             "metadata.labels.tier: expected a string, got number 1"),
    BadInput("alias-bomb-in-annotations.yaml",
             "apiVersion: v1\nkind: Pod\nmetadata:\n  name: boom\n  annotations:\n" + bomb(8, 10, "    ")
             + "spec: {containers: [{name: a, image: i}]}\n",
             "expands to more than 1,000,000 nodes (YAML aliases)"),
    BadInput("alias-bomb-top-level.yaml", bomb(9, 9), "expands to more than 1,000,000 nodes (YAML aliases)"),
    BadInput("recursive-alias.yaml", "a: &a [*a]\n", "refers to itself (a recursive YAML alias)"),
    BadInput("deep-flow-nesting.yaml", "[" * 100_000 + "]" * 100_000 + "\n", "nesting deeper than 200 levels"),
    BadInput("deep-block-nesting.yaml", "".join("  " * i + "k:\n" for i in range(400)), "nesting deeper than 200 levels", 201),
    BadInput("truncated.yaml", pod("kept", ", privileged: true") + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: cut\n  spec: [\n",
             "invalid YAML: ", 19),
    BadInput("bad-middle-document.yaml", pod("first", ", privileged: true") + "---\nkey: [unclosed\n---\n" + pod("third", ", privileged: true"),
             "invalid YAML: ", 15),
    BadInput("unserved-api-version.yaml", "apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: agent}\n"
             "spec: {template: {spec: {hostNetwork: true, containers: [{name: a, image: i, securityContext: {privileged: true}}],"
             " volumes: [{name: s, hostPath: {path: /var/run/docker.sock}}]}}}\n",
             "apiVersion: extensions/v1beta1 DaemonSet is not served by Kubernetes 1.30"),
    BadInput("unserved-cronjob.yaml", "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec: {schedule: '* * * * *'}\n",
             "batch/v1beta1 CronJob is not served"),
    BadInput("bare-equals.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: eq}\nspec: =\n",
             "could not determine a constructor for the tag 'tag:yaml.org,2002:value'", 4),
    BadInput("python-tag.yaml", "a: !!python/object/apply:os.system [ls]\n", "could not determine a constructor"),
    BadInput("nan.yaml", pod("nan", ", runAsUser: .nan"), "runAsUser: nan is not a JSON number"),
    BadInput("infinity.yaml", pod("inf", ", runAsUser: .inf"), "runAsUser: inf is not a JSON number"),
    BadInput("minus-infinity.yaml", pod("ninf", ", runAsUser: -.inf"), "runAsUser: -inf is not a JSON number"),
    BadInput("fraction.yaml", pod("frac", ", runAsUser: 1.5"), "runAsUser: expected an integer, got number 1.5"),
    BadInput("huge-uid.yaml", pod("huge", f", runAsUser: {2 ** 70}"), "is out of range for int64"),
    BadInput("string-uid.yaml", pod("s", ', runAsUser: "1000"'), 'runAsUser: expected an integer, got string "1000"'),
    BadInput("string-boolean.yaml", pod("sb", ', privileged: "true"'), 'privileged: expected a boolean, got string "true"'),
    BadInput("containers-map.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec: {containers: {app: {image: i}}}\n",
             "spec.containers: expected an array"),
    BadInput("spec-string.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec: nothing\n", 'spec: expected an object, got string'),
    BadInput("bad-quantity.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: [{name: a, image: i, resources: "
             "{limits: {cpu: lots}}}]}\n", 'quantity "lots" does not parse'),
    BadInput("host-path-number.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: h}\nspec: {containers: [{name: a, image: i}], "
             "volumes: [{name: v, hostPath: {path: 42}}]}\n", "spec.volumes[0].hostPath.path: expected a string, got number 42"),
    BadInput("invalid-date.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: t, creationTimestamp: 2023-13-45}\n"
             "spec: {containers: [{name: a, image: i}]}\n", "invalid YAML value: month must be in 1..12"),
    BadInput("not-utf8.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff\xfe}\n", "cannot read: 'utf-8' codec can't decode", None),
    BadInput("bad-json.json", '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"},\n "spec": }\n', "invalid JSON: Expecting value", 2),
    BadInput("nan.json", '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "x": NaN}\n', "invalid JSON: NaN is not JSON"),
    BadInput("top-level-list.yaml", "- apiVersion: v1\n  kind: Pod\n", "not a Kubernetes object (expected a mapping with apiVersion and kind)"),
    BadInput("scalar-document.yaml", "just a string\n", "not a Kubernetes object (expected a mapping with apiVersion and kind)"),
    BadInput("no-kind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", "not a Kubernetes object: apiVersion and kind must be strings"),
    BadInput("numeric-api-version.yaml", "apiVersion: 1\nkind: Pod\n", "apiVersion and kind must be strings"),
    BadInput("list-items-not-a-list.yaml", "apiVersion: v1\nkind: List\nitems: {a: b}\n", "List: items must be a list"),
    BadInput("review-without-request.yaml", "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n", "AdmissionReview: no request"),
    BadInput("review-bogus-operation.yaml", "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {operation: PATCH, object: "
             "{apiVersion: v1, kind: Pod, metadata: {name: p}}}\n", "request.operation 'PATCH'"),
    BadInput("review-object-string.yaml", "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {operation: CREATE, object: pod}\n",
             "request.object and request.oldObject must be objects"),
    BadInput("fifo.yaml", None, "not a regular file (a FIFO, socket or device)", None),
    BadInput("loop.yaml", None, "symbolic link loop", None),
    BadInput("broken-link.yaml", None, "broken symbolic link", None),
    BadInput("nested/dir/deep.yaml", pod("deep", ', runAsUser: "0"'), 'runAsUser: expected an integer, got string "0"'),
)

# Named on the command line besides the corpus folder: a path that does not exist.
MISSING = "no-such-file.yaml"
# A good file in the corpus folder whose violations must still be reported.
GOOD = ("good.yaml", pod("privileged", ", privileged: true"))


# Runs `kupe-policy ARGS...` and then prints the process's own peak memory (VmHWM, kB) on stderr.
# Not ru_maxrss: after fork it starts from the parent's resident size, whatever the child uses.
_PEAK = """
import sys
from compiler.cli import main
try:
    main(sys.argv[1:])
finally:
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("peak-kib", peak.split()[1], file=sys.stderr)
"""


def measured(args: list[str]) -> list[str]:
    """The command that runs `kupe-policy *args` and reports its own peak memory (see `peak_kib`)."""
    return [sys.executable, "-c", _PEAK, *args]


def peak_kib(stderr: str) -> int:
    return int(next(line for line in stderr.splitlines() if line.startswith("peak-kib ")).split()[1])


def make(folder: Path) -> list[BadInput]:
    """Write the corpus (and the good file) under `folder`; return the inputs written."""
    for item in CORPUS:
        path = folder / item.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(item.content, bytes):
            path.write_bytes(item.content)
        elif isinstance(item.content, str):
            path.write_text(item.content, encoding="utf-8")
        elif item.name == "fifo.yaml":
            os.mkfifo(path)
        elif item.name == "loop.yaml":
            path.symlink_to(path.name)
        elif item.name == "broken-link.yaml":
            path.symlink_to("nowhere.yaml")
    (folder / GOOD[0]).write_text(GOOD[1], encoding="utf-8")
    (folder / "empty.yaml").write_text("# nothing but a comment\n", encoding="utf-8")
    return list(CORPUS)
