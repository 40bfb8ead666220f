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

Everything here is pure: the kernel is behind the
:class:`~netlab.trace.facts.Kernel` protocol (kernel.py answers from netlink;
the unit tests answer from a fake).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Iterable

from netlab.trace.facts import CtEntry, Kernel, LinkFacts, NeighFacts, RouteFacts, RouteFailure
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.labmap import LabMap

NEIGH_OK = ("PERMANENT", "REACHABLE", "STALE", "DELAY", "PROBE", "NOARP")
BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"


@dataclass
class _Encap:
    inner: Flow
    vni: int
    vxdev: str  # the VXLAN device that encapsulated
    src_mac: str | None
    dst_mac: str
    shown: bool = False  # the encapsulation row was written


class Walker:
    """Follows one packet through the lab, asking the kernel at every namespace.

    States: ``out`` (a socket in this namespace sent it), ``l2`` (a frame arrives
    on a device, addressed to a MAC), ``l3`` (the IP layer of a namespace got it
    from a device).
    """

    MAX_STEPS = 64

    def __init__(self, kernel: Kernel, lab: LabMap, role: str = "request", direction: str = "forward"):
        self.k = kernel
        self.lab = lab
        self.role = role
        self.direction = direction
        self.hops: list[Hop] = []
        self.stack: list[_Encap] = []
        self.flow: Flow | None = None
        self._ct_hit: dict[str, tuple[CtEntry, str]] = {}
        self._arrived_from = ""
        # An arrival row (netns, device, text, observe), written before the next row unless that
        # row is the delivery or decapsulation on the same device, which then says it all.
        self._pending: tuple[str, str, str, Observe | None] | None = None
        self._bridged_dnat: tuple | None = None
        self._unseen: tuple[str, str] | None = None

    # -- helpers

    def _links(self, netns: str) -> dict[str, LinkFacts]:
        return self.k.links(netns)

    def _obs(self, netns: str, ifname: str, direction: str) -> Observe | None:
        if (netns, ifname) == self._unseen:
            return None  # a device the kernel skips for this packet (bridged DNAT)
        inner = self.stack[0].inner if self.stack else self.flow
        return Observe(netns, ifname, direction, inner, self.role, encapsulated=bool(self.stack))

    def _add(self, netns: str, device: str, kind: str, decision: str, commands: Iterable[str] = (),
             observe: Observe | None = None, problem: str | None = None, fix: str | None = None,
             **facts: Any) -> Hop:
        pending = self._pending
        if pending is not None:
            if kind in ("deliver", "decap") and (netns, device) == pending[:2]:
                self._pending = None
                decision = f"{pending[2]}; {decision}"  # one row: it arrived here and stays here
            else:
                self._flush()
        hop = Hop(netns=netns, where=self.lab.where(netns), device=device, kind=kind, decision=decision,
                  commands=list(commands), observe=observe, problem=problem, fix=fix,
                  facts={k: v for k, v in facts.items() if v is not None}, direction=self.direction)
        self.hops.append(hop)
        return hop

    def _flush(self) -> None:
        p, self._pending = self._pending, None
        if p is not None:
            self._add(p[0], p[1], "arrive", p[2], [f"ip -n {p[0]} -br addr show {p[1]}"], p[3])

    def _stop(self, reason: str) -> Walk:
        return Walk(self.hops, "stopped", self.flow, None, reason)

    # -- the walk

    def walk(self, netns: str, flow: Flow) -> Walk:
        self.flow = flow
        state: tuple | Walk = ("out", netns)
        for _ in range(self.MAX_STEPS):
            if isinstance(state, Walk):
                self._flush()
                return state
            kind = state[0]
            try:
                if kind == "out":
                    state = self._local_out(state[1])
                elif kind == "l2":
                    state = self._l2_in(state[1], state[2], state[3])
                else:
                    state = self._l3_in(state[1], state[2])
            except RouteFailure as exc:  # raised by route lookups outside _route()
                self._flush()
                return self._stop(exc.message)
        self._flush()
        if isinstance(state, Walk):
            return state
        return Walk(self.hops, "loop", self.flow, None, f"more than {self.MAX_STEPS} steps: a routing loop?")

    def _local_out(self, ns: str) -> tuple | Walk:
        f = self.flow
        if not f.src:
            # The kernel picks the source address from the route to the original destination.
            src = self._source(ns, f.dst)
            if isinstance(src, Walk):
                return src
            self.flow = f.with_src(src, f.sport)
        self._dnat(ns, None)  # OUTPUT: a node reaching a Service is DNATed here
        return self._route(ns, None)

    def _route(self, ns: str, iif: str | None) -> tuple | Walk:
        f = self.flow
        cmd = f"ip -n {ns} route get {f.dst} from {f.src}" + (f" iif {iif}" if iif else "")
        try:
            ans = self.k.route_get(ns, f.dst, src=f.src, iif=iif)
        except RouteFailure as exc:
            why = f"no route to {f.dst} in {ns}: {exc.message}"
            self._add(ns, iif or "-", "drop", f"route get {f.dst}: {exc.message}", [cmd, f"ip -n {ns} route"],
                      problem=why, fix=self._planned_route(ns, f.dst))
            return self._stop(why)
        if ans.type == "local":
            return self._local_in(ns, iif, ans, cmd)
        if ans.type != "unicast" or not ans.oif:
            why = f"the route to {f.dst} in {ns} is {ans.type}" + (f" ({ans.matched})" if ans.matched else "")
            self._add(ns, iif or "-", "drop", f"route get {f.dst}: {ans.type}", [cmd], problem=why + ": the kernel drops it")
            return self._stop(why)
        return self._forward(ns, iif, ans, cmd)

    def _forward(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str) -> tuple | Walk:
        links = self._links(ns)
        oif = ans.oif
        link = links.get(oif)
        before = self.flow
        bridged, self._bridged_dnat = self._bridged_dnat, None
        if bridged and (bridged[0], bridged[1]) != (ns, oif):
            bridged = None
        if bridged:
            up = bridged[2]
            up.observe = None
            up.decision = (f"dst MAC is {oif}'s own, but br_netfilter DNATs at the bridge port and the new "
                           f"destination is behind {oif} too: the frame is switched straight back into the bridge "
                           f"(never seen on {oif} itself)")
            up.commands = [f"ip netns exec {ns} sysctl net.bridge.bridge-nf-call-iptables"]
            self._unseen = (ns, oif)
        snat = self._snat(ns)  # POSTROUTING happens before the packet is seen leaving
        via = f" via {ans.gateway}" if ans.gateway else ""
        src = f" src {ans.prefsrc}" if ans.prefsrc and not iif else ""
        matched = f"; matched: {ans.matched}" if ans.matched else ""
        if self.stack and not self.stack[-1].shown:
            enc = self.stack[-1]
            enc.shown = True
            self._add(ns, oif, "encap",
                      f"VXLAN: the frame {enc.src_mac} → {enc.dst_mac} goes into UDP {self.flow.src} → "
                      f"{self.flow.dst}:{self.flow.dport}, VNI {enc.vni}; route get {self.flow.dst} →{via} dev {oif}"
                      f"{matched}",
                      [cmd, f"ip -n {ns} -d link show {enc.vxdev}"], self._obs(ns, oif, "out"),
                      vni=enc.vni, outer_src=self.flow.src, outer_dst=self.flow.dst, outer_dport=self.flow.dport,
                      oif=oif)
        else:
            fwd = " (forwarded)" if iif else ""
            self._add(ns, oif, "route", f"route get {before.dst} →{via} dev {oif}{src}{fwd}{matched}",
                      [cmd], self._obs(ns, oif, "out"), oif=oif, gateway=ans.gateway, prefsrc=ans.prefsrc,
                      matched=ans.matched, iif=iif)
        if snat is not None:
            old, entry, d = snat
            self._add(ns, oif, "snat", self._nat_text("src", d, old, self.flow, entry),
                      self._ct_commands(ns, entry), self._obs(ns, oif, "out"), conntrack=entry.text())
        if link is None:
            return self._stop(f"{oif} is not a device the kernel listed in {ns}")
        if not link.up:
            why = f"{oif} in {ns} is down: the kernel drops what it routes there"
            self.hops[-1].problem = why
            return self._stop(why)
        nexthop = ans.gateway or self.flow.dst
        neigh = self._neigh(ns, oif, nexthop, link)
        if neigh is None:
            return self._stop(self.hops[-1].problem or f"no neighbour entry for {nexthop} on {oif}")
        mac = neigh.lladdr
        if link.kind == "vxlan":
            return self._vxlan_out(ns, link, mac)
        if link.kind == "bridge":
            return self._bridge_forward(ns, link, mac, ingress=None)
        return self._leave(ns, oif, mac)

    def _neigh(self, ns: str, dev: str, ip: str, link: LinkFacts) -> NeighFacts | None:
        n = self.k.neigh(ns, dev, ip)
        cmd = f"ip -n {ns} neigh show {ip} dev {dev}"
        whose = self.lab.name_ip(ip)
        if n is not None and n.state in NEIGH_OK and n.lladdr:
            self._add(ns, dev, "neigh", f"ARP entry: {whose} is at {n.lladdr} ({n.state})", [cmd],
                      self._obs(ns, dev, "out"), lladdr=n.lladdr, state=n.state, ip=ip)
            return n
        state = n.state if n else "no entry"
        default = [e for e in self.k.fdb(ns) if e.dev == dev and e.lladdr == ZERO_MAC and e.dst] \
            if link.kind == "vxlan" else []
        if link.kind == "vxlan" and link.vxlan and not link.vxlan.learning and not default:
            why = (f"no ARP entry for {ip} on {dev} ({state}): a nolearning VXLAN device cannot resolve it "
                   f"(its ARP requests have no FDB entry to go to and are dropped); Flannel writes this entry "
                   f"statically for every remote node")
        elif link.kind == "vxlan":
            where = ", ".join(e.dst for e in default) or "the learned VTEPs"
            why = (f"no ARP answer for {ip} on {dev} ({state}): its ARP requests went to {where} in VXLAN and "
                   f"nobody answered")
        elif n is None:
            why = f"no ARP entry for {ip} on {dev}: the packet never made the kernel ask (it did not get here?)"
        else:
            why = f"no ARP answer for {ip} on {dev} ({state}): nothing on that link answers for {whose}"
        fix = self.lab.planned_neigh.get((ns, dev, ip))
        self._add(ns, dev, "neigh", f"ARP entry for {whose}: {state}", [cmd], self._obs(ns, dev, "out"),
                  problem=why, fix=fix, state=state, ip=ip)
        return None

    def _vxlan_out(self, ns: str, link: LinkFacts, mac: str) -> tuple | Walk:
        vx = link.vxlan
        entries = [e for e in self.k.fdb(ns) if e.dev == link.name and e.dst]
        hit = [e for e in entries if e.lladdr.lower() == mac.lower()]
        default = [e for e in entries if e.lladdr == ZERO_MAC]
        cmd = f"bridge -n {ns} fdb show dev {link.name}"
        if not hit and not default:
            why = (f"no FDB entry for {mac} on {link.name}: the VXLAN driver does not know which node has that MAC "
                   f"({'nolearning, ' if vx and not vx.learning else ''}no default destination) and drops the frame")
            self._add(ns, link.name, "fdb", f"FDB lookup {mac}: no entry", [cmd], self._obs(ns, link.name, "out"),
                      problem=why, fix=self.lab.planned_fdb.get((ns, link.name, mac.lower())))
            return self._stop(why)
        entry = (hit or default)[0]
        remote = entry.dst
        self._add(ns, link.name, "fdb",
                  f"FDB entry: {entry.text()} → remote VTEP {self.lab.name_ip(remote)}", [cmd],
                  self._obs(ns, link.name, "out"), lladdr=mac, remote_vtep=remote)
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
            why = f"no route to {dst} in {ns}: {exc.message}"
            self._add(ns, "-", "drop", f"route get {dst}: {exc.message}", [f"ip -n {ns} route get {dst}"], problem=why)
            return self._stop(why)

    def _leave(self, ns: str, dev: str, mac: str) -> tuple | Walk:
        peer = self.lab.peers.get((ns, dev))
        if peer is None:
            why = f"{dev} in {ns} leads nowhere the lab knows (not a veth of the lab)"
            return self._stop(why)
        return ("l2", peer[0], peer[1], mac)

    def _bridge_forward(self, ns: str, bridge: LinkFacts, mac: str, ingress: str | None) -> tuple | Walk:
        """A frame switched by ``bridge`` towards ``mac``: which port (FDB), then that port's veth peer."""
        links = self._links(ns)
        cmd = f"bridge -n {ns} fdb show br {bridge.name}"
        entries = [e for e in self.k.fdb(ns) if e.master == bridge.name and e.lladdr.lower() == mac.lower()]
        if entries:
            port = entries[0].dev
            how = f"FDB: {mac} is behind port {port} ({entries[0].state})"
        else:
            port = None
            for name, link in links.items():
                if link.master != bridge.name:
                    continue
                peer = self.lab.peers.get((ns, name))
                if peer and self.k.links(peer[0]).get(peer[1], None) and self.k.links(peer[0])[peer[1]].mac == mac:
                    port = name
                    break
            if port is None:
                why = f"{mac} is in no FDB entry of {bridge.name} and behind none of its ports: the flood finds nobody"
                self._add(ns, bridge.name, "bridge", f"FDB lookup {mac}: unknown", [cmd],
                          self._obs(ns, bridge.name, "out"), problem=why)
                return self._stop(why)
            how = f"{mac} is not in the FDB yet: the bridge floods the frame; it reaches port {port}"
        if port == ingress and not links[port].hairpin:
            why = (f"{mac} is behind {port}, the port the frame came in on: a bridge only sends a frame back out "
                   f"its ingress port in hairpin mode (bridge -n {ns} link set dev {port} hairpin on)")
            self._add(ns, port, "bridge", f"bridge {bridge.name}: {how}", [cmd, f"bridge -n {ns} -d link show dev {port}"],
                      self._obs(ns, port, "out"), problem=why)
            return self._stop(why)
        peer = self.lab.peers.get((ns, port))
        peer_text = f" (veth peer: {peer[1]} in {peer[0]})" if peer else ""
        hair = " (hairpin)" if port == ingress else ""
        self._add(ns, port, "bridge", f"bridge {bridge.name}: {how}{hair}{peer_text}", [cmd],
                  self._obs(ns, port, "out"), port=port, lladdr=mac)
        if peer is None:
            return self._stop(f"port {port} of {bridge.name} in {ns} leads nowhere the lab knows")
        return ("l2", peer[0], peer[1], mac)

    def _l2_in(self, ns: str, dev: str, mac: str) -> tuple | Walk:
        self._unseen = None
        links = self._links(ns)
        link = links.get(dev)
        src_peer = self.lab.peers.get((ns, dev))
        came = f"from {src_peer[1]} in {src_peer[0]} (its veth peer)" if src_peer else ""
        if link is None:
            why = f"{dev} does not exist in {ns}"
            self._add(ns, dev, "arrive", f"arrives {came}", problem=why)
            return self._stop(why)
        if not link.up:
            why = f"{dev} in {ns} is down: the kernel drops what arrives on it"
            self._add(ns, dev, "arrive", f"arrives {came}", [f"ip -n {ns} -br link show {dev}"],
                      self._obs(ns, dev, "in"), problem=why)
            return self._stop(why)
        if link.master:
            bridge = links.get(link.master)
            self._add(ns, dev, "arrive", f"arrives {came}; {dev} is a port of bridge {link.master}",
                      [f"ip -n {ns} -br link show master {link.master}"], self._obs(ns, dev, "in"))
            if bridge is None:
                return self._stop(f"bridge {link.master} of {dev} not found in {ns}")
            if not bridge.up:
                why = f"bridge {bridge.name} in {ns} is down: it forwards nothing from its ports"
                self._add(ns, bridge.name, "bridge", f"bridge {bridge.name} is down", [f"ip -n {ns} -br link show {bridge.name}"],
                          self._obs(ns, bridge.name, "in"), problem=why, fix=f"ip -n {ns} link set {bridge.name} up")
                return self._stop(why)
            # The bridge's own MAC and its ports' MACs are its "permanent" local FDB entries.
            local = {bridge.mac} | {p.mac for p in links.values() if p.master == bridge.name and p.mac}
            if mac in local:
                self._add(ns, bridge.name, "bridge",
                          f"dst MAC {mac} is {bridge.name}'s own: the frame goes up to the IP layer",
                          [f"bridge -n {ns} fdb show br {bridge.name} | grep permanent"],
                          self._obs(ns, bridge.name, "in"))
                return ("l3", ns, bridge.name)
            return self._bridge_forward(ns, bridge, mac, ingress=dev)
        if link.mac and mac not in (link.mac, BROADCAST):
            why = f"the frame is for {mac} but {dev} in {ns} is {link.mac}: the kernel drops it (not for this host)"
            self._add(ns, dev, "arrive", f"arrives {came}", [f"ip -n {ns} link show {dev}"],
                      self._obs(ns, dev, "in"), problem=why)
            return self._stop(why)
        self._arrived_from = came
        return ("l3", ns, dev)

    def _l3_in(self, ns: str, iif: str) -> tuple | Walk:
        last = self.hops[-1] if self.hops else None
        came = self._arrived_from
        self._arrived_from = ""
        pre = self._obs(ns, iif, "in")
        already = last is not None and last.observe is not None and (last.observe.netns, last.observe.ifname,
                                                                     last.observe.direction) == (ns, iif, "in")
        f = self.flow
        if not already:
            self._pending = (ns, iif, f"arrives{' ' + came if came else ''}: {f}", pre)
        if self._dnat(ns, iif) and already and last.kind == "bridge" and self.k.bridge_nf(ns):
            # br_netfilter ran nat PREROUTING at the bridge port; if the new destination is
            # behind the same bridge, br_nf_pre_routing_finish() switches the frame straight
            # back into the bridge ("bridged DNAT"): it never shows on the bridge device.
            self._bridged_dnat = (ns, iif, last)
        return self._route(ns, iif)

    def _planned_route(self, ns: str, dst: str) -> str | None:
        """The plan's most specific route in ``ns`` that covers ``dst`` (the fix for a missing route)."""
        best = None
        for (rns, cidr), cmd in self.lab.planned_route.items():
            net = IPv4Network(cidr)
            if rns == ns and IPv4Address(dst) in net and (best is None or net.prefixlen > best[0].prefixlen):
                best = (net, cmd)
        return best[1] if best else None

    def _local_in(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str) -> tuple | Walk:
        f = self.flow
        links = self._links(ns)
        if self.stack and f.proto == "udp":
            vx = next((l for l in links.values() if l.vxlan and l.vxlan.port == f.dport), None)
            enc = self.stack[-1]
            if vx is None:
                why = f"UDP port {f.dport} is local in {ns} but no VXLAN device listens there: the kernel drops it"
                self._add(ns, iif or "-", "decap", f"route get {f.dst} → local", [cmd], self._obs(ns, iif or "lo", "in"),
                          problem=why)
                return self._stop(why)
            self._add(ns, iif or "lo", "decap",
                      f"route get {f.dst} → local; UDP {f.dport} belongs to {vx.name} (VNI {vx.vxlan.vni}): decapsulate",
                      [cmd, f"ip -n {ns} -d link show {vx.name}"], self._obs(ns, iif or "lo", "in"),
                      vni=enc.vni, vxlan_device=vx.name)
            problem = None
            if vx.vxlan.vni != enc.vni:
                problem = f"the packet carries VNI {enc.vni} but {vx.name} in {ns} is VNI {vx.vxlan.vni}: dropped"
            elif vx.mac and enc.dst_mac.lower() != vx.mac.lower():
                problem = (f"the inner frame is for {enc.dst_mac} but {vx.name} in {ns} is {vx.mac}: the kernel drops "
                           "it (stale ARP/FDB entries on the sending node?)")
            self.flow = enc.inner
            self.stack.pop()
            self._add(ns, vx.name, "arrive",
                      f"inner frame {enc.src_mac} → {enc.dst_mac} ({vx.name}'s MAC) enters the IP layer: {self.flow}",
                      [f"ip -n {ns} -br link show {vx.name}"], self._obs(ns, vx.name, "in"), problem=problem)
            if problem:
                return self._stop(problem)
            self._dnat(ns, vx.name)
            return self._route(ns, vx.name)
        self._add(ns, iif or "lo", "deliver",
                  f"route get {f.dst} → local: {self.lab.name_ip(f.dst)} is this namespace's own address; delivered",
                  [cmd], self._obs(ns, iif or "lo", "in") if iif else None)
        return Walk(self.hops, "delivered", f, ns)

    # -- NAT, from the conntrack entry of the packet

    def _find_ct(self, ns: str) -> tuple[CtEntry, str] | None:
        if self.stack or ns not in self.lab.nat_netns:
            return None
        for e in self.k.conntrack(ns, self.flow.proto):
            d = e.direction_of(self.flow)
            if d:
                return e, d
        return None

    def _dnat(self, ns: str, iif: str | None) -> bool:
        """PREROUTING/OUTPUT: the destination change (a DNAT, or a reply's un-SNAT).

        The packet's conntrack entry and its direction are found here, once per
        namespace, before any translation; POSTROUTING (:meth:`_snat`) uses the same.
        """
        hit = self._find_ct(ns)
        if hit is None:
            svc = self.lab.service_for(self.flow.dst, self.flow.dport, self.flow.proto) if not self.stack else None
            if svc and ns in self.lab.nat_netns and self.direction == "forward":
                why = (f"{self.flow.endpoint('dst')} is Service {svc.name} but {ns} has no conntrack entry "
                       f"for this packet: it was not DNATed here")
                if not svc.endpoints:
                    why = f"Service {svc.name} has no endpoints: kube-proxy's filter rule rejects the packet"
                self._add(ns, iif or "-", "dnat", f"no DNAT for {self.flow}",
                          [f"ip netns exec {ns} conntrack -L -p {self.flow.proto} --orig-dst {self.flow.dst}"],
                          problem=why)
            return False
        entry, d = hit
        self._ct_hit[ns] = hit
        other = entry.reply if d == "orig" else entry.orig
        # An ICMP echo id is remapped by the SNAT side only: un-done here for a reply, kept for a request.
        keep_id = self.flow.proto == "icmp" and d == "orig"
        new = self.flow.with_dst(other.src, self.flow.dport if keep_id else other.sport)
        if new == self.flow:
            return False
        old, self.flow = self.flow, new
        last = self.hops[-1] if self.hops else None
        if iif and last is not None and last.observe is not None and last.netns == ns and last.device == iif \
                and last.observe.direction == "in" and not self.stack:
            last.observe = replace(last.observe, alt=new)
        self._add(ns, iif or "-", "dnat", self._nat_text("dst", d, old, new, entry), self._ct_commands(ns, entry),
                  None, conntrack=entry.text(), before=str(old), after=str(new), **self._svc_facts(old, new, d))
        return True

    def _snat(self, ns: str) -> tuple[Flow, CtEntry, str] | None:
        """POSTROUTING: the source change (masquerade, or a reply's un-DNAT)."""
        hit = self._ct_hit.pop(ns, None)
        if hit is None:
            return None
        entry, d = hit
        other = entry.reply if d == "orig" else entry.orig
        keep_id = self.flow.proto == "icmp" and d == "reply"
        new = self.flow.with_src(other.dst, self.flow.sport if keep_id else other.dport)
        if new == self.flow:
            return None
        old, self.flow = self.flow, new
        return old, entry, d

    def _svc_facts(self, old: Flow, new: Flow, d: str) -> dict[str, Any]:
        if d != "orig":
            return {}
        svc = self.lab.service_for(old.dst, old.dport, old.proto)
        if svc is None:
            return {}
        ep = next((e for e in svc.endpoints if e[0] == new.dst and e[1] == new.dport), None)
        out: dict[str, Any] = {"service": svc.name, "svc_chain": svc.svc_chain}
        if ep:
            out.update(endpoint=ep[2], endpoint_ip=ep[0], endpoint_port=ep[1], sep_chain=ep[3])
        return out

    def _nat_text(self, which: str, d: str, old: Flow, new: Flow, entry: CtEntry) -> str:
        if which == "dst" and d == "orig":
            svc = self.lab.service_for(old.dst, old.dport, old.proto)
            text = f"DNAT {old.endpoint('dst')} → {new.endpoint('dst')}"
            if svc:
                ep = next((e for e in svc.endpoints if e[0] == new.dst and e[1] == new.dport), None)
                who = f"endpoint {ep[2]}" if ep else f"endpoint {self.lab.name_ip(new.dst)}"
                sep = f" → {ep[3]}" if ep else ""
                text += f": Service {svc.name} picked {who} ({svc.svc_chain}{sep})"
            reply = entry.reply
            return text + (f"; conntrack will rewrite the replies {reply.endpoint('src')} → {reply.endpoint('dst')} "
                           f"to come from {old.endpoint('dst')}")
        if which == "dst":
            return (f"conntrack undoes the masquerade: destination {old.endpoint('dst')} → {new.endpoint('dst')} "
                    f"(a reply to a connection this namespace SNATed)")
        if d == "orig":
            return (f"MASQUERADE: source {old.endpoint('src')} → {new.endpoint('src')}; conntrack will rewrite the "
                    f"replies back to {old.endpoint('src')}")
        return (f"conntrack reverse translation (un-DNAT): source {old.endpoint('src')} → {new.endpoint('src')}, "
                f"so the client sees replies from the address it sent to")

    def _ct_commands(self, ns: str, entry: CtEntry) -> list[str]:
        o = entry.orig
        cmd = f"ip netns exec {ns} conntrack -L -p {o.proto} --orig-src {o.src} --orig-dst {o.dst}"
        return [cmd, f"ip netns exec {ns} iptables-save -c -t nat"]


def walk(kernel: Kernel, lab: LabMap, netns: str, flow: Flow, role: str = "request",
         direction: str = "forward") -> Walk:
    return Walker(kernel, lab, role=role, direction=direction).walk(netns, flow)

