"""``include:``: unchanged Kubernetes manifests (NetworkPolicy, Namespace) beside a topology.

    include:
      - policies/*.yaml        # globs, relative to the topology file's folder

Each matching file may hold several YAML documents (``---``), and a document
may be a list of objects, as ``kubectl apply -f`` takes them: ``apiVersion: v1,
kind: List, items: [...]`` (what ``kubectl get -o yaml`` writes), or a typed
``NetworkPolicyList`` / ``NamespaceList``, whose items may leave out the kind
and apiVersion the list implies; lists nest (kubectl flattens them). Every
object is validated on its own, so a problem is reported as
``policies/deny.yaml:7: spec.ingress[0].from[0]: ...`` (``items[2].spec...`` in
a list), with the included file's own line.

netlab runs as root and a topology may come from anyone, so a pattern never
leaves the topology's folder: absolute patterns and ``..`` are refused, every
match is resolved (symlinks too) and must still lie inside the folder, and a
file is read like the topology itself (regular file, bounded size, no FIFO).
A glob is walked with a bound (include_glob.py): a symlink loop its wildcards
reach, or a walk over a thousand folders, refuses the pattern.
Nothing of a refused file is shown.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, NamedTuple

from pydantic import ConfigDict, Field, StrictStr, ValidationError

from netlab.errors import Problem, TopologyError
from netlab.model import include_glob
from netlab.model.dnsrecords import existing_namespaces
from netlab.model.diagnostics import describe
from netlab.model.location import ROOT_FIELD, Loc, format_path, show, yaml_kind
from netlab.model.fields import LabelKey, LabelValue, Model, Name, PolicyName
from netlab.model.places import Note, Place
from netlab.model.policy_spec import NetworkPolicy, NetworkPolicySpec, PolicySpec
from netlab.model.topology import Namespace, Topology
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


class PolicyMeta(ObjectMeta):
    name: PolicyName  # type: ignore[assignment]  # a NetworkPolicy's name is a DNS subdomain, a Namespace's a label


class PolicyManifest(Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    api_version: Literal["networking.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["NetworkPolicy"]
    metadata: PolicyMeta
    spec: PolicySpec = Field(default_factory=NetworkPolicySpec)
    status: dict[StrictStr, Any] | None = None


class NamespaceManifest(Model):
    api_version: Literal["v1"] = Field(alias="apiVersion")
    kind: Literal["Namespace"]
    metadata: ObjectMeta
    spec: dict[StrictStr, Any] | None = None
    status: dict[StrictStr, Any] | None = None


KINDS = {"NetworkPolicy": PolicyManifest, "Namespace": NamespaceManifest}
API_VERSIONS = {"NetworkPolicy": "networking.k8s.io/v1", "Namespace": "v1"}
# A document holding other objects. kubectl takes any object with items: as a list (the unstructured decoder's rule)
# and flattens it, nested lists too; a typed list's items that give neither kind nor apiVersion are the list's kind
# without "List", in its apiVersion (decodeToList). These are the lists of what can be included.
LIST_KINDS = {"List": "v1", **{k + "List": v for k, v in API_VERSIONS.items()}}
MAX_DEPTH = 8  # lists in lists: kubectl has no limit, a hostile file must not make one of our stack


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


def _problems(exc: ValidationError, src: Source, offset: int, kind: str, at: Loc = ()) -> list[Problem]:
    """A manifest's errors, worded as an inline entry's are (diagnostics.describe), at the included file's lines."""
    out = []
    for err in exc.errors(include_url=False):
        loc = at + tuple(p for p in err["loc"] if p != "[key]")
        line = src.line_of(loc)
        if err["type"] == "extra_forbidden":
            msg = "is not a field here; check its spelling and indentation"
        elif err["type"] == "literal_error" and loc[len(at):] == ("kind",):
            msg = f"kind {err.get('input')!r} cannot be included; include NetworkPolicy or Namespace manifests"
        elif err["type"] == "literal_error" and loc[len(at):] == ("apiVersion",):
            msg = f"a {kind} is apiVersion {API_VERSIONS[kind]}, not {show(err.get('input'))}"
        else:
            msg = describe({**err, "loc": loc}, src)
        out.append(Problem(src.file, line + offset if line else None, format_path(loc) or ROOT_FIELD, msg))
    return out


_TOPOLOGY_SHAPE = "a topology is a mapping (name:, nodes:, pods: ...)"  # yamlsource.parse's words
_MANIFEST_SHAPE = "a manifest is a mapping (apiVersion:, kind:, metadata:, spec:)"


