"""Load a topology: read the file, parse its YAML, validate the typed model.

    file (regular, at most MAX_BYTES, UTF-8)  -> bytes, text         this module
    YAML text -> plain data + the line of every value (Source)      yamlsource
    Source -> Topology (pydantic) -> cross-field checks             topology, checks
    every problem -> ``FILE:LINE: field: message``, all at once     diagnostics
    (the cross-field checks once the model holds: until then the last line says they wait)

A topology file is read without blocking on a FIFO or a device and without
reading more than ``MAX_BYTES``: netlab runs as root, and ``-t`` may name any
path.
"""

from __future__ import annotations

import copy
import os
from ipaddress import IPv4Network
from typing import Any

from pydantic import ValidationError

from netlab.errors import ABSOLUTE_FIX, Problem, TopologyError, cwd_gone
from netlab.model.addressing import allocate
from netlab.model.checks import check_node_interfaces, check_topology
from netlab.model.command_trust import command_problems
from netlab.model import bandwidth, hostports
from netlab.model.cniconf import ConflistError, conflist_bridge, read_conflist
from netlab.model.diagnostics import problems_from_validation, topology_error
from netlab.model.runtime_ranges import declares_ip_ranges, overlapping_ranges
from netlab.model.ipv6_ipam import ipv6_addresses
from netlab.model.files import Unreadable, read_regular
from netlab.model.include import expand_includes
from netlab.model.location import ROOT_FIELD, YAML_FIELD, format_path
from netlab.model.places import TOPOLOGY, Place, service_places
from netlab.model.topology import CniConflist, Topology
from netlab.model.trust import read_refusal, refusal, untrusted
from netlab.model.yamlsource import Source, parse

MAX_BYTES = 512 * 1024
DEFAULT_TOPOLOGY = "<built-in default topology>"
# Said after the problems when the model refused the file: the cross-field checks need a topology that validates.
UNCHECKED = "fix these first: the cross-checks (names, nodes, addresses) run once they are fixed"


def _read_file(path: str) -> bytes:
    """Read a regular file of bounded size without blocking on FIFOs or devices; as root, only one that no one
    but root and the invoking user can change (model/trust.py: its commands run as root)."""
    def trusted(st: os.stat_result) -> None:
        why = untrusted(path, st)
        if why is not None:
            raise TopologyError([Problem(path, None, "", read_refusal(why))])

    try:
        return read_regular(path, MAX_BYTES, check=trusted)
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


def read_source(path: str | None) -> Source:
    """Read a topology file (or the built-in default) into a :class:`Source`, keeping the problems that did
    not stop reading (an octal number, a duplicate key) in ``src.problems``: :func:`validate_source` reports
    them together with every other problem of the file."""
    if path is None:
        from importlib import resources  # here: it loads tempfile and zipfile's readers, for the built-in lab only

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
    """Read a topology file (or the built-in default) into a :class:`Source`; any problem raises at once."""
    src = read_source(path)
    if src.problems:
        raise topology_error(src.problems)
    return src


def validate_source(src: Source) -> Topology:
    """The typed, cross-checked topology of a parsed source; raises TopologyError with every problem.

    Problems the reader noted (``src.problems``) are reported together with the
    model's, minus the model's complaints about the very values already flagged,
    and with the cross-checks'. The cross-checks need a typed topology: when the
    model refused a value (other than a number or boolean in a text field, read
    as the text), the problems end with a note that they run once these are fixed.
    """
    problems = list(src.problems)
    try:
        topo = _typed(src.data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, src)
        quoted = _as_text(exc, src)
        if quoted is None:  # the cross-checks would judge a topology other than the one written
            raise topology_error(problems, UNCHECKED) from None
        topo = quoted
    checked = check_topology(topo)
    problems += [Problem(src.file, src.line_of(loc), format_path(loc) or ROOT_FIELD, msg) for loc, msg in checked]
    topo, cni_problems = resolve_cni_paths(topo, src.file, allocated=not checked)
    problems += [Problem(src.file, src.line_of(loc), format_path(loc), msg) for loc, msg in cni_problems]
    # the programs up would run as root: held to the rule the topology and the CNI plugins are (model/trust.py)
    problems += [Problem(src.file, src.line_of(loc), format_path(loc), msg) for loc, msg in command_problems(topo)]
    # NetworkPolicies and Namespaces, with their own files' lines (and their places, for the notes about them)
    topo, included = expand_includes(topo, src, lambda path, shown: _decode(_read_file(path), shown))
    src.places.update(service_places(src.file, topo.services, src.lines))
    src.places[TOPOLOGY] = Place(src.file, (), src.lines)
    problems += included
    if problems:
        raise topology_error(problems)
    return topo


def _typed(data: Any) -> Topology:
    # YAML must use the documented names (podCIDR), not the Python ones (pod_cidr).
    return Topology.model_validate(data, by_alias=True, by_name=False)


def _as_text(exc: ValidationError, src: Source) -> Topology | None:
    """The topology with each number or boolean that a text field refused (``1.10``, ``on``) read as the text
    written, as its problem says to quote it, so that the cross-checks judge what was meant. None when the
    model refused anything else (a bad address, a missing field, a value the reader flagged)."""
    data = copy.deepcopy(src.data)
    for err in exc.errors(include_url=False):
        loc, value = tuple(err["loc"]), err.get("input")
        raw = src.raw.get(loc)
        if err["type"] != "string_type" or raw is None or not isinstance(value, (bool, int, float)) or not loc:
            return None
        parent = data
        for part in loc[:-1]:
            parent = parent[part]
        parent[loc[-1]] = raw
    try:
        return _typed(data)
    except ValidationError:
        return None


