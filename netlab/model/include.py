"""``include:``: unchanged Kubernetes manifests (NetworkPolicy, Namespace) beside a topology.

    include:
      - policies/*.yaml        # globs, relative to the topology file's folder

Each matching file may hold several YAML documents (``---``). Every document
is validated on its own, so a problem is reported as ``policies/deny.yaml:7:
spec.ingress[0].from[0]: ...``, with the included file's own line.

netlab runs as root and a topology may come from anyone, so a pattern never
leaves the topology's folder: absolute patterns and ``..`` are refused, every
match is resolved (symlinks too) and must still lie inside the folder, and a
file is read like the topology itself (regular file, bounded size, no FIFO).
Nothing of a refused file is shown.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Callable, Literal

from pydantic import ConfigDict, Field, StrictStr, ValidationError

from netlab.errors import Problem, TopologyError
from netlab.model.location import ROOT_FIELD, format_path, show, yaml_kind
from netlab.model.topology import (LabelKey, LabelValue, Model, Name, Namespace, NetworkPolicy, NetworkPolicySpec,
                                   Topology)
from netlab.model.yamlsource import Source, parse

MAX_FILES = 256
MAX_DOCUMENTS = 1024
# A document separator: "---" alone on its line (optionally followed by a comment).
_SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")
_BLANK = re.compile(r"^\s*(#.*)?$")


class ObjectMeta(Model):
    """metadata: what netlab uses, and the server-set fields a ``kubectl get -o yaml`` copy carries."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    name: Name
    namespace: Name = "default"
    labels: dict[LabelKey, LabelValue] = {}


