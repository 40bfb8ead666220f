"""The walk: follow one packet through the lab's namespaces, asking each kernel what it decides.

Pod to pod across nodes on the Flannel VXLAN overlay::

    pod eth0 ─veth─► node vethX (port of cni0) ─► cni0 (up to IP) ─route─► flannel.1
      ─ARP─► remote VTEP MAC ─FDB─► remote node IP ─► UDP 8472 VNI 1 out eth0
      ─► underlay br0 ─► remote node eth0 ─decap─► flannel.1 ─route─► cni0 ─► pod eth0

The :class:`Walker` follows the packet through the lab's namespaces and, in
each, asks the kernel what it decides: ``RTM_GETROUTE`` (``ip route get DST
from SRC iif DEV``), the neighbour entry of the next hop, the FDB entry of a
VXLAN device or a bridge, and the conntrack entry of the packet (read after the
packet was sent: the entry holds the endpoint a Service DNAT picked, and the
reverse translation of the replies). It never re-implements routing; it only
uses the lab's plan (:class:`~netlab.trace.labmap.LabMap`) to know which veth
end sits in which namespace (the kernel names a veth's peer by an ifindex in a
namespace *id*, which has no name) and to put names on addresses.

The packet is always in one of three places (the walker's states):
:class:`LocalOut` (a socket sent it), :class:`FrameIn` (a frame arrives on a
device, addressed to a MAC) and :class:`IpIn` (a namespace's IP layer got it
from a device). Each row is written once, when everything it says is known.

The steps are in a module per kind: the route lookup and what its answer
makes of the packet in routesteps.py; a frame's arrival, the IP layer and a
delivery in arrivalsteps.py; Flannel's VXLAN encapsulation and its unwrapping
in vxlansteps.py; the NAT steps (DNAT, masquerade, their reversal, and why a
Service packet was not DNATed) in natsteps.py; ARP and the bridges'
switching in l2steps.py; the states in states.py. Everything here is pure: the kernel is
behind the :class:`~netlab.trace.facts.Kernel` protocol (kernel.py answers
from netlink; the unit tests answer from a fake).
"""

from __future__ import annotations

from typing import Hashable

from netlab.trace import ttlloop
from netlab.trace.arrivalsteps import ArrivalSteps
from netlab.trace.facts import Kernel, RouteFailure
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Rows, Walk
from netlab.trace.labmap import LabMap
from netlab.trace.l2steps import L2Steps
from netlab.trace.macvlansteps import MacvlanSteps
from netlab.trace.natsteps import NatSteps
from netlab.trace.routesteps import RouteSteps
from netlab.trace.states import FrameIn, LocalOut, State
from netlab.trace.vxlansteps import VxlanSteps


