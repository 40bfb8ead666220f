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

The NAT steps (DNAT, masquerade, their reversal, and why a Service packet
was not DNATed) are in natsteps.py; ARP and the bridges' switching in
l2steps.py; the states in states.py. Everything here is pure: the kernel is
behind the :class:`~netlab.trace.facts.Kernel` protocol (kernel.py answers
from netlink; the unit tests answer from a fake).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from netlab.trace import faults, nat
from netlab.trace.facts import Kernel, LinkFacts, RouteFacts, RouteFailure
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Rows, Walk
from netlab.trace.labmap import LabMap
from netlab.trace.l2steps import ZERO_MAC, L2Steps
from netlab.trace.natsteps import NatSteps
from netlab.trace.states import FrameIn, IpIn, LocalOut, State

BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass
class _Encap:
    """A VXLAN encapsulation under way: the inner packet, and the frame the VXLAN device wrapped."""

    inner: Flow
    vni: int
    vxdev: str  # the VXLAN device that encapsulated
    src_mac: str | None
    dst_mac: str
    shown: bool = False  # the encapsulation row was written


class Walker(NatSteps, L2Steps):
    """Follows one packet through the lab, asking the kernel at every namespace."""

    MAX_STEPS = 64
    size = 0  # the packet's IP length (walk(size=...)); each VXLAN encapsulation adds 50

    def __init__(self, kernel: Kernel, lab: LabMap, role: str = "request", direction: str = "forward"):
        self.k = kernel
        self.lab = lab
        self.role = role
        self.direction = direction
        self.rows = Rows(lab.where, direction)
        self.stack: list[_Encap] = []
        self.flow: Flow
        self._ct_hit: dict[str, nat.Hit] = {}  # per namespace: found in PREROUTING, used in POSTROUTING
        self._pre_nat: dict[str, Flow] = {}  # per namespace: the packet before its PREROUTING translation
        self._unseen: tuple[str, str] | None = None  # a bridge the packet skips (bridged DNAT)
        self._port_in: str | None = None  # ... and the port it came in on, which it may go back out (hairpin)
        self._fragments = 0  # a VXLAN packet fragmented leaving its node: no fragment is bigger than this

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
        for _ in range(self.MAX_STEPS):
            if isinstance(state, Walk):
                break
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

    def _name_sending_device(self, ns: str, dst: str) -> None:
        """The rows a socket's packet meets before it is routed (a node's own packet DNATed in nat OUTPUT) name the
        device it leaves by: the kernel routes it (by the original destination), OUTPUT DNATs it, then routes it
        again by the new one, and sends it out of that route's device, which the next route row names. A packet
        dropped before that leaves by the device ``ip route get`` picks for its original destination."""
        first = [h for h in self.rows.hops[:next((i for i, h in enumerate(self.rows.hops) if h.device != "-"),
                                                 len(self.rows.hops))] if h.netns == ns]
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
        new, row = self._prerouting(ns, None)  # OUTPUT: a node reaching a Service is DNATed here
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

    def _lookup(self, ns: str, iif: str | None) -> tuple[RouteFacts | RouteFailure, str]:
        """``ip route get`` for the packet as it is now: the kernel's answer (or refusal), and the command."""
        f = self.flow
        cmd = f"ip -n {ns} route get {f.dst} from {f.src}" + (f" iif {iif}" if iif else "")
        try:
            return self.k.route_get(ns, f.dst, src=f.src, iif=iif), cmd
        except RouteFailure as exc:
            return exc, cmd

    def _route(self, ns: str, iif: str | None) -> State | Walk:
        return self._decide(ns, iif, *self._lookup(ns, iif))

    def _decide(self, ns: str, iif: str | None, ans: RouteFacts | RouteFailure, cmd: str) -> State | Walk:
        """The route lookup's answer: a drop, this namespace (local), or out through a device."""
        f = self.flow
        if isinstance(ans, RouteFailure):
            why, fix = faults.refused(self.k, ns, iif, f.src, f.dst, ans.message) or \
                faults.links_down(self.k, ns, f.dst, ans.message, self.lab) or \
                (f"no route to {f.dst} in {ns}: {ans.message}", self.lab.route_fix(ns, f.dst))
            commands = [cmd, f"ip -n {ns} route"]
            if self.stack and not iif:  # the VXLAN driver found no route for the outer packet and dropped it
                why += f" (the VXLAN device {self._on(iif)} drops the packet it wrapped, counted in its TX errors)"
                commands.append(f"ip -n {ns} -s link show {self._on(iif)}")
            return self._no_route(ns, self._on(iif), f"route get {f.dst}", commands, why, fix, ans.message)
        missing = faults.pod_cidr_by_default(self.lab, ns, f.dst, ans.matched, self.k) \
            if ans.type == "unicast" else None
        if missing:  # the node's own fault, although the packet goes on to die at the underlay's gateway
            return self._drop(ns, ans.oif or "-", f"route get {f.dst} → {ans.matched}", [cmd, f"ip -n {ns} route"],
                              *missing)
        gone = faults.route_gone_with_link(self.k, self.lab, ns, f.dst, ans.oif, ans.matched) \
            if ans.type == "unicast" else None
        if gone is not None:
            # The packet goes on by the wider route (the rows after it show where, and where it is lost), but the
            # down link is why: blamed here however far it goes (Hop.cause).
            dev, why, fix = gone
            self.rows.add(ns, dev, "link", f"{dev} is down, its routes gone with it: route get {f.dst} → "
                          f"{ans.matched}", [f"ip -n {ns} -br link show {dev}", cmd], problem=why, fix=fix, cause=True)
        if ans.type == "local":
            return self._local_in(ns, iif, ans, cmd)
        if ans.type != "unicast" or not ans.oif:
            why = f"the route to {f.dst} in {ns} is {ans.type}" + (f" ({ans.matched})" if ans.matched else "")
            self.rows.add(ns, self._on(iif), "drop", f"route get {f.dst}: {ans.type}", [cmd],
                          problem=why + ": the kernel drops it")
            return self._stop(why)
        return self._forward(ns, iif, ans, cmd)

    def _no_route(self, ns: str, dev: str, decision: str, commands: list[str], why: str, fix: str | None,
                  message: str) -> Walk:
        """A lookup the kernel refused (``message``, as `ip route get` prints it). A socket's own packet then
        leaves by no device: where a link set down took its routes with it (a pod's eth0), that link is the device
        the kernel has there."""
        down = faults.down_links(self.k, ns) if dev == "-" else []
        decision += f": {message}"
        if down:
            dev = down[0]
            decision += f" ({dev} is down: no route left through it)"
            commands = commands + [f"ip -n {ns} link show {dev}"]
        return self._drop(ns, dev, decision, commands, why, fix, error=message, up=False if down else None)

    def _drop(self, ns: str, dev: str, decision: str, commands: list[str], why: str, fix: str | None,
              kind: str = "drop", **facts: Any) -> Walk:
        """A row that loses the packet here, and the end of the walk."""
        self.rows.add(ns, dev, kind, decision, commands, problem=why, fix=fix, **facts)
        return self._stop(why)

    def _forward(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str) -> State | Walk:
        """Out through the route's device: POSTROUTING, the route (or encapsulation) row, the next hop's MAC."""
        oif = ans.oif or ""
        link = self.k.links(ns).get(oif)
        before = self.flow
        snat = self._snat(ns)  # POSTROUTING happens before the packet is seen leaving
        down = None
        if link is not None and not link.up:
            down = f"{oif} in {ns} is down: the kernel drops what it routes there"
        via = f" via {ans.gateway}" if ans.gateway else ""
        src = f" src {ans.prefsrc}" if ans.prefsrc and not iif else ""
        matched = f"; matched: {ans.matched}" if ans.matched else ""
        problem = down if snat is None else None  # a down device is named on the last row written here
        if self.stack and not self.stack[-1].shown:
            enc = self.stack[-1]
            enc.shown = True
            self.rows.add(ns, oif, "encap",
                          f"VXLAN: the frame {enc.src_mac} → {enc.dst_mac} goes into UDP {self.flow.src} → "
                          f"{self.flow.dst}:{self.flow.dport}, VNI {enc.vni}; "
                          f"route get {self.flow.dst} →{via} dev {oif}{matched}",
                          [cmd, f"ip -n {ns} -d link show {enc.vxdev}"], self._obs(ns, oif, "out"), problem,
                          vni=enc.vni, outer_src=self.flow.src, outer_dst=self.flow.dst, outer_dport=self.flow.dport,
                          oif=oif)
        else:
            fwd = " (forwarded)" if iif else ""
            self.rows.add(ns, oif, "route", f"route get {before.dst} →{via} dev {oif}{src}{fwd}{matched}",
                          [cmd], self._obs(ns, oif, "out"), problem, oif=oif, gateway=ans.gateway, prefsrc=ans.prefsrc,
                          matched=ans.matched, iif=iif)
        if snat is not None:
            old, hit = snat
            self.rows.add(ns, oif, "snat", nat.describe(self.lab, "src", hit, old, self.flow),
                          nat.commands(self.lab, ns, hit, "src"), self._obs(ns, oif, "out"), down,
                          conntrack=hit.entry.text())
        if link is None:
            return self._stop(f"{oif} is not a device the kernel listed in {ns}")
        if down:
            return self._stop(down)
        neigh = self._neigh(ns, oif, ans.gateway or self.flow.dst, link)
        if isinstance(neigh, Walk):
            return neigh
        mac = neigh.lladdr or ""
        if link.kind == "vxlan":
            return self._vxlan_out(ns, link, mac)
        if link.kind == "bridge":
            # Bridged DNAT: the frame never left the bridge, it goes on from the port it came in on.
            ingress = self._port_in if self._unseen == (ns, link.name) else None
            return self._bridge_forward(ns, link, mac, ingress=ingress)
        return self._leave(ns, oif, mac)

    def _vxlan_out(self, ns: str, link: LinkFacts, mac: str) -> State | Walk:
        """The VXLAN device's FDB names the remote VTEP for ``mac``; the frame goes into UDP to it."""
        vx = link.vxlan
        entries = [e for e in self.k.fdb(ns) if e.dev == link.name and e.dst]
        hit = [e for e in entries if e.lladdr.lower() == mac.lower()]
        default = [e for e in entries if e.lladdr == ZERO_MAC]
        cmd = f"bridge -n {ns} fdb show dev {link.name}"
        if not hit and not default:
            why = (f"no FDB entry for {mac} on {link.name}: the VXLAN driver does not know which node has that MAC "
                   f"({'nolearning, ' if vx and not vx.learning else ''}no default destination) and drops the frame")
            self.rows.add(ns, link.name, "fdb", f"FDB lookup {mac}: no entry", [cmd], self._obs(ns, link.name, "out"),
                          problem=why, fix=self.lab.planned_fdb.get((ns, link.name, mac.lower())))
            return self._stop(why)
        entry = (hit or default)[0]
        remote = entry.dst or ""
        stale = faults.unknown_vtep(self.lab, remote) or faults.own_vtep(remote, vx.local if vx else None, link.name)
        planned = self.lab.planned_fdb.get((ns, link.name, mac.lower()))
        # The entry is there with the wrong VTEP: the kernel appends another remote to a zero or multicast MAC's
        # entry only (an append to a unicast one changes nothing), so the fix replaces its remote.
        fix = planned.replace(" fdb append ", " fdb replace ", 1) if stale and planned else None
        self.rows.add(ns, link.name, "fdb",
                      f"FDB entry: {entry.text()} → remote VTEP {self.lab.name_ip(remote)}", [cmd],
                      self._obs(ns, link.name, "out"), stale, fix, lladdr=mac, remote_vtep=remote)
        if stale:
            return self._stop(stale)
        if vx is None:
            return self._stop(f"{link.name} has no VXLAN settings")
        self.stack.append(_Encap(self.flow, vx.vni, link.name, link.mac, mac))
        self.flow = Flow("udp", vx.local, remote, None, vx.port)
        if not vx.local:
            src = self._source(ns, remote)
            if isinstance(src, Walk):
                return src
            self.flow = self.flow.with_src(src, None)
        return self._route(ns, None)

    def _source(self, ns: str, dst: str) -> str | Walk:
        """The source address the kernel picks for a socket here sending to ``dst``."""
        try:
            return self.k.route_get(ns, dst).prefsrc or "0.0.0.0"
        except RouteFailure as exc:
            why, fix = faults.links_down(self.k, ns, dst, exc.message, self.lab) or \
                (f"no route to {dst} in {ns}: {exc.message}", None)
            return self._no_route(ns, self._on(None), f"route get {dst}", [f"ip -n {ns} route get {dst}"], why, fix,
                                  exc.message)

    def _leave(self, ns: str, dev: str, mac: str) -> State | Walk:
        """Out of a veth: the frame arrives on its peer, in the namespace the plan puts it."""
        peer = self.lab.peers.get((ns, dev))
        if peer is None:
            return self._stop(f"{dev} in {ns} leads nowhere the lab knows (not a veth of the lab)")
        size = self._wire_size()
        own = self.k.links(ns).get(dev)
        # Only a packet with DF is refused by the device it leaves by: the request `trace --size` sends (ping -M do).
        # A VXLAN packet is fragmented instead (the driver leaves DF unset on the outer header; Flannel sets no df),
        # and so is an echo reply (the kernel answers pings without DF).
        if (self.stack or self.role == "reply") and own is not None and own.mtu and size > own.mtu:
            self._fragments = size = own.mtu
        big = faults.too_big(own, size, ns, dev, (ns, dev), own=True) or \
            faults.too_big(self.k.links(peer[0]).get(peer[1]), size, ns, dev, peer)
        if big:
            return self._drop(ns, dev, big[0], [f"ip -n {peer[0]} link show {peer[1]}"], *big, kind="mtu")
        return FrameIn(peer[0], peer[1], mac)

    def _frame_in(self, s: FrameIn) -> State | Walk:
        """A frame on a device: dropped (device down, not our MAC), switched by its bridge, or up to IP."""
        ns, dev, mac = s.netns, s.dev, s.mac
        self._unseen = None
        links = self.k.links(ns)
        link = links.get(dev)
        src_peer = self.lab.peers.get((ns, dev))
        came = f"from {src_peer[1]} in {src_peer[0]} (its veth peer)" if src_peer else ""
        if link is None:
            why = f"{dev} does not exist in {ns}"
            self.rows.add(ns, dev, "arrive", f"arrives {came}", problem=why)
            return self._stop(why)
        if not link.up:
            why = f"{dev} in {ns} is down: the kernel drops what arrives on it"
            self.rows.add(ns, dev, "arrive", f"arrives {came}", [f"ip -n {ns} -br link show {dev}"],
                          self._obs(ns, dev, "in"), problem=why)
            return self._stop(why)
        if link.master:
            bridge = links.get(link.master)
            # A port the kernel holds out of forwarding (set by hand, or STP) drops what arrives on it.
            blocked = self._port_blocked(ns, bridge, dev, "") if bridge is not None and bridge.up else None
            self.rows.add(ns, dev, "arrive", f"arrives {came}; {dev} is a port of bridge {link.master}",
                          [f"ip -n {ns} -br link show master {link.master}"]
                          + ([f"bridge -n {ns} link show dev {dev}"] if blocked else []), self._obs(ns, dev, "in"),
                          *(blocked or (None, None)))
            if blocked is not None:
                return self._stop(blocked[0])
            if bridge is None:
                return self._stop(f"bridge {link.master} of {dev} not found in {ns}")
            if not bridge.up:
                why = f"bridge {bridge.name} in {ns} is down: it forwards nothing from its ports"
                self.rows.add(ns, bridge.name, "bridge", f"bridge {bridge.name} is down",
                              [f"ip -n {ns} -br link show {bridge.name}"], self._obs(ns, bridge.name, "in"),
                              problem=why, fix=f"ip -n {ns} link set {bridge.name} up")
                return self._stop(why)
            # The bridge's own MAC and its ports' MACs are its "permanent" local FDB entries.
            local = {bridge.mac} | {p.mac for p in links.values() if p.master == bridge.name and p.mac}
            if mac in local:
                return IpIn(ns, bridge.name, bridge_mac=mac, port=dev)
            self._bridged_nat(ns, dev)
            return self._bridge_forward(ns, bridge, mac, ingress=dev)
        if link.mac and mac not in (link.mac, BROADCAST):
            why = f"the frame is for {mac} but {dev} in {ns} is {link.mac}: the kernel drops it (not for this host)"
            self.rows.add(ns, dev, "arrive", f"arrives {came}", [f"ip -n {ns} link show {dev}"],
                          self._obs(ns, dev, "in"), problem=why)
            return self._stop(why)
        return IpIn(ns, dev, came=came)

    def _ip_in(self, s: IpIn) -> State | Walk:
        """The IP layer: this namespace's DNAT (from conntrack), then the route lookup decides."""
        ns, iif = s.netns, s.dev
        self._port_in = s.port
        seen = self._obs(ns, iif, "in")  # the packet as it arrives, before this namespace's DNAT
        if s.bridge_mac is None:
            self.rows.hold_arrival(ns, iif, f"arrives{' ' + s.came if s.came else ''}: {self.flow}", seen)
        new, nat_row = self._prerouting(ns, iif)
        if new is not None:
            self.flow = new
        ans, cmd = self._lookup(ns, iif)
        if s.bridge_mac is not None:
            self.rows.emit(self._handed_up(ns, iif, s.bridge_mac, seen, new, ans))
        return self._emit_nat(nat_row) or self._decide(ns, iif, ans, cmd)

    def _handed_up(self, ns: str, bridge: str, mac: str, seen: Observe | None, new: Flow | None,
                   ans: RouteFacts | RouteFailure) -> Hop:
        """The row of a bridge handing a frame for its own MAC up to the IP layer.

        With br_netfilter (bridge-nf-call-iptables=1) nat PREROUTING runs at the
        bridge port, so the capture may see the packet on the bridge before or
        after the DNAT. When the new destination is behind the same bridge,
        br_nf_pre_routing_finish() switches the frame straight back into the
        bridge ("bridged DNAT"): it never shows on the bridge device itself.
        """
        if new is not None and isinstance(ans, RouteFacts) and ans.type == "unicast" and ans.oif == bridge \
                and self.k.bridge_nf(ns):
            self._unseen = (ns, bridge)
            return self.rows.row(ns, bridge, "bridge",
                                 f"dst MAC is {bridge}'s own, but br_netfilter DNATs at the bridge port and the new "
                                 f"destination is behind {bridge} too: the frame is switched straight back into the "
                                 f"bridge (never seen on {bridge} itself)",
                                 [f"ip netns exec {ns} sysctl net.bridge.bridge-nf-call-iptables"])
        if new is not None and seen is not None:
            seen = replace(seen, alt=new)
        return self.rows.row(ns, bridge, "bridge",
                             f"dst MAC {mac} is {bridge}'s own: the frame goes up to the IP layer",
                             [f"bridge -n {ns} fdb show br {bridge} | grep permanent"], seen)

    def _local_in(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str) -> State | Walk:
        """For this namespace: a VXLAN packet is decapsulated and routed again; anything else is delivered."""
        f = self.flow
        if self.stack and f.proto == "udp":
            vx = next((l for l in self.k.links(ns).values() if l.vxlan and l.vxlan.port == f.dport), None)
            enc = self.stack[-1]
            if vx is None or vx.vxlan is None:
                why = f"UDP port {f.dport} is local in {ns} but no VXLAN device listens there: the kernel drops it"
                self.rows.add(ns, iif or "-", "decap", f"route get {f.dst} → local", [cmd],
                              self._obs(ns, iif or "lo", "in"), problem=why)
                return self._stop(why)
            self.rows.add(ns, iif or "lo", "decap",
                          f"route get {f.dst} → local; UDP {f.dport} belongs to {vx.name} "
                          f"(VNI {vx.vxlan.vni}): decapsulate",
                          [cmd, f"ip -n {ns} -d link show {vx.name}"], self._obs(ns, iif or "lo", "in"),
                          vni=enc.vni, vxlan_device=vx.name)
            problem = None
            if vx.vxlan.vni != enc.vni:
                problem = (f"the packet carries VNI {enc.vni} but {vx.name} in {ns} is VNI {vx.vxlan.vni}: dropped "
                           f"(the sender, {self.lab.name_ip(f.src)}, has a VXLAN device of another VNI)")
            elif vx.mac and enc.dst_mac.lower() != vx.mac.lower():
                problem = (f"the inner frame is for {enc.dst_mac} but {vx.name} in {ns} is {vx.mac}: the kernel drops "
                           "it (stale ARP/FDB entries on the sending node?)")
            self.flow = enc.inner
            self.stack.pop()
            self._fragments = 0  # reassembled here
            frame = f"inner frame {enc.src_mac} → {enc.dst_mac}"
            text = (f"{frame} reaches {vx.name} ({vx.mac}): {self.flow}" if problem
                    else f"{frame} ({vx.name}'s MAC) enters the IP layer: {self.flow}")
            commands = [f"ip -n {ns} -br link show {vx.name}"]
            seen = self._obs(ns, vx.name, "in")
            if problem:
                self.rows.add(ns, vx.name, "arrive", text, commands, seen, problem=problem)
                return self._stop(problem)
            new, nat_row = self._prerouting(ns, vx.name)
            if new is not None and seen is not None:
                seen = replace(seen, alt=new)  # the capture on the VXLAN device may show it either way
            self.rows.add(ns, vx.name, "arrive", text, commands, seen)
            dropped = self._emit_nat(nat_row)
            if dropped is not None:
                return dropped
            if new is not None:
                self.flow = new
            return self._route(ns, vx.name)
        # The capture sees the packet as it came in, before this namespace's NAT.
        seen = self._obs(ns, iif or "lo", "in")
        before = self._pre_nat.get(ns)
        if seen is not None and before is not None:
            seen = replace(seen, flow=before, alt=seen.flow)
        snat = self._snat(ns)  # INPUT: a reply to this namespace's own DNATed connection gets its source back
        if snat is not None:
            old, hit = snat
            self.rows.add(ns, iif or "lo", "snat", nat.describe(self.lab, "src", hit, old, self.flow),
                          nat.commands(self.lab, ns, hit, "src"), None, conntrack=hit.entry.text())
            f = self.flow
        # A socket's packet to its own namespace's address goes through lo (loopback_xmit): seen there.
        how = "delivered" if iif else "the kernel loops it back through lo: delivered, it never leaves " + ns
        self.rows.add(ns, iif or "lo", "deliver",
                      f"route get {f.dst} → local: {self.lab.name_ip(f.dst)} is this namespace's own address; {how}",
                      [cmd], seen)
        return Walk(self.rows.hops, "delivered", f, ns)


def walk(kernel: Kernel, lab: LabMap, netns: str, flow: Flow, role: str = "request",
         direction: str = "forward", size: int = 0) -> Walk:
    """``size``: the packet's IP length when it matters (a full-size echo); 0: small, never too big."""
    w = Walker(kernel, lab, role=role, direction=direction)
    w.size = size
    return w.walk(netns, flow)