def pod_nodes_cidrs(topo: Topology) -> dict[str, IPv4Network]:
    """The podCIDR of each node that has a pod, as validate allocates them (of a topology check_topology passed),
    the cluster DNS pod netlab adds to a lab with Services counted (the first node with room: it may have no pod of
    the topology's)."""
    from netlab.model.clusterdns import add_cluster_dns

    added, _, problems = add_cluster_dns(topo)
    having = {p.node for p in (topo if problems else added).pods}
    return {n: c for n, c in allocate(topo)[0].node_pod_cidr.items() if n in having}


def resolve_cni_paths(topo: Topology, file: str, allocated: bool = False) -> tuple[Topology, list[tuple[tuple, str]]]:
    """``network.cni.conflist`` and ``binDir`` made absolute from the topology's folder, and the conflist read (once:
    its bridge plugin's bridge is the one a node's impairment may name, judged here; one it cannot be read for is
    not judged, the conflist's own problem says why). ``allocated``: the topology passed check_topology, so its
    nodes' podCIDRs are known (a host-local with the ipRanges capability and its own overlapping range is refused:
    model.runtime_ranges).

    The saved state holds the absolute paths, so ``down`` and ``status`` work from anywhere.
    """
    cni = topo.network.cni
    if not isinstance(cni, CniConflist):
        return topo, []
    problems: list[tuple[tuple, str]] = []
    named = bool(file) and not file.startswith("<")  # else a topology given as text: relative to the working folder
    for field, value in (("conflist", cni.conflist), ("binDir", cni.bin_dir)):
        why = cwd_gone(file if named else value)
        if why:  # relative to a working directory that was deleted (QA q50 6: os.getcwd's traceback)
            problems.append((("network", "cni", field), f"{why}: {ABSOLUTE_FIX}"))
    if problems:
        return topo, problems
    if named:
        base = os.path.dirname(os.path.abspath(file))
    else:
        base = "" if os.path.isabs(cni.conflist) and os.path.isabs(cni.bin_dir) else os.getcwd()
    conflist = os.path.normpath(os.path.join(base, cni.conflist))
    bin_dir = os.path.normpath(os.path.join(base, cni.bin_dir))
    # a dict (Lab.up, netlab.api.load) has no folder: its relative paths are the current directory's
    cwd_words = "" if named else f" (a dict's relative path is taken from the current directory, {base}; give an " \
        "absolute one)"
    try:
        net = read_conflist(conflist)
    except ConflistError as exc:
        missing = not os.path.isabs(cni.conflist) and not os.path.lexists(conflist)
        problems.append((("network", "cni", "conflist"), str(exc) + (cwd_words if missing else "")))
    else:
        problems += check_node_interfaces(topo, conflist_bridge(net))
        ranged = allocated and any(map(declares_ip_ranges, net.plugins))  # else nothing to judge: no allocation
        problems += [(("network", "cni", "conflist"), line) for line in
                     overlapping_ranges(net.plugins, pod_nodes_cidrs(topo) if ranged else {}, conflist)
                     + ipv6_addresses(net.plugins, conflist)]
        where = hostports.first_host_port(topo)
        if where is not None and not hostports.declares(net.plugins):
            problems.append((where, f"hostPort needs a CNI plugin with the portMappings capability, and no plugin "
                                    f"of {conflist} declares it; add portmap with \"capabilities\": "
                                    "{\"portMappings\": true}"))
        where = bandwidth.first_annotation(topo)
        if where is not None and not bandwidth.declares(net.plugins):
            problems.append((where, f"{where[-1]} needs a CNI plugin with the bandwidth capability, and no plugin "
                                    f"of {conflist} declares it; add bandwidth with \"capabilities\": "
                                    "{\"bandwidth\": true}"))
    if not os.path.isdir(bin_dir):
        problems.append((("network", "cni", "binDir"), f"{bin_dir}: no such directory"
                                                       + ("" if os.path.isabs(cni.bin_dir) else cwd_words)))
    elif (why := untrusted(bin_dir)) is not None:
        problems.append((("network", "cni", "binDir"), f"{bin_dir}: {refusal(why, 'its CNI plugins')}"))
    network = topo.network.model_copy(update={"cni": cni.model_copy(update={"conflist": conflist, "bin_dir": bin_dir})})
    return topo.model_copy(update={"network": network}), problems


def load_topology(path: str | None = None) -> Topology:
    """Load and validate a topology; raise TopologyError listing every problem."""
    return validate_source(read_source(path))


def names_another_lab(path: str | None, lab: str) -> bool:
    """Whether the file ``path`` now names another lab than ``lab`` in its ``name:`` (read, not validated): its
    `up -t FILE` (``Lab.up('FILE')``) makes or converges that lab, not ``lab``, which was brought up from the file
    under a name of its own (``Lab.up(FILE, name=...)``, every pytest plugin lab's). False for no file, and for one
    that cannot be read now: its `up` says what it meets."""
    if path is None:
        return False
    try:
        data = read_source(path).data
    except (TopologyError, OSError):
        return False
    name = data.get("name") if isinstance(data, dict) else None
    return isinstance(name, str) and name != lab
