"""Load a topology: read the file, parse its YAML, validate the typed model.

    file (regular, at most MAX_BYTES, UTF-8)  -> bytes, text         this module
    YAML text -> plain data + the line of every value (Source)      yamlsource
    Source -> Topology (pydantic) -> cross-field checks             topology, checks
    every problem -> ``FILE:LINE: field: message``, all at once     diagnostics

A topology file is read without blocking on a FIFO or a device and without
reading more than ``MAX_BYTES``: netlab runs as root, and ``-t`` may name any
path.
"""

from __future__ import annotations

import os
from importlib import resources

from pydantic import ValidationError

from netlab.errors import Problem, TopologyError
from netlab.model.checks import check_topology
from netlab.model.cniconf import ConflistError, read_conflist
from netlab.model.diagnostics import problems_from_validation, topology_error
from netlab.model.files import Unreadable, read_regular
from netlab.model.include import expand_includes
from netlab.model.location import ROOT_FIELD, YAML_FIELD, format_path
from netlab.model.topology import CniConflist, Topology
from netlab.model.yamlsource import Source, parse

MAX_BYTES = 512 * 1024
DEFAULT_TOPOLOGY = "<built-in default topology>"


def _read_file(path: str) -> bytes:
    """Read a regular file of bounded size without blocking on FIFOs or devices."""
    try:
        return read_regular(path, MAX_BYTES)
    except Unreadable as exc:
        raise TopologyError([Problem(path, None, "", _unreadable(exc))]) from None


def _unreadable(exc: Unreadable) -> str:
    if exc.kind == "missing":
        return "no such file; check the path"
    if exc.kind == "directory":
        return "is a directory; give a topology file"
    if exc.kind == "special":
        return "is not a regular file (a FIFO, device or socket); give a topology file"
    if exc.kind == "too_big" and exc.size is not None:
        return f"is {exc.size} bytes, over the {MAX_BYTES}-byte limit for topologies; split or shrink it"
    if exc.kind == "too_big":
        return f"is over the {MAX_BYTES}-byte limit for topologies"
    return f"cannot {'open' if exc.opening else 'read'} it: {exc.strerror}"


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TopologyError([Problem(file, line, YAML_FIELD, "is not valid UTF-8; save the file as UTF-8")]) from None


def _read_source(path: str | None) -> Source:
    if path is None:
        text = resources.files("netlab").joinpath("data/default.yaml").read_text("utf-8")
        return parse(text, DEFAULT_TOPOLOGY)
    return parse(_decode(_read_file(path), path), path, hide_foreign=True)


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text into a :class:`Source`; every failure is a TopologyError."""
    src = parse(text, file)
    if src.problems:
        raise topology_error(src.problems)
    return src


def load_source(path: str | None) -> Source:
    """Read a topology file (or the built-in default) into a :class:`Source`."""
    src = _read_source(path)
    if src.problems:
        raise topology_error(src.problems)
    return src


def validate_source(src: Source) -> Topology:
    """The typed, cross-checked topology of a parsed source; raises TopologyError with every problem.

    Problems the reader noted (``src.problems``) are reported together with the
    model's, minus the model's complaints about the very values already flagged.
    """
    problems = list(src.problems)
    try:
        # YAML must use the documented names (podCIDR), not the Python ones (pod_cidr).
        topo = Topology.model_validate(src.data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise topology_error(problems + problems_from_validation(exc, src)) from None
    problems += [Problem(src.file, src.line_of(loc), format_path(loc) or ROOT_FIELD, msg)
                 for loc, msg in check_topology(topo)]
    topo, cni_problems = resolve_cni_paths(topo, src.file)
    problems += [Problem(src.file, src.line_of(loc), format_path(loc), msg) for loc, msg in cni_problems]
    # NetworkPolicies and Namespaces, with their own files' lines
    topo, included = expand_includes(topo, src, lambda path, shown: _decode(_read_file(path), shown))
    problems += included
    if problems:
        raise topology_error(problems)
    return topo


def resolve_cni_paths(topo: Topology, file: str) -> tuple[Topology, list[tuple[tuple, str]]]:
    """``network.cni.conflist`` and ``binDir`` made absolute from the topology's folder, and the conflist read.

    The saved state holds the absolute paths, so ``down`` and ``status`` work from anywhere.
    """
    cni = topo.network.cni
    if not isinstance(cni, CniConflist):
        return topo, []
    base = os.path.dirname(os.path.abspath(file)) if file and not file.startswith("<") else os.getcwd()
    conflist = os.path.normpath(os.path.join(base, cni.conflist))
    bin_dir = os.path.normpath(os.path.join(base, cni.bin_dir))
    problems: list[tuple[tuple, str]] = []
    try:
        read_conflist(conflist)
    except ConflistError as exc:
        problems.append((("network", "cni", "conflist"), str(exc)))
    if not os.path.isdir(bin_dir):
        problems.append((("network", "cni", "binDir"), f"{bin_dir}: no such directory"))
    network = topo.network.model_copy(update={"cni": cni.model_copy(update={"conflist": conflist, "bin_dir": bin_dir})})
    return topo.model_copy(update={"network": network}), problems


def load_topology(path: str | None = None) -> Topology:
    """Load and validate a topology; raise TopologyError listing every problem."""
    return validate_source(_read_source(path))
