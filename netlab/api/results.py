"""What the Python API returns: frozen dataclasses with the fields of the CLI's ``-o json``.

Each class is built from the very JSON the CLI prints (``from_json``), and
``to_json`` gives that JSON back (both in netlab.api.jsonio), so a test written against ``netlab probe
-o json`` reads the same names as one written against ``Lab.probe()``. Lists
become tuples and nested objects become these classes; free-form parts
(a trace hop's ``facts``, an inspected route) are read-only dicts
(netlab.api.frozen.FrozenDict, their lists tuples). So a result is a value:
it pickles (to another process), deep-copies, ``dataclasses.asdict``-es and hashes.

This module holds the lifecycle's results; those of probe, trace, get and
inspect, and cni log live in results_probe, results_trace, results_views and results_cni, and are
loaded the first time one of their names is asked of this module: defining a
frozen dataclass costs ~1 ms on Python 3.11 (six generated methods, each
compiled), and ``netlab status`` or ``down`` has no use for the other 18.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers (``X as X``: re-exported)
    from netlab.api.results_cni import CniCall as CniCall
    from netlab.api.results_cni import CniLog as CniLog
    from netlab.api.results_probe import Distribution as Distribution
    from netlab.api.results_probe import DnsAnswer as DnsAnswer
    from netlab.api.results_probe import PodAddressCheck as PodAddressCheck
    from netlab.api.results_probe import ProbedDns as ProbedDns
    from netlab.api.results_probe import ProbedEndpoint as ProbedEndpoint
    from netlab.api.results_probe import ProbedService as ProbedService
    from netlab.api.results_probe import ProbeReport as ProbeReport
    from netlab.api.results_probe import ProbeResult as ProbeResult
    from netlab.api.results_probe import ProbeSummary as ProbeSummary
    from netlab.api.results_trace import ServiceEndpoint as ServiceEndpoint
    from netlab.api.results_trace import Trace as Trace
    from netlab.api.results_trace import TraceEnd as TraceEnd
    from netlab.api.results_trace import TraceHop as TraceHop
    from netlab.api.results_trace import TraceLoss as TraceLoss
    from netlab.api.results_views import ContainerInfo as ContainerInfo
    from netlab.api.results_views import ContainerPortInfo as ContainerPortInfo
    from netlab.api.results_views import EndpointInfo as EndpointInfo
    from netlab.api.results_views import Inspection as Inspection
    from netlab.api.results_views import NftTableInfo as NftTableInfo
    from netlab.api.results_views import NodeInfo as NodeInfo
    from netlab.api.results_views import PodInfo as PodInfo
    from netlab.api.results_views import ServiceInfo as ServiceInfo
    from netlab.api.results_views import ServicePortInfo as ServicePortInfo

JSON = dict[str, Any]

# The other results, each with the module that defines it.
_ELSEWHERE = {
    **dict.fromkeys(("ProbedEndpoint", "ProbedService", "DnsAnswer", "ProbedDns", "ProbeResult", "ProbeSummary",
                     "PodAddressCheck", "Distribution", "ProbeReport"), "netlab.api.results_probe"),
    **dict.fromkeys(("TraceEnd", "TraceLoss", "ServiceEndpoint", "TraceHop", "Trace"), "netlab.api.results_trace"),
    **dict.fromkeys(("ContainerInfo", "ContainerPortInfo", "PodInfo", "NodeInfo", "EndpointInfo", "ServicePortInfo",
                     "ServiceInfo", "NftTableInfo", "Inspection"), "netlab.api.results_views"),
    **dict.fromkeys(("CniCall", "CniLog"), "netlab.api.results_cni"),
}


def __getattr__(name: str) -> Any:
    if name not in _ELSEWHERE:
        raise AttributeError(f"module 'netlab.api.results' has no attribute {name!r}")
    return getattr(importlib.import_module(_ELSEWHERE[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_ELSEWHERE])


@dataclass(frozen=True)
class StoppedProcess:
    """A process that was not the lab's, stopped as a namespace of the lab went (``up -o json``'s and ``down -o
    json``'s ``stopped_processes``): one started there with ``netlab exec`` or ``nsenter``. ``netns``: the
    namespace's name; ``pid``; ``command``: its command line as it was found."""

    netns: str
    pid: int
    command: str