class PolicyManifest(Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    api_version: Literal["networking.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["NetworkPolicy"]
    metadata: ObjectMeta
    spec: NetworkPolicySpec
    status: dict[StrictStr, Any] | None = None


class NamespaceManifest(Model):
    api_version: Literal["v1"] = Field(alias="apiVersion")
    kind: Literal["Namespace"]
    metadata: ObjectMeta
    spec: dict[StrictStr, Any] | None = None
    status: dict[StrictStr, Any] | None = None


KINDS = {"NetworkPolicy": PolicyManifest, "Namespace": NamespaceManifest}


def split_documents(text: str) -> list[tuple[int, str]]:
    """(first line number - 1, text) of each non-empty YAML document of a multi-document file."""
    docs: list[tuple[int, str]] = []
    start, chunk = 0, []
    for n, line in enumerate(text.split("\n")):
        if _SEPARATOR.match(line) or line.rstrip() == "...":
            docs.append((start, "\n".join(chunk)))
            start, chunk = n + 1, []
            if line.rstrip() == "...":
                continue
        else:
            chunk.append(line)
    docs.append((start, "\n".join(chunk)))
    return [(offset, body) for offset, body in docs if not all(_BLANK.match(x) for x in body.split("\n"))]


def _problems(exc: ValidationError, src: Source, offset: int) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p != "[key]")
        line = src.line_of(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a field here; check its spelling and indentation"
        elif err["type"] == "literal_error" and loc and loc[-1] == "kind":
            msg = f"kind {err.get('input')!r} cannot be included; include NetworkPolicy or Namespace manifests"
        out.append(Problem(src.file, line + offset if line else None, format_path(loc) or ROOT_FIELD, msg))
    return out


_TOPOLOGY_SHAPE = "a topology is a mapping (name:, nodes:, pods: ...)"  # yamlsource.parse's words
_MANIFEST_SHAPE = "a manifest is a mapping (apiVersion:, kind:, metadata:, spec:)"


def _kind_problem(src: Source, kind: Any) -> str:
    """Why a document's ``kind`` cannot be included, in the words of the YAML that was written."""
    wanted = " or ".join(f"kind: {k}" for k in KINDS)
    if "kind" not in src.data:
        return f"missing; an included file needs {wanted}"
    if kind is None:
        return f"has no value (null); an included file needs {wanted}"
    if not isinstance(kind, str):
        return f"must be {' or '.join(KINDS)}, not {yaml_kind(kind)}"
    return f"kind {show(kind)} cannot be included; include {' or '.join(KINDS)} manifests"


Origin = tuple[str, "int | None", str]  # file, line, field: where an object was written


Reader = Callable[[str, str], str]  # (path, name shown in messages) -> text; raises TopologyError


def read_manifests(path: str, shown: str, read: Reader) -> tuple[list[tuple[NetworkPolicy | Namespace, Origin]],
                                                                 list[Problem]]:
    """The NetworkPolicies and Namespaces of one manifest file; ``shown`` is its name in messages."""
    try:
        text = read(path, shown)
    except TopologyError as exc:  # messages name ``path``: say it as the user wrote it
        return [], [Problem(shown, p.line, p.field, p.message) for p in exc.problems]
    objects: list[tuple[NetworkPolicy | Namespace, Origin]] = []
    problems: list[Problem] = []
    docs = split_documents(text)
    if len(docs) > MAX_DOCUMENTS:
        return [], [Problem(shown, None, "", f"holds {len(docs)} documents, over the limit of {MAX_DOCUMENTS}")]
    for offset, body in docs:
        try:
            src = parse(body, shown)
        except TopologyError as exc:  # the reader speaks of a topology; this document is a manifest
            problems += [Problem(p.file, p.line + offset if p.line else None, p.field,
                                 p.message.replace(_TOPOLOGY_SHAPE, _MANIFEST_SHAPE)) for p in exc.problems]
            continue
        problems += [Problem(p.file, p.line + offset if p.line else None, p.field, p.message) for p in src.problems]
        kind = src.data.get("kind")
        model = KINDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            line = src.lines.get(("kind",), src.lines.get((), 1))
            problems.append(Problem(shown, (line or 1) + offset, "kind", _kind_problem(src, kind)))
            continue
        try:
            doc = model.model_validate(src.data, by_alias=True, by_name=False)
        except ValidationError as exc:
            problems += _problems(exc, src, offset)
            continue
        line = src.line_of(("metadata", "name"))
        origin = (shown, line + offset if line else None, "metadata.name")
        if isinstance(doc, PolicyManifest):
            objects.append((NetworkPolicy(name=doc.metadata.name, namespace=doc.metadata.namespace, spec=doc.spec),
                            origin))
        else:
            objects.append((Namespace(name=doc.metadata.name, labels=doc.metadata.labels), origin))
    return objects, problems


def _matches(folder: str, pattern: str) -> tuple[list[str], str | None]:
    """Files a pattern names inside ``folder``, or why the pattern is refused."""
    if not pattern or "\0" in pattern:
        return [], "is empty or holds a NUL character"
    if os.path.isabs(pattern) or pattern.startswith("~"):
        return [], "must be relative to the topology's folder, not absolute"
    if ".." in re.split(r"[\\/]", pattern):
        return [], "must stay inside the topology's folder ('..' is not allowed)"
    found = sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
    out = []
    for match in found:
        real = os.path.realpath(match)
        if os.path.commonpath([real, folder]) != folder:
            rel = os.path.relpath(match, folder)
            why = "leads outside the topology's folder (a symlink); refused"
            # the pattern names the file itself: said once; a glob: which of its files
            return [], why if os.path.normpath(pattern) == rel else f": {rel} {why}"
        if os.path.isfile(real):
            out.append(real)  # read by its resolved path: what was checked is what is opened
    if not out:
        return [], "matches no file; patterns are relative to the topology's folder"
    return out, None


def expand_includes(topo: Topology, src: Source, read: Reader) -> tuple[Topology, list[Problem]]:
    """The topology with every included Namespace and NetworkPolicy added (and ``include`` emptied),
    and the problems: of the patterns, of each document, and names given twice. ``read`` reads a
    file the way the topology itself was read (regular file, bounded size, UTF-8)."""
    objects: list[tuple[NetworkPolicy | Namespace, Origin]] = []
    for i, ns in enumerate(topo.namespaces):
        objects.append((ns, (src.file, src.line_of(("namespaces", i, "name")), f"namespaces[{i}].name")))
    for i, pol in enumerate(topo.network_policies):
        objects.append((pol, (src.file, src.line_of(("networkPolicies", i, "name")), f"networkPolicies[{i}].name")))
    problems: list[Problem] = []
    if topo.include:
        if not os.path.isfile(src.file):
            problems.append(Problem(src.file, src.line_of(("include",)), "include",
                                    "include: needs a topology file (patterns are relative to its folder)"))
        else:
            more, probs = _included(topo, src, read)
            objects += more
            problems += probs
    problems += _duplicates(objects)
    policies = [o for o, _ in objects if isinstance(o, NetworkPolicy)]
    namespaces = [o for o, _ in objects if isinstance(o, Namespace)]
    return topo.model_copy(update={"network_policies": policies, "namespaces": namespaces, "include": []}), problems


def _duplicates(objects: list[tuple[NetworkPolicy | Namespace, Origin]]) -> list[Problem]:
    seen: dict[tuple[str, ...], Origin] = {}
    out = []
    for obj, origin in objects:
        key = ("policy", obj.namespace, obj.name) if isinstance(obj, NetworkPolicy) else ("namespace", obj.name)
        if key in seen:
            file, line, _ = seen[key]
            what = f"NetworkPolicy {obj.namespace}/{obj.name}" if key[0] == "policy" else f"namespace {obj.name}"
            out.append(Problem(origin[0], origin[1], origin[2],
                               f"{what} is already defined at {file}:{line}; rename or remove one"))
        else:
            seen[key] = origin
    return out


Objects = list[tuple[NetworkPolicy | Namespace, Origin]]


def _included(topo: Topology, src: Source, read: Reader) -> tuple[Objects, list[Problem]]:
    folder = os.path.realpath(os.path.dirname(os.path.abspath(src.file)))
    problems: list[Problem] = []
    files: list[str] = []  # resolved paths, inside ``folder``
    for i, pattern in enumerate(topo.include):
        matched, why = _matches(folder, pattern)
        if why:
            sep = "" if why.startswith(":") else " "  # "'*.yaml': a.yaml leads outside ..."
            problems.append(Problem(src.file, src.line_of(("include", i)), f"include[{i}]", f"{pattern!r}{sep}{why}"))
        files += [m for m in matched if m not in files]
    if len(files) > MAX_FILES:
        return [], problems + [Problem(src.file, src.line_of(("include",)), "include",
                                       f"names {len(files)} files, over the limit of {MAX_FILES}")]
    base = os.path.dirname(src.file)
    objects: list[tuple[NetworkPolicy | Namespace, Origin]] = []
    for path in files:
        rel = os.path.relpath(path, folder)
        pols, probs = read_manifests(path, os.path.join(base, rel) if base else rel, read)
        objects += pols
        problems += probs
    return objects, problems