def _kind_problem(data: dict, kind: Any) -> str:
    """Why a document's ``kind`` cannot be included, in the words of the YAML that was written."""
    wanted = " or ".join(f"kind: {k}" for k in KINDS)
    if "kind" not in data:
        return f"missing; an included file needs {wanted}"
    if kind is None:
        return f"has no value (null); an included file needs {wanted}"
    if not isinstance(kind, str):
        return f"must be {' or '.join(KINDS)}, not {yaml_kind(kind)}"
    return f"kind {show(kind)} cannot be included; include {' or '.join(KINDS)} manifests"


class Origin(NamedTuple):
    """Where an object was written: its name's file, line and field, its namespace's line and field (None
    when the namespace was not written: ``default``), and the object's place (for the notes about it)."""

    file: str
    line: int | None
    field: str
    namespace: tuple[int | None, str] | None = None
    place: Place | None = None


Reader = Callable[[str, str], str]  # (path, name shown in messages) -> text; raises TopologyError


def read_manifests(path: str, shown: str, read: Reader) -> tuple[list[tuple[NetworkPolicy | Namespace, Origin]],
                                                                 list[Problem]]:
    """The NetworkPolicies and Namespaces of one manifest file; ``shown`` is its name in messages."""
    try:
        text = read(path, shown)
    except TopologyError as exc:  # messages name ``path``: say it as the user wrote it
        return [], [Problem(shown, p.line, p.field, p.message) for p in exc.problems]
    objects: Objects = []
    problems: list[Problem] = []
    docs = split_documents(text)
    if len(docs) > MAX_DOCUMENTS:
        return [], [Problem(shown, None, "", f"holds {len(docs)} documents, over the limit of {MAX_DOCUMENTS}")]
    for offset, body in docs:
        try:
            src = parse(body, shown, null_ok=True)
        except TopologyError as exc:  # the reader speaks of a topology; this document is a manifest
            problems += [Problem(p.file, p.line + offset if p.line else None, p.field,
                                 p.message.replace(_TOPOLOGY_SHAPE, _MANIFEST_SHAPE)) for p in exc.problems]
            continue
        problems += [Problem(p.file, p.line + offset if p.line else None, p.field, p.message) for p in src.problems]
        if src.data is None:  # null or ~: kubectl apply -f skips it, as an empty document
            continue
        _document(_Doc(src, shown, offset, objects, problems), src.data, ())
    return objects, problems


@dataclass
class _Doc:
    """One YAML document of a manifest file being read, and what it gave so far."""

    src: Source
    shown: str
    offset: int  # lines before the document in its file
    objects: "Objects"
    problems: list[Problem]

    def line(self, loc: Loc) -> int | None:
        line = self.src.line_of(loc)
        return line + self.offset if line else None

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.shown, self.line(loc) or 1 + self.offset, format_path(loc) or ROOT_FIELD,
                                     message))


def _document(doc: _Doc, data: dict, at: Loc, implied: tuple[str, str] | None = None, depth: int = 0) -> None:
    """One object of a document, at ``at`` (``()`` for the document itself, ``("items", 2)`` in a list): a
    NetworkPolicy or a Namespace, or a list of them. ``implied`` is (kind, apiVersion) of a typed list's items."""
    if "items" in data:
        _list(doc, data, at, depth)
        return
    if implied and "kind" not in data and "apiVersion" not in data:
        data = {**data, "kind": implied[0], "apiVersion": implied[1]}
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        doc.problem(at + ("kind",), _kind_problem(data, kind))
        return
    if implied and kind != implied[0] and "apiVersion" not in data:
        # kubectl implies a typed list's kind and apiVersion only for an item that gives neither: an item of
        # another kind is a mistake of the list, not a missing apiVersion
        doc.problem(at + ("kind",), f"kind {show(kind)} in a {implied[0]}List, whose items are {implied[0]}: "
                                    f"move it to a List (apiVersion: v1, kind: List) or a file of its own")
        return
    try:
        obj = model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        doc.problems.extend(_problems(exc, doc.src, doc.offset, kind, at))
        return
    ns_at = at + ("metadata", "namespace")
    written = isinstance(data.get("metadata"), dict) and "namespace" in data["metadata"]
    origin = Origin(doc.shown, doc.line(at + ("metadata", "name")), format_path(at + ("metadata", "name")),
                    (doc.line(ns_at), format_path(ns_at)) if written else None,
                    Place(doc.shown, at, doc.src.lines, doc.offset))
    if isinstance(obj, PolicyManifest):
        doc.objects.append((NetworkPolicy(name=obj.metadata.name, namespace=obj.metadata.namespace, spec=obj.spec),
                            origin))
    else:
        doc.objects.append((Namespace(name=obj.metadata.name, labels=obj.metadata.labels), origin))