@dataclass(frozen=True)
class NotePlace:
    """Where a note is said (``netlab validate -o json``'s and ``up -o json``'s ``note_places``): as a problem is
    located, ``file``, ``line`` and ``field`` (None where not known: a note of no object netlab read), and its
    ``message``."""

    file: str | None
    line: int | None
    field: str | None
    message: str


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did (``netlab up -o json``)."""

    lab: str
    changed: bool
    created_netns: tuple[str, ...]
    removed_netns: tuple[str, ...]
    fixed: tuple[str, ...]  # repairs, containers restarted, files rewritten (and, deprecated, first starts: started,
    # and the pods' first CNI attachments: attached)
    operations: int
    warnings: tuple[str, ...]
    # Containers that could not start, one line each ("pod a container main: could not start: ..."): the lab
    # is up (its network as planned), its workload is not as asked; `netlab up` then exits 1, as `status` does.
    failed: tuple[str, ...] = ()
    # What the topology asks for that is valid and probably not meant (a policy that selects no pod, a Service
    # without endpoints), one line each: validate's notes, said by up as validate says them (`netlab: note:`).
    notes: tuple[str, ...] = ()
    # One per note of ``notes``, in its order: its file, line, field and message, as validate's -o json gives them.
    note_places: tuple[NotePlace, ...] = ()
    # Processes not the lab's (started in a pod with `netlab exec` or nsenter) stopped with a namespace it removed.
    stopped_processes: tuple[StoppedProcess, ...] = ()

    # In -o json too: `ok` as status's, probe's and trace's; `started` the first starts `fixed` also holds; `attached`
    # the pods' first CNI attachments, which it holds too
    __json_properties__ = ("ok", "started", "attached")

    @property
    def ok(self) -> bool:
        """Everything the topology asks for runs (no container failed to start)."""
        return not self.failed

    @property
    def started(self) -> tuple[str, ...]:
        """The containers this up started for the first time (``started container a/main``: a new lab's, a new pod's),
        no repair; ``fixed`` holds them too, for one release (docs/json.md)."""
        return tuple(line for line in self.fixed if line.startswith("started container "))

    @property
    def attached(self) -> tuple[str, ...]:
        """The pods this up attached through CNI for the first time (``attached pod a through CNI (10.244.0.2)``: a
        new lab's, a new pod's: the conflist's first ADD), no repair (a re-attach is one: ``re-attached pod``);
        ``fixed`` holds them too, for one release (docs/json.md)."""
        return tuple(line for line in self.fixed if line.startswith("attached pod "))


@dataclass(frozen=True)
class DownResult:
    """What ``down`` removed (``netlab down -o json``)."""

    lab: str
    was_up: bool
    removed_netns: tuple[str, ...]
    skipped: tuple[str, ...]
    problems: tuple[str, ...] = ()  # what a feature could not undo (a CNI plugin's failed DEL): warnings
    # The pods' files under /etc/netns removed, by path (/etc/netns/<lab>-<pod>/hosts, resolv.conf): those the
    # lab's state recorded, and with ``force`` those whose first line alone proved them the lab's.
    removed_pod_files: tuple[str, ...] = ()
    # Processes not the lab's (started in a namespace of it with `netlab exec` or nsenter) stopped with the lab.
    stopped_processes: tuple[StoppedProcess, ...] = ()


@dataclass(frozen=True)
class Status:
    """The live kernel against the lab's plan (``netlab status -o json``)."""

    lab: str
    ok: bool
    objects: int
    drift: tuple[str, ...]  # one line per difference
    details: tuple[Mapping[str, Any], ...]
    against: str | None = None  # the file (or "<dict>") compared with, when not the lab's own topology
    # When something differs: what makes the kernel as planned. The CLI's `up` (the lab's own file, or `up --lab
    # NAME` for a lab without one; with ``against``, that file's, --reconfigure when the lab came from another);
    # Lab.status' Python call: Lab('NAME').repair(), or Lab.up('FILE'[, name='NAME'][, reconfigure=True]) against a
    # file (name= when the file's name: is another lab's: the lab was brought up from it with name=).
    # None against a dict, which no command names, and when every difference is one it leaves (``kept``).
    repair: str | None = None
    # The drift lines that repair does not put right by itself (workload.policy.up_leaves): a Never pod's
    # container that failed (or whose exit code is unknown), a container that could not start, a CNI pod the file
    # moves to another node (its `up` refuses the file: no repair named then). None of them:
    # repair puts it all right.
    kept: tuple[str, ...] = ()
    # What matches the plan but not the topology as written: a pod's explicit ip: that its CNI plugins did not
    # give it (the lab follows the plugins' address). Said, never drift. Against a file, what its `up` does that
    # the drift does not show, in up's words: the pods it makes anew, the addresses another's ip: takes.
    warnings: tuple[str, ...] = ()
    # A lab whose `up` (or `down`) ended before it finished (killed, or a down that failed): list's line for it
    # (its ``error``, realize/interrupted.stalled), which the CLI's status prints first; None otherwise. Set, ``ok``
    # is False, whatever the drift: the lab is not as a finished `up` left it.
    error: str | None = None

    @property
    def clean(self) -> bool:
        """Nothing differs from the plan, and no `up` or `down` of the lab ended halfway (``ok``)."""
        return self.ok


@dataclass(frozen=True)
class BreakResult:
    """What a break changed (``netlab break -o json``; ``Lab.break_``)."""

    lab: str
    scenario: str
    target: str  # the node or pod broken
    changes: tuple[str, ...]  # each kernel change, in words (the command that would make it)
    # The lab was not as planned before the break (a fault there already): a line saying so, how many differences,
    # and how to list and repair them (Lab.break_: Lab('NAME').status() and .repair(); the CLI: its commands).
    warnings: tuple[str, ...] = ()
    # The scenario was in place already on this target (broken so, not repaired since): nothing was changed
    # (``changes`` is empty, no warning), as `netlab break` says "is broken already ... nothing changed", exit 0.
    already: bool = False
    # Half in place (a step of it put back by hand since): the steps that were in place already, in words;
    # ``changes`` holds only those the break added.
    in_place: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabInfo:
    """One lab that is up (a row of ``netlab list -o json``)."""

    lab: str
    # creating | up | failed | deleting | corrupt | newer (a state a newer netlab wrote: StateNewer) | lost | gone |
    # interrupted (realize/interrupted.py) | elsewhere (up with another state folder, NETLAB_STATE_DIR: realize/tags.py)
    phase: str
    namespaces: int | None
    nodes: int | None
    pods: int | None
    source: str | None  # the topology file, "built-in default", or None when unknown
    error: str | None = None  # a corrupt, lost or interrupted lab, or a stalled up or down: why, and what to do
    # The pytest plugin's lab: its pytest process ("pytest (pid 1234)"), and whether that process has ended
    # (killed: nothing took the lab down); None for any other lab.
    owner: str | None = None
    owner_gone: bool | None = None


@dataclass(frozen=True)
class ImpairResult:
    """What an impairment's change did (``netlab impair NAME:IFACE --rate ... -o json``; ``Lab.impair``)."""

    lab: str
    target: str  # NAME:IFACE
    netns: str
    before: str  # the interface's impairment in the lab's desired state before, in --rate/--loss words ("none")
    after: str  # and after ("rate 10mbit loss 1%", or "none" after clear)
    changes: tuple[str, ...]  # what the up it ran changed, in words (UpResult.fixed)
    warnings: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # containers that up could not start (the impairment is set; the CLI exits 1)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def fixed(self) -> tuple[str, ...]:
        """``changes``, by the name of the UpResult Lab.impair returned before (not in the JSON)."""
        return self.changes


@dataclass(frozen=True)
class ImpairmentInfo:
    """One interface as the kernel has it (a row of ``netlab impair -o json`` with no option)."""

    target: str  # NAME:IFACE
    netns: str
    interface: str
    kernel: str  # what the kernel has, in --rate/--loss words: "rate 10mbit loss 1%", "none", "no such interface"
    topology: str  # what the lab's desired state says ("none")
    set_at: str | None  # when `netlab impair` (Lab.impair) set it, UTC; None: as the lab's file says
    loss_at: str | None  # where its loss is dropped, in words (None: no loss)
    dropped: int | None  # frames its loss rule dropped so far (its counter); None: no loss


@dataclass(frozen=True)
class Impairments:
    """What the lab's interfaces suffer, read from the kernel (``netlab impair -o json`` with no option;
    ``Lab.impairments``): every impaired interface, or the one asked for."""

    lab: str
    impairments: tuple[ImpairmentInfo, ...]
