"""The neighbour (ARP) table is one table for the whole machine.

Every namespace's IPv4 neighbour entries live in the kernel's single
``arp_tbl``, whose garbage-collection limits come from the *host's*
``net.ipv4.neigh.default.gc_thresh1/2/3`` (128/512/1024 by default; only the
initial namespace can change them). Above gc_thresh2 the kernel starts
forced garbage collection (it may evict the host's own entries), at gc_thresh3
it refuses new entries: "neighbour table overflow", and packets are dropped,
the host's too.

Pods on one bridge talk at layer 2, so all-pairs traffic among k of them needs
k*(k-1) entries (A learns B and B learns A from A's ARP request): 33 pods on
one bridge already need 1056. So:

- the prober keeps the dynamic entries *it* causes bounded: it knows which
  entries each probe's packets create (:func:`path_entries`), starts probes
  only while those fit a budget below gc_thresh2, and deletes each entry as
  soon as no running probe needs it (see budget.py); whatever else the run
  caused is swept at the end. Entries that existed before the run are left
  alone, but for unresolved ones (:func:`forget_unresolved`): a resolution a
  fault left half done would fail the run's first packets after the repair;
- ``netlab up`` prints :func:`neighbour_budget_warning` when a lab's full-mesh
  traffic would reach the limit. netlab never writes these sysctls.

Entries are read and deleted through netlab's one netlink codec
(kernel/rtnl.py and rtnl_parse.py). The prober sends its thousands of RTM_DELNEIGH requests
without NLM_F_ACK, on a socket opened once per namespace: a request and an
acknowledgement each would cost a round trip per entry.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, NamedTuple, Protocol

from netlab.kernel import netlink, rtnl, rtnl_parse

if TYPE_CHECKING:
    from netlab.model.lab import Lab

SYSCTL_DIR = "/proc/sys/net/ipv4/neigh/default"
ARP_STAT = "/proc/net/stat/arp_cache"
DEFAULTS = {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}
MARGIN = 64  # entries left for the host and everything else on the machine


# --- limits -------------------------------------------------------------------


def read_thresholds() -> dict[str, int]:
    """gc_thresh1/2/3 of the host (read only; they are the same in every namespace's view)."""
    out = dict(DEFAULTS)
    for key in out:
        try:
            with open(os.path.join(SYSCTL_DIR, key)) as fh:
                out[key] = int(fh.read().strip())
        except (OSError, ValueError):
            pass
    return out


@dataclass(frozen=True)
class TableStats:
    """Machine-wide counters of the ARP table (/proc/net/stat/arp_cache, first row)."""

    entries: int
    forced_gc_runs: int
    table_fulls: int


_stat_fd: int | None = None


def keep_stats_open() -> None:
    """Open the counters now, while in the host's namespace: the file exists only there
    (a process that joined a lab namespace sees its /proc/net, without stat/arp_cache)."""
    global _stat_fd
    if _stat_fd is None:
        try:
            _stat_fd = os.open(ARP_STAT, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            _stat_fd = None


def table_stats() -> TableStats | None:
    try:
        if _stat_fd is not None:
            text = os.pread(_stat_fd, 4096, 0).decode()
        else:
            with open(ARP_STAT) as fh:
                text = fh.read()
    except OSError:
        return None
    lines = text.splitlines()
    if len(lines) < 2:
        return None
    head, row = lines[0].split(), lines[1].split()
    values = dict(zip(head, (int(v, 16) for v in row)))
    return TableStats(values.get("entries", 0), values.get("forced_gc_runs", 0), values.get("table_fulls", 0))


def probe_budget(thresholds: dict[str, int] | None = None, stats: TableStats | None = None) -> int:
    """How many dynamic entries one probe run may hold at once.

    Stay below gc_thresh2 (forced GC would evict other namespaces' entries)
    and gc_thresh3, with a margin for the rest of the machine. Never below 32:
    a run must make progress even on a crowded machine (it then goes slowly,
    2 pairs... at a time, rather than not at all).
    """
    t = thresholds or read_thresholds()
    s = stats if stats is not None else table_stats()
    used = s.entries if s else 0
    room = min(t["gc_thresh2"], t["gc_thresh3"]) - used - MARGIN
    return max(32, room)


# --- how many entries a lab needs ----------------------------------------------------


def lab_bridge(lab: "Lab") -> str | None:
    """The nodes' bridge of pods (plan.cniadd.lab_bridge, as matrix's). The agent, its workers and the CLI's early
    start import this module before the topology's models load, and need none of them (tasks.py): plan.cniadd loads
    them, when asked; not the probe's matrix, which ``up``'s warning (:func:`neighbour_budget_warning`) needs not."""
    from netlab.plan.cniadd import lab_bridge as of_lab

    return of_lab(lab)


def full_mesh_entries(lab: "Lab") -> int:
    """Dynamic neighbour entries when every pod and node of the lab talks to every pod.

    Pods on one bridge: k*(k-1) per node (they resolve each other). Pods that share no bridge (ptp: each pod's
    veth routed by its node alone) resolve only their gateway, the node's end of their veth, whoever they talk
    to. Each pod: one for its gateway; each node: one per local pod (on its bridge, or on the pod's veth without
    one). Nodes resolve each other on the underlay, in both modes (a VXLAN packet's outer destination is the
    remote node, as path_entries counts it); flannel.1's entries are PERMANENT (not counted by the GC).
    """
    total = 0
    if lab_bridge(lab) is not None:
        total = sum(k * (k - 1) for k in Counter(p.node for p in lab.pods).values())
    total += 2 * len(lab.pods)
    n = len(lab.nodes)
    return total + n * (n - 1)


def neighbour_budget_warning(lab: "Lab", thresholds: dict[str, int] | None = None) -> str | None:
    """A warning for ``netlab up`` when the lab's full-mesh traffic reaches the host's gc_thresh3."""
    t = thresholds or read_thresholds()
    need = full_mesh_entries(lab)
    limit = t["gc_thresh3"]
    if fits(need, t):
        return None
    per_node = Counter(p.node for p in lab.pods)
    node, most = per_node.most_common(1)[0] if per_node else ("", 0)
    bridge = lab_bridge(lab)
    where = (f"{most} pods share node {node}'s bridge {bridge}" if bridge
             else f"{len(lab.pods)} pods, each on its own routed veth")
    return (f"all-pairs traffic in lab {lab.name} needs up to {need} neighbour (ARP) entries "
            f"({where}), but the kernel's table is shared by the whole machine "
            f"and capped by net.ipv4.neigh.default.gc_thresh3 = {limit}; past it the kernel drops packets, "
            f"the host's too. `netlab probe` keeps its own entries bounded. To let everything talk at once, "
            f"raise the limit on the host (netlab never changes it): {raise_limit_command(need)}")


def budget_warning_repeated(saved_topology: object, lab: "Lab") -> bool:
    """Whether :func:`neighbour_budget_warning` of ``lab`` was said at its up before: the lab had the same size
    then (its pods on each node, its nodes) as ``saved_topology`` (the lab's state before this up) says. An up
    that changes nothing, or something else, says it once (on stderr; -o json keeps it among the warnings)."""
    if not isinstance(saved_topology, dict):
        return False
    pods, nodes = saved_topology.get("pods"), saved_topology.get("nodes")
    if not isinstance(pods, list) or not isinstance(nodes, list):
        return False
    before = Counter(p.get("node") for p in pods if isinstance(p, dict))
    return before == Counter(p.node for p in lab.pods) and len(nodes) == len(lab.nodes)


def fits(need: int, thresholds: dict[str, int]) -> bool:
    """Whether ``need`` dynamic entries fit under gc_thresh3 with the margin left for the machine."""
    return need + MARGIN < thresholds["gc_thresh3"]


def raise_limit_command(need: int) -> str:
    """The sysctl command that makes room for ``need`` entries: gc_thresh3 a power of two, 2 and 1 a half and an
    eighth."""
    suggest = 1024
    while suggest < 2 * (need + MARGIN):
        suggest *= 2
    return (f"sudo sysctl -w net.ipv4.neigh.default.gc_thresh3={suggest} "
            f"net.ipv4.neigh.default.gc_thresh2={suggest // 2} net.ipv4.neigh.default.gc_thresh1={suggest // 8}")


# --- which entries a probe's packets create -------------------------------------------


class Entry(NamedTuple):
    """One neighbour entry: ``ip`` resolved on ``ifname`` in namespace ``netns``."""

    netns: str
    ifname: str
    ip: str


class NodeFacts(NamedTuple):
    netns: str
    ip: str
    gateway: str  # its bridge's address (cni0's): its pods' gateway


class End(Protocol):
    """A probe's source or destination as :func:`entries_between` reads it (matrix.Endpoint; the CLI's early job
    from the lab's state, probe/plain.py, has its own)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def netns(self) -> str: ...

    @property
    def addr(self) -> str: ...

    @property
    def node(self) -> str | None: ...

    @property
    def bridge(self) -> str | None: ...


def path_entries(lab: "Lab", source: End, destination: End) -> list[Entry]:
    """Dynamic neighbour entries (netns, ifname, ip) that a probe and its reply create: :func:`entries_between`
    of ``lab``'s nodes and devices."""
    return entries_between(_node_facts(lab), node_devices(lab), source, destination)


def entries_between(nodes: Mapping[str, NodeFacts], devs: Mapping[str, str], source: End,
                    destination: End) -> list[Entry]:
    """Dynamic neighbour entries (netns, ifname, ip) that a probe and its reply create.

    ``source``/``destination`` are matrix Endpoints; ``nodes``: each node's facts by name, ``devs``: the node's
    interface each pod is resolved on by name (:func:`node_devices`). Pods on one bridge resolve
    each other (A asks for B; B learns A from the request). Routed traffic
    resolves the pod's gateway, the node resolves its pod (on its bridge, cni0 or
    a conflist's own, or on the pod's veth when there is none: ptp), and nodes
    resolve each other on the underlay (the VXLAN packets too: their outer
    destination is the remote node's IP). flannel.1's entries are PERMANENT
    and not counted. Hosts outside the pod network: not predicted (the sweep
    at the end of the run removes what they cause).
    """
    out: list[Entry] = []

    def pod_side(pod: End) -> None:  # pod <-> its node's side of its link
        node = nodes[pod.node]
        out.append(Entry(pod.netns, "eth0", node.gateway))
        out.append(Entry(node.netns, devs[pod.name], pod.addr))

    def underlay(a: str, b: str) -> None:
        if a != b:
            out.append(Entry(nodes[a].netns, "eth0", nodes[b].ip))
            out.append(Entry(nodes[b].netns, "eth0", nodes[a].ip))

    s, d = source, destination
    if d.kind != "pod" or s.kind not in ("pod", "node"):
        return out
    if s.kind == "pod" and s.bridge is not None and s.bridge == d.bridge:  # one bridge: pod to pod, no router
        return [Entry(s.netns, "eth0", d.addr), Entry(d.netns, "eth0", s.addr)]
    if s.kind == "node" and s.node == d.node:
        return [Entry(s.netns, devs[d.name], d.addr), Entry(d.netns, "eth0", nodes[d.node].gateway)]
    if s.kind == "pod":
        pod_side(s)
    pod_side(d)
    underlay(s.node, d.node)
    return out


def _node_facts(lab: "Lab") -> dict[str, NodeFacts]:
    """node name -> its namespace, IP and gateway IP, as text; cached on the lab object."""
    facts = lab.__dict__.get("_neigh_node_facts")
    if facts is None:
        facts = {n.name: NodeFacts(n.netns, str(n.ip), str(n.gateway.ip)) for n in lab.nodes}
        lab.__dict__["_neigh_node_facts"] = facts
    return facts


def node_devices(lab: "Lab") -> dict[str, str]:
    """pod name -> the node's interface its node resolves the pod on: the nodes' bridge of pods (cni0, a
    conflist's own such as qnbr0), or the node's end of the pod's veth when there is no bridge (ptp routes each
    pod alone, out of its veth); cached on the lab object, as its bridge is (a job asks once a probe)."""
    devs = lab.__dict__.get("_neigh_node_devices")
    if devs is None:
        bridge = lab_bridge(lab)
        devs = lab.__dict__["_neigh_node_devices"] = {p.name: bridge or p.host_veth for p in lab.pods}
    return devs


# --- the entries of one namespace, read through the codec -----------------------------------


def dump(conn: netlink.Conn) -> list[rtnl_parse.NeighMsg]:
    """The IPv4 neighbour entries of the namespace ``conn`` was opened in (``ip -4 neigh``; bounded wait)."""
    out = []
    for m in conn.dump("neighbours", rtnl.neigh_dump()):
        n = rtnl_parse.parse_neigh(m)
        if n.family == socket.AF_INET and n.dst is not None:
            out.append(n)
    return out


def dynamic(n: rtnl_parse.NeighMsg) -> bool:
    """An entry the kernel made and will expire (and the GC counts): neither PERMANENT nor NOARP."""
    return not n.state & (rtnl.NUD_PERMANENT | rtnl.NUD_NOARP)


def unresolved(n: rtnl_parse.NeighMsg) -> bool:
    """A resolution under way or given up (INCOMPLETE, FAILED): no MAC to send to."""
    return bool(n.state & (rtnl.NUD_INCOMPLETE | rtnl.NUD_FAILED))


def forget_unresolved(conn: netlink.Conn, entries: list[rtnl_parse.NeighMsg]) -> int:
    """Delete the unresolved ``entries``: a packet sent now starts a resolution of its own.

    The kernel asks a neighbour 3 times, 1 s apart (the device's mcast_solicit and retrans_time_ms), and when
    the last question goes unanswered fails every packet queued behind the entry with ICMP host unreachable. A
    fault repaired a moment ago (a pod's port set up again) leaves such an entry with its questions asked: a
    packet sent now waits behind it and fails, although the pod would answer now; a second later it would pass.
    Deleting the entry fails at once only the packets queued before, sent while the fault was there. Sent
    without NLM_F_ACK; the kernel's refusals (the entry went in between) are drained. Also what lets a seeded
    pair's PERMANENT entry in (budget.py never replaces an entry it finds)."""
    gone = 0
    for n in entries:
        if dynamic(n) and unresolved(n):
            conn.sock.send(rtnl.neigh_del(n.index, n.dst))
            gone += 1
    netlink.drain(conn.sock)
    return gone