def _list(doc: _Doc, data: dict, at: Loc, depth: int) -> None:
    """A List (or NetworkPolicyList, NamespaceList): each item is an object of its own, at its own place."""
    kind, version = data.get("kind"), data.get("apiVersion")
    lists = " or ".join(f"apiVersion: {v}, kind: {k}" for k, v in LIST_KINDS.items())
    if not isinstance(kind, str) or kind not in LIST_KINDS:
        why = (f"kind {show(kind)} cannot be included" if isinstance(kind, str) and kind
               else "missing" if "kind" not in data else f"{show(kind)} is no kind")
        doc.problem(at + ("kind",), f"{why}; a document with items: is a list: give it {lists}")
        return
    if version != LIST_KINDS[kind]:
        doc.problem(at + ("apiVersion",), f"{kind} is apiVersion {LIST_KINDS[kind]}, not {show(version)}")
        return
    extra = [k for k in data if k not in ("apiVersion", "kind", "metadata", "items")]
    for key in extra:
        doc.problem(at + (key,), "is not a field here; a list has apiVersion, kind, metadata and items")
    items = data["items"]
    if items is None:  # kubectl reads null as no items
        return
    if not isinstance(items, list):
        doc.problem(at + ("items",), f"must be a list of manifests, not {yaml_kind(items)}")
        return
    if depth >= MAX_DEPTH:
        doc.problem(at + ("items",), f"lists nest over {MAX_DEPTH} deep; flatten them")
        return
    implied = (kind.removesuffix("List"), version) if kind != "List" else None
    for i, item in enumerate(items):
        loc = at + ("items", i)
        if not isinstance(item, dict):
            doc.problem(loc, f"an item of a list is a manifest, {_MANIFEST_SHAPE.split(' is ', 1)[1]}, "
                             f"not {yaml_kind(item)}")
            continue
        _document(doc, item, loc, implied, depth + 1)


def _matches(folder: str, pattern: str) -> tuple[list[str], str | None]:
    """Files a pattern names inside ``folder``, or why the pattern is refused."""
    if not pattern or "\0" in pattern:
        return [], "is empty or holds a NUL character"
    if os.path.isabs(pattern) or pattern.startswith("~"):
        return [], "must be relative to the topology's folder, not absolute"
    if ".." in re.split(r"[\\/]", pattern):
        return [], "must stay inside the topology's folder ('..' is not allowed)"
    try:
        found = sorted(include_glob.walk(folder, pattern))
    except include_glob.GlobRefused as exc:
        return [], str(exc)
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
        elif not _MAGIC.search(pattern) and os.path.isdir(real):  # named as it is: said as -t says it
            return [], "is a directory; include names manifest files (a glob such as DIR/*.yaml takes a folder's)"
        elif not _MAGIC.search(pattern) and os.path.exists(real):
            return [], "is not a regular file (a FIFO, device or socket); include names manifest files"
    if out:
        return out, None
    if not _MAGIC.search(pattern):  # a file named as it is: a typo, or a file moved (kubectl: path does not exist)
        return [], "no such file; patterns are relative to the topology's folder"
    searched = glob_folder(pattern)
    if searched and not os.path.isdir(os.path.join(folder, searched)):  # a typo of its folder, not an emptied one
        return [], (f"matches no file: its folder {searched} does not exist; patterns are relative to the "
                    "topology's folder")
    return [], None  # a folder emptied of the files it matches: no object from it now (a note, _included)


_MAGIC = include_glob.MAGIC


def matches(folder: str, pattern: str) -> list[str]:
    """The files a pattern names inside ``folder`` now ([] when it names none or is refused: its load says why)."""
    return _matches(folder, pattern)[0]


def glob_folder(pattern: str) -> str:
    """The folder a pattern looks in, relative to the topology's: its path before the first part with a
    wildcard ('' for the topology's own folder): ``pol/*.yaml`` -> ``pol``, ``pol/deny.yaml`` -> ``pol``."""
    parts = re.split(r"/+", pattern)
    plain = []
    for part in parts[:-1]:
        if _MAGIC.search(part):
            break
        plain.append(part)
    return "/".join(plain)


