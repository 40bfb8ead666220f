"""The walker's arrival steps: a frame reaching a device, the IP layer taking a packet, a delivery.

A frame on a device is dropped (the device down, a MAC not its own), switched
by the bridge the device is a port of (l2steps.py), or handed up to the IP
layer: by the bridge for its own MAC (with br_netfilter's DNAT at the port,
maybe switched straight back: "bridged DNAT"), or by a plain device. The IP
layer runs its DNAT (natsteps.py), then the route lookup decides
(routesteps.py); a packet for this namespace's own address is delivered (a
VXLAN packet unwrapped instead: vxlansteps.py).
"""

from __future__ import annotations

from dataclasses import replace

from netlab.trace import bridgeddnat, brnf
from netlab.trace.facts import RouteFacts, RouteFailure
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.states import FrameIn, IpIn, State
from netlab.trace.walkparts import WalkParts

BROADCAST = "ff:ff:ff:ff:ff:ff"


class ArrivalSteps(WalkParts):
    """The arrival half of :class:`~netlab.trace.walk.Walker` (it holds the packet and the rows)."""

    # from the Walker: _obs, _stop, _emit_nat; from RouteSteps: _lookup, _decide; from NatSteps:
    # _prerouting, _snat, _bridged_nat; from L2Steps: _port_blocked, _bridge_forward; from VxlanSteps: _decap

    def _frame_in(self, s: FrameIn) -> State | Walk:
        """A frame on a device: dropped (device down, not our MAC), switched by its bridge, or up to IP."""
        ns, dev, mac = s.netns, s.dev, s.mac
        self._unseen = None
        links = self.k.links(ns)
        link = links.get(dev)
        src_peer = self.lab.peers.get((ns, dev))
        came = s.came or (f"from {src_peer[1]} in {src_peer[0]} (its veth peer)" if src_peer else "")
        self._src_mac = self._sent_from(src_peer) if not s.came else None
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
            if self._src_mac:  # the bridge learns the frame's source MAC on this port before it decides anything
                self._taught[(ns, bridge.name, self._src_mac.lower())] = dev
            # The bridge's own MAC and its ports' MACs are its "permanent" local FDB entries.
            local = {bridge.mac} | {p.mac for p in links.values() if p.master == bridge.name and p.mac}
            if mac in local:
                return IpIn(ns, bridge.name, bridge_mac=mac, port=dev)
            self._bridged_nat(ns, dev)
            return self._bridge_forward(ns, bridge, mac, ingress=dev)
        child = self._child_in(ns, dev, mac) if not s.came else None
        if child is not None:  # a frame from the wire for a macvlan child of this device (macvlansteps.py)
            return child
        if link.mac and mac not in (link.mac, BROADCAST):
            why = f"the frame is for {mac} but {dev} in {ns} is {link.mac}: the kernel drops it (not for this host)"
            self.rows.add(ns, dev, "arrive", f"arrives {came}", [f"ip -n {ns} link show {dev}"],
                          self._obs(ns, dev, "in"), problem=why)
            return self._stop(why)
        return IpIn(ns, dev, came=came)

    def _sent_from(self, peer: tuple[str, str] | None) -> str | None:
        """The source MAC of a frame that came from the veth ``peer``: that device's own, when its namespace's IP
        layer sent it; the one it came into that bridge with, when the veth is a bridge port that switched it."""
        sender = self.k.links(peer[0]).get(peer[1]) if peer else None
        if sender is None:
            return None
        return self._src_mac if sender.master else sender.mac

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
        bridge ("bridged DNAT"): straight on from the port, never showing on the bridge device, or out through
        the bridge device's neighbour output, by the new destination's ARP entry (bridgeddnat.py).
        """
        if new is not None and isinstance(ans, RouteFacts) and ans.type == "unicast" and ans.oif == bridge \
                and self.k.bridge_nf(ns):
            hop = ans.gateway or self.flow.dst
            read = getattr(self.k, "neigh_state_before", None)  # the entry before the packet (arpstory.py)
            before = read(ns, bridge, hop) if read else None
            cached = getattr(self.k, "neigh_header_before", lambda *_: True)(ns, bridge, hop)  # built on first use
            out = self._obs(ns, bridge, "out") if bridgeddnat.through_device(before, cached) else None
            self._unseen = (ns, bridge)  # no route, ARP or bridge-port row of it there shows on the bridge device
            now = getattr(self.k, "neigh", None) if before not in bridgeddnat.USABLE else None  # answered?
            after = getattr(now(ns, bridge, hop) if now else None, "state", None)
            text, facts = bridgeddnat.words(bridge, self._port_in, self.lab.name_ip(hop), before, cached, after)
            return self.rows.row(ns, bridge, "bridge", f"dst MAC is {bridge}'s own, but {text}; {brnf.switched(True)}",
                                 [brnf.command(ns), f"ip -n {ns} neigh show {hop} dev {bridge}"], out, **facts)
        if new is not None and seen is not None:
            seen = replace(seen, alt=new)
        sysctl = brnf.command(ns)
        port = f" at port {self._port_in}" if self._port_in else ""
        hook = brnf.prerouting(ns in self.lab.nft_netns)
        if self.k.bridge_nf(ns):
            # br_nf_pre_routing runs NF_INET_PRE_ROUTING at the bridge's own hook; ip_sabotage_in then stops the
            # IP layer's PREROUTING from running a second time on the frame passed up
            how = (f"{brnf.ON} runs {hook} on the frame while it is still bridged{port}, then the bridge hands it "
                   f"up to {bridge}'s IP layer for the route lookup (PREROUTING does not run there again)")
        else:
            how = (f"the bridge hands the frame up to the IP layer on {bridge}, where {hook} runs, then the route "
                   f"lookup ({brnf.OFF})")
        return self.rows.row(ns, bridge, "bridge", f"dst MAC {mac} is {bridge}'s own: {how}",
                             [f"bridge -n {ns} fdb show br {bridge} | grep permanent", sysctl], seen)

    def _local_in(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str) -> State | Walk:
        """For this namespace: a VXLAN packet is decapsulated and routed again; anything else is delivered."""
        f = self.flow
        if self.stack and f.proto == "udp":  # a VXLAN packet for this node: vxlansteps.py
            return self._decap(ns, iif, cmd)
        # The capture sees the packet as it came in, before this namespace's NAT.
        seen = self._obs(ns, iif or "lo", "in")
        before = self._pre_nat.get(ns)
        if seen is not None and before is not None:
            seen = replace(seen, flow=before, alt=seen.flow)
        snat = self._snat(ns)  # INPUT: a reply to this namespace's own DNATed connection gets its source back
        if snat is not None:
            old, hit = snat
            text, commands, facts = self._snat_row(ns, hit, old)
            self.rows.add(ns, iif or "lo", "snat", text, commands, None, **facts)
            f = self.flow
        # A socket's packet to its own namespace's address goes through lo (loopback_xmit): seen there.
        how = "delivered" if iif else "the kernel loops it back through lo: delivered, it never leaves " + ns
        self.rows.add(ns, iif or "lo", "deliver",
                      f"route get {f.dst} → local: {self.lab.name_ip(f.dst)} is this namespace's own address; {how}",
                      [cmd], seen)
        return Walk(self.rows.hops, "delivered", f, ns)
