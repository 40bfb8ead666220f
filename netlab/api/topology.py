"""A topology from a file, a plain dict shaped like the YAML, or the built-in default.

Every form goes through the loader's checks (netlab.model.load), so a dict
with a mistake gets the same one-line problems as a file, located by field
(``<dict>: pods[1].node: ...``) instead of by line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from netlab.api.args import check_bool, check_str, check_topology, method
from netlab.api.origins import BUILT_IN, DICT_SOURCE
from netlab.api.words import stopped
from netlab.errors import UsageError
from netlab.model.clusterdns import DNS_NAME, is_addon_pod, is_dns_service
from netlab.model.lab import Lab, resolve
from netlab.model.load import read_source, validate_source
from netlab.model.naming import lab_name_problem
from netlab.model.places import Note, Places
from netlab.model.topology import Topology
from netlab.model.yamlsource import Source

TopologyInput = Union[str, "os.PathLike[str]", Mapping[str, Any], None]


@dataclass(frozen=True)
class Loaded:
    """A validated topology, resolved, and where it came from."""

    lab: Lab
    topology: Topology  # as written (without what netlab adds, such as cluster DNS)
    source: str | None  # the file's path; None for a dict or the built-in default
    origin: str  # the file's path, "<dict>" or "built-in default", for messages
    # A running lab's saved topology (load_running): the run it was read from. Applied, it converges that lab
    # only while that run is up (a `down` meanwhile: refused, not made anew).
    run_id: str | None = None
    notes: tuple[Note, ...] = ()  # what loading found valid and probably worth saying (include.py's empty globs)
    # Where its Services and NetworkPolicies were written, for the notes about them (none for a saved topology)
    places: Places = field(default_factory=Places, compare=False, hash=False)

    @property
    def added_pods(self) -> list[str]:
        """Pods netlab added to the file's (the cluster DNS pod of a lab with Services). A running lab's saved
        topology holds the add-on's pod as the lab had it: known by what it is, so that ``up --lab`` counts the
        pods as ``up -t FILE`` does."""
        mine = {p.name for p in self.topology.pods if not is_addon_pod(p)}
        return [p.name for p in self.lab.pods if p.name not in mine]

    @property
    def added_services(self) -> list[str]:
        """Services netlab added: the add-on's kube-system/kube-dns (in a saved topology too, beside its pod)."""
        addon = any(is_addon_pod(p) for p in self.lab.topo.pods)
        mine = {(s.namespace, s.name) for s in self.topology.services if not (addon and is_dns_service(s))}
        return [f"{s.namespace}/{s.name}" for s in self.lab.services if (s.namespace, s.name) not in mine]

    def counts(self) -> str:
        """``1 node, 2 pods (1 + kube-dns, the cluster DNS ...), 2 services (1 + kube-system/kube-dns)``."""
        return describe_counts(self.lab, self.added_pods, self.added_services)


def describe_counts(lab: Lab, added_pods: list[str], added_services: list[str]) -> str:
    """Nodes, pods and Services, naming what netlab added so that the numbers add up:
    ``1 node, 2 pods (1 + kube-dns, the cluster DNS netlab adds to a lab with Services), 2 services (...)``."""
    def count(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    pods = count(len(lab.pods), "pod")
    if added_pods:
        why = ", the cluster DNS netlab adds to a lab with Services" if added_pods == [DNS_NAME] else \
            ", added by netlab"
        pods += f" ({len(lab.pods) - len(added_pods)} + {', '.join(added_pods)}{why})"
    services = count(len(lab.services), "service")
    if added_services:
        services += f" ({len(lab.services) - len(added_services)} + {', '.join(added_services)})"
    return f"{count(len(lab.nodes), 'node')}, {pods}, {services}"


def load(topology: TopologyInput = None, name: str | None = None, *, running: bool = True) -> Loaded:
    """Load, validate and resolve a topology; ``name`` replaces its ``name:``. When a lab of that name is up
    (and its state can be read here: root's), its pods and Services keep the addresses they hold there, as
    ``up`` keeps them; ``running=False``: as a fresh lab gets them (whether a topology is valid never depends
    on a running lab).

    ``topology``: a path, a dict shaped like the YAML (``{"name": ..., "nodes": [...]}``,
    with the YAML's field names such as ``podCIDR``), or None for the built-in default.
    Raises TopologyError with every problem, UsageError for a bad ``name``; Ctrl-C meanwhile, KeyboardInterrupt
    (also as pydantic builds a validator: :func:`netlab.api.words.stopped`).
    """
    with stopped():
        return _load(topology, name, running)


def _load(topology: TopologyInput, name: str | None, running: bool) -> Loaded:
    with method("netlab.api.load"):
        check_topology(topology)
        check_str("name", name, none_ok=True)
        check_bool("running", running)
    if name is not None:
        problem = lab_name_problem(name)
        if problem:
            raise UsageError(f"name {problem}")
    if topology is None or isinstance(topology, (str, os.PathLike)):
        path = None if topology is None else os.fspath(topology)
        src = read_source(path)  # its problems are reported with the model's and the cross-checks'
        origin = path if path is not None else BUILT_IN
    else:  # a Mapping: check_topology took nothing else
        path, origin = None, DICT_SOURCE
        src = Source(file=DICT_SOURCE, data=_plain(topology), lines={}, raw={})
    if name is not None:
        src.data = {**src.data, "name": name}
    topo = validate_source(src)
    if not running:
        return Loaded(resolve(topo), topo, path, origin, notes=tuple(src.notes), places=src.places)
    from netlab.realize.state import held_by  # reads the lab's state file: no kernel code

    return Loaded(resolve(topo, held_by(topo.name)), topo, path, origin, notes=tuple(src.notes), places=src.places)


def topology_notes(loaded: Loaded, served: Lab | None = None) -> list[Note]:
    """What the topology asks for that is valid and probably not meant, one line each at the field it is about
    (validate's notes, and up's): an include glob that matches no file, a conflist's host-local range wider than
    the nodes' podCIDRs, a Service whose endpoints will not answer,
    a policy's ipBlock that is IPv6 or has host bits, a selector or named port that matches nothing. ``served``:
    the lab without its terminated pods, which are no endpoints (up's, once its containers ran)."""
    from netlab.model.endpoints import service_notes
    from netlab.model.netpol import policy_notes
    from netlab.model.netpol_match import match_notes
    from netlab.model.wide_range import wide_range_notes

    lab, places = loaded.lab, loaded.places
    return [*loaded.notes, *wide_range_notes(lab, places), *service_notes(served or lab, places),
            *policy_notes(lab.topo.network_policies, places), *match_notes(lab, places)]


def load_running(name: str) -> Loaded:
    """A running lab's saved topology, what ``status`` compares the kernel with: the topology it was last
    brought up with (its file as it was then, a dict, or the built-in default), with the impairments
    ``netlab impair`` set since. Its source stays the lab's own file, so that applying it replaces nothing.
    UsageError when the lab is not up."""
    from netlab.realize.state import running_lab

    with method("netlab.api.load_running"):
        check_str("name", name)
    state = running_lab(name)
    topo = state.model()
    return Loaded(resolve(topo, state.held()), topo, state.source, f"lab {name}'s saved topology", state.run_id)


def _plain(value: Any) -> Any:
    """A copy made of dicts and lists, as the YAML reader gives (tuples become lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