def expand_includes(topo: Topology, src: Source, read: Reader) -> tuple[Topology, list[Problem]]:
    """The topology with every included Namespace and NetworkPolicy added (and ``include`` emptied),
    and the problems: of the patterns, of each document, and names given twice. ``read`` reads a
    file the way the topology itself was read (regular file, bounded size, UTF-8)."""
    objects: list[tuple[NetworkPolicy | Namespace, Origin]] = []
    for i, ns in enumerate(topo.namespaces):
        objects.append((ns, Origin(src.file, src.line_of(("namespaces", i, "name")), f"namespaces[{i}].name")))
    written = src.data.get("networkPolicies") if isinstance(src.data, dict) else None
    for i, pol in enumerate(topo.network_policies):
        ns_at = ("networkPolicies", i, "namespace")
        given = isinstance(written, list) and isinstance(written[i], dict) and "namespace" in written[i]
        name_at = ("networkPolicies", i, "name")
        objects.append((pol, Origin(src.file, src.line_of(name_at), format_path(name_at),
                                    (src.line_of(ns_at), format_path(ns_at)) if given else None,
                                    Place(src.file, ("networkPolicies", i), src.lines))))
    problems: list[Problem] = []
    if topo.include:
        if not os.path.isfile(src.file):
            # A dict (the Python API, the pytest plugin) has no folder: no pattern of it is read, absolute or not.
            problems.append(Problem(src.file, src.line_of(("include",)), "include",
                                    "needs a topology file: its patterns are relative to the file's folder, and "
                                    "this topology has none; write the manifests' policies under networkPolicies: "
                                    "(and namespaces:), or give a topology file beside the manifests"))
        else:
            more, probs = _included(topo, src, read)
            objects += more
            problems += probs
    problems += _duplicates(objects)
    src.places.update({("NetworkPolicy", o.namespace, o.name): origin.place for o, origin in objects
                       if isinstance(o, NetworkPolicy) and origin.place is not None})
    policies = [o for o, _ in objects if isinstance(o, NetworkPolicy)]
    namespaces = [o for o, _ in objects if isinstance(o, Namespace)]
    if topo.include:  # else they are the topology's own: the same (frozen) object, whose answers are kept
        topo = topo.model_copy(update={"network_policies": policies, "namespaces": namespaces, "include": []})
    return topo, problems + _unknown_namespaces(topo, objects)


def _unknown_namespaces(topo: Topology, objects: "Objects") -> list[Problem]:
    """A policy in a namespace the cluster does not have: the API server refuses to create it (``namespaces "x"
    not found``), so netlab does too, at the namespace's field. A cluster has its own namespaces, those
    ``namespaces:`` declares (or an included Namespace), and those of its pods and Services."""
    known = existing_namespaces(topo)
    out = []
    for obj, origin in objects:
        if not isinstance(obj, NetworkPolicy) or obj.namespace in known:
            continue
        line, field = origin.namespace or (origin.line, origin.field)
        close = difflib.get_close_matches(obj.namespace, sorted(known), n=1)
        fix = "declare the namespace under namespaces: (or include its Namespace manifest)"
        out.append(Problem(origin.file, line, field,
                           f"NetworkPolicy {obj.namespace}/{obj.name}: namespace {obj.namespace!r} does not exist "
                           f"(no pod or Service is in it and namespaces: does not list it), so the API server "
                           f"refuses the policy (namespaces \"{obj.namespace}\" not found); "
                           + (f"did you mean {close[0]!r}? Else {fix}" if close else fix)))
    return out


def _duplicates(objects: list[tuple[NetworkPolicy | Namespace, Origin]]) -> list[Problem]:
    seen: dict[tuple[str, ...], Origin] = {}
    out = []
    for obj, origin in objects:
        key = ("policy", obj.namespace, obj.name) if isinstance(obj, NetworkPolicy) else ("namespace", obj.name)
        if key in seen:
            file, line = seen[key].file, seen[key].line
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
        elif not matched:  # kubectl apply's way: what is no longer in the files is no longer in the cluster
            src.notes.append(Note(f"{pattern!r} matches no file now: no object comes from it (a NetworkPolicy or "
                                  f"Namespace its files held is removed by up)", src.file,
                                  src.line_of(("include", i)), f"include[{i}]"))
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