class Walker(RouteSteps, ArrivalSteps, VxlanSteps, NatSteps, L2Steps, MacvlanSteps):
    """Follows one packet through the lab, asking the kernel at every namespace."""

    MAX_STEPS = 64
    size = 0  # the packet's IP length (walk(size=...)); each VXLAN encapsulation adds 50

    def __init__(self, kernel: Kernel, lab: LabMap, role: str = "request", direction: str = "forward"):
        self.k = kernel
        self.lab = lab
        self.role = role
        self.direction = direction
        self.rows = Rows(lab.where, direction)
        self.stack = []  # the attributes' meanings: walkparts.py
        self._ct_hit = {}
        self._pre_nat = {}
        self._unseen = None
        self._port_in = None
        self._asked = None
        self._src_mac = None
        self._taught = {}
        self._fragments = 0
        self._doomed = None
        self._lb_drift = None
        self.source: str | None = None  # the address the socket sent from (the kernel's pick, or the flow's)

    def _wire_size(self) -> int:
        """The size the next device meets: the IP length with each encapsulation, or its fragments'."""
        size = self.size + 50 * len(self.stack)
        return min(size, self._fragments) if self._fragments else size

    # -- where the capture should see the packet, and the end of a walk

    def _obs(self, netns: str, ifname: str, direction: str) -> Observe | None:
        if (netns, ifname) == self._unseen:
            return None  # a device the kernel skips for this packet (bridged DNAT)
        inner = self.stack[0].inner if self.stack else self.flow
        return Observe(netns, ifname, direction, inner, self.role, encapsulated=bool(self.stack))

    def _stop(self, reason: str) -> Walk:
        return Walk(self.rows.hops, "stopped", self.flow, None, reason)

    def _on(self, iif: str | None) -> str:
        """The device a packet being routed is on: the one it came in by, or for a VXLAN packet its node makes
        (routed with no iif) the VXLAN device that wraps it (which counts a drop there in its TX errors); "-" for
        a socket's own packet."""
        return iif or (self.stack[-1].vxdev if self.stack else "-")

    # -- the walk

    def walk(self, netns: str, flow: Flow) -> Walk:
        self.flow = flow
        state: State | Walk = LocalOut(netns)
        been: dict[Hashable, int] = {}  # the packet's state at a place -> the rows written before it got there
        # the same place and destination, whatever the source: a masquerade on the way round gives the packet a
        # new source (and a ping a new echo id: each lap's is a new conntrack entry) each lap, so it never comes
        # back as it was; after one lap every router gets it from the same masquerade as the lap before
        passes: dict[Hashable, list[int]] = {}
        for _ in range(self.MAX_STEPS):
            if isinstance(state, Walk):
                break
            key = self._state_key(state)
            if key in been:  # back where it was, as it was: round the same way again (ttlloop.py)
                state = self._looped(netns, been[key])
                break
            been[key] = self.rows.written
            rows = passes.setdefault(self._place_key(state), [])
            if len(rows) == 2:  # a third time there, to the same destination: the lap since the second is a loop's
                state = self._looped(netns, rows[1], renat=True)
                break
            rows.append(self.rows.written)
            if isinstance(state, LocalOut):
                state = self._local_out(state.netns)
            elif isinstance(state, FrameIn):
                state = self._frame_in(state)
            else:
                state = self._ip_in(state)
        self.rows.flush()
        self._name_sending_device(netns, flow.dst)
        if isinstance(state, Walk):
            return state
        return Walk(self.rows.hops, "loop", self.flow, None, f"more than {self.MAX_STEPS} steps: a routing loop?")

    def _state_key(self, state: State) -> Hashable:
        """The packet's state at a place: where it is, its addresses, its encapsulations, and for a frame the source
        MAC it arrives with (a bridge learns it); what else the walker keeps is set again at each state."""
        wraps = tuple((e.inner, e.vni, e.vxdev, e.netns, e.remote) for e in self.stack)
        mac = self._sent_from(self.lab.peers.get((state.netns, state.dev))) \
            if isinstance(state, FrameIn) and not state.came else None
        return state, self.flow, wraps, mac

    def _place_key(self, state: State) -> Hashable:
        """The packet's place and destination, without its source (nor a ping's echo id, which a masquerade
        rewrites with it): for a TCP or UDP packet its destination port too."""
        wraps = tuple((e.inner.dst, e.vni, e.vxdev, e.netns, e.remote) for e in self.stack)
        f = self.flow
        return state, f.proto, f.dst, None if f.proto == "icmp" else f.dport, wraps

    def _looped(self, netns: str, start: int, renat: bool = False) -> Walk:
        """The packet came back to a state it was in once ``start`` rows were written: the rows since are one lap
        of a loop, which the kernel's packet goes round until its TTL runs out. One row says so, and the walk
        ends (the lap's rows are not written again)."""
        self.rows.flush()
        loop = ttlloop.explain(self.k, self.lab.ip_names, self.rows.hops, start, netns, self.flow, renat)
        self.rows.add(loop.netns, loop.device, "loop", loop.decision, loop.commands, problem=loop.problem,
                      **loop.facts)
        return Walk(self.rows.hops, "loop", self.flow, None, loop.problem)

    def _name_sending_device(self, ns: str, dst: str) -> None:
        """The rows a socket's packet meets before it is routed (a node's own packet DNATed in nat OUTPUT) name the
        device it leaves by: the kernel routes it (by the original destination), OUTPUT DNATs it, then routes it
        again by the new one, and sends it out of that route's device, which the next route row names. A packet
        dropped before that leaves by the device ``ip route get`` picks for its original destination."""
        hops = self.rows.hops
        # the row of the lookup that picked the socket's source (before a DNAT) names its own device
        end = next((i for i, h in enumerate(hops) if h.device != "-" and not h.facts.get("source_route")), len(hops))
        first = [h for h in hops[:end] if h.netns == ns and not h.facts.get("source_route")]
        if not first:
            return
        out = next((h.facts["oif"] for h in self.rows.hops if h.netns == ns and h.facts.get("oif")), None)
        if out is None:
            try:
                out = self.k.route_get(ns, dst).oif
            except RouteFailure:
                return
        for h in first:
            h.device = out or "-"

    def _local_out(self, ns: str) -> State | Walk:
        """The first hop: a socket here sends the packet."""
        f = self.flow
        if not f.src:
            # The kernel picks the source address from the route to the original destination.
            src = self._source(ns, f.dst)
            if isinstance(src, Walk):
                return src
            self.flow = f.with_src(src, f.sport)
        self.source = self.flow.src
        new, row = self._prerouting(ns, None)  # OUTPUT: a node reaching a Service is DNATed here
        if new is not None and new.dst != self.flow.dst:
            self._source_row(ns, self.flow)  # the lookup that picked the source, by the destination before the DNAT
        elif f.proto == "icmp" and not f.src and ns in self.lab.kube_proxy_netns:
            # a node's ping to a ClusterIP: no DNAT, the same lookup picked its source and routes it (said alike)
            svc = next((s.name.partition(":")[0] for s in self.lab.services if s.ip == f.dst), None)  # ns/name
            if svc is not None:
                self._source_row(ns, self.flow, service=f"Service {svc}")
        dropped = self._emit_nat(row)
        if dropped is not None:
            return dropped
        if new is not None:
            self.flow = new
        return self._route(ns, None)

    def _emit_nat(self, row: Hop | None) -> Walk | None:
        """Write a NAT row; one that says this namespace drops the packet (kube-proxy's REJECT of a Service
        without endpoints, a FORWARD policy of DROP, a port without hairpin mode) ends the walk there: the
        packet does not go on to the rows its route would give."""
        self.rows.emit(row)
        if row is not None and row.problem and row.facts.get("dropped_here"):
            return self._stop(row.problem)
        return None



def walk(kernel: Kernel, lab: LabMap, netns: str, flow: Flow, role: str = "request",
         direction: str = "forward", size: int = 0) -> Walk:
    """``size``: the packet's IP length when it matters (a full-size echo); 0: small, never too big."""
    w = Walker(kernel, lab, role=role, direction=direction)
    w.size = size
    out = w.walk(netns, flow)
    out.source = w.source
    return out
