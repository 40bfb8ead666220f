"""Layer 2 of the walk: the next hop's ARP entry, and a bridge switching a frame to one of its ports.

The ARP half of :class:`~netlab.trace.walk.Walker`: without a usable
neighbour entry the packet goes no further, and the reason names what is
wrong on the link (a nolearning VXLAN device without Flannel's static entry,
nobody answering, the pod's bridge port down or disabled). The bridge half:
the FDB names the port behind a MAC (or the frame is flooded), a frame goes
back out its ingress port only in hairpin mode, br_netfilter's POSTROUTING
runs on the bridge (for a frame that came in by a port: brnf.py), and a port that is down, not forwarding (the kernel
disables a port without carrier: its veth peer is down) or too small for the
frame stops it.
"""

from __future__ import annotations

from netlab.trace import brnf, faults
from netlab.trace.facts import LinkFacts, NeighFacts
from netlab.trace.hops import Walk
from netlab.trace.states import FrameIn, State
from netlab.trace.walkparts import WalkParts

NEIGH_OK = ("PERMANENT", "REACHABLE", "STALE", "DELAY", "PROBE", "NOARP")
ZERO_MAC = "00:00:00:00:00:00"


# Said of a next hop with no ARP entry at all: the kernel would have made one (INCOMPLETE) had the packet come
# this far, so the packet died before, where a capture did not see it (lossblame.firewall looks there).
NEVER_ASKED = "the packet never made the kernel ask"


class L2Steps(WalkParts):
    """ARP and bridging for :class:`~netlab.trace.walk.Walker` (it holds the packet and the rows)."""

    # from the Walker: _obs (where a capture sees a row), _stop (the walk ends, with why), _wire_size (the
    # size a device meets, a fragment's once a VXLAN packet was fragmented);
    # from NatSteps: _snat (a switched frame's POSTROUTING)

    def _neigh(self, ns: str, dev: str, ip: str, link: LinkFacts) -> NeighFacts | Walk:
        """The next hop's ARP entry; without a usable one the packet goes no further (and why)."""
        n = self.k.neigh(ns, dev, ip)
        self._asked = None
        cmd = f"ip -n {ns} neigh show {ip} dev {dev}"
        whose = self.lab.name_ip(ip)
        went = self._neigh_sent_by(ns, dev, ip) if n is None or n.state not in NEIGH_OK or not n.lladdr else None
        if went is not None:  # usable before the packet, failed since: the packet had gone at once
            self.rows.add(ns, dev, "neigh", f"ARP entry: {whose} is at {went.lladdr} ({went.state} before the packet, "
                          f"which the kernel sent at once; {n.state if n else 'gone'} since: nothing answered its "
                          "probes)", [cmd], self._obs(ns, dev, "out"), lladdr=went.lladdr,
                          state=n.state if n else "no entry", ip=ip, state_before=went.state)
            return went
        if n is not None and n.state in NEIGH_OK and n.lladdr:
            read = getattr(self.k, "neigh_state_before", None)  # the entry before the packet (arpstory.py)
            before = read(ns, dev, ip) if read else None
            if before is not None and before not in NEIGH_OK:  # the packet waited for the answer from n.lladdr
                self._asked = n.lladdr
            self.rows.add(ns, dev, "neigh", f"ARP entry: {whose} is at {n.lladdr} ({n.said()})", [cmd],
                          self._obs(ns, dev, "out"), lladdr=n.lladdr, state=n.state, ip=ip, state_before=before)
            return n
        state = n.state if n else "no entry"
        default = [e for e in self.k.fdb(ns) if e.dev == dev and e.lladdr == ZERO_MAC and e.dst] \
            if link.kind == "vxlan" else []
        if link.kind == "vxlan" and link.vxlan and not link.vxlan.learning and not default:
            why = (f"no ARP entry for {ip} on {dev} ({state}): a nolearning VXLAN device cannot resolve it "
                   f"(its ARP requests have no FDB entry to go to and are dropped); Flannel writes this entry "
                   f"statically for every remote node")
        elif link.kind == "vxlan":
            where = ", ".join(e.dst or "" for e in default) or "the learned VTEPs"
            why = (f"no ARP answer for {ip} on {dev} ({state}): its ARP requests went to {where} in VXLAN and "
                   f"nobody answered")
        elif n is None:
            why = f"no ARP entry for {ip} on {dev}: {NEVER_ASKED} (it did not get here?)"
        else:
            why = f"no ARP answer for {ip} on {dev} ({state}): nothing on that link answers for {whose}"
        mv = self._child_arp(ns, link, ip) if n is not None else None
        if mv is not None:  # macvlansteps.py
            why = f"no ARP answer for {ip} on {dev} ({state}): {mv}"
        fix = self.lab.planned_neigh.get((ns, dev, ip))
        blocked = self._arp_blocked(ns, dev, link, ip) or (self._vepa_arp(ns, link, ip) if n is not None else None)
        if blocked is not None:  # the ARP request died at a bridge port: the one it came in by, or the target's
            why, fix = f"no ARP answer for {ip} on {dev} ({state}): {blocked[0]}", blocked[1]
        self.rows.add(ns, dev, "neigh", f"ARP entry for {whose}: {state}", [cmd], self._obs(ns, dev, "out"),
                      problem=why, fix=fix, state=state, ip=ip)
        return self._stop(why)

    def _neigh_sent_by(self, ns: str, dev: str, ip: str) -> NeighFacts | None:
        """The entry before the packet, when it was usable: the kernel sends by such an entry at once (a STALE one
        too, then probes it, DELAY 5 s and 3 unicast probes 1 s apart), so an entry that failed after the packet
        (read later, by the walk) failed the probes, not the packet, which had already left by it."""
        read = getattr(self.k, "neigh_before", None)
        before = read(ns, dev, ip) if read else None
        return before if before is not None and before.state in NEIGH_OK and before.lladdr else None

    def _fdb_then(self, ns: str, bridge: str, mac: str) -> str | None:
        """``bridge``'s entry for ``mac`` before the packet, for the request's frame: its state, "no entry" (flooded,
        unless the packet's own who-has was answered from ``mac`` through the bridge first: :attr:`_asked`, or the
        packet itself came into the bridge from ``mac`` earlier, a hairpin: :attr:`_taught`); None when not read,
        or for the reply, whose destination the request's frames taught the bridge."""
        read = getattr(self.k, "fdb_state_before", None)
        return read(ns, bridge, mac) if read is not None and self.role == "request" else None

    def _arp_blocked(self, ns: str, dev: str, link: LinkFacts, ip: str) -> faults.Reason | None:
        """Why the ARP request for ``ip`` dies at a bridge port that is down or not forwarding: this bridge's
        port towards ``ip`` (the node asks on cni0), or, when the link's veth peer is a bridge port (a pod asks
        for a pod of its node, or for cni0's address), that port itself or the port towards ``ip``."""
        if link.kind == "bridge":
            return self._port_toward(ns, link, ip)
        peer = self.lab.peers.get((ns, dev))
        if peer is None:
            return None
        links = self.k.links(peer[0])
        master = links[peer[1]].master if peer[1] in links else None
        bridge = links.get(master) if master else None
        if bridge is None or bridge.kind != "bridge":
            return None
        return self._port_blocked(peer[0], bridge, peer[1], f" (veth peer of {self.lab.where(ns).split()[-1]}'s "
                                  f"{dev})") or self._port_toward(peer[0], bridge, ip, ingress=peer[1])

    def _port_toward(self, ns: str, bridge: LinkFacts, ip: str, ingress: str | None = None) -> faults.Reason | None:
        """Why the port of ``bridge`` whose veth peer holds ``ip`` (a pod's eth0, a node's) takes no frame."""
        owner = self.lab.ip_names.get(ip)
        owner_ns = next((o for o, what in self.lab.names.items() if what in (f"pod {owner}", f"node {owner}")), None)
        for name, link in self.k.links(ns).items():
            peer = self.lab.peers.get((ns, name))
            if link.master == bridge.name and peer is not None and peer[0] == owner_ns:
                return self._port_blocked(ns, bridge, name, f" (veth peer of {owner}'s {peer[1]})", ingress,
                                          "broadcast")  # an ARP request
        return None

    def _port_blocked(self, ns: str, bridge: LinkFacts, port: str, whose: str, ingress: str | None = None,
                      frame: str = "unicast") -> faults.Reason | None:
        """Why ``bridge`` forwards nothing to or from ``port`` (``whose``: its veth peer, said after its name), and
        the fix; None when the port forwards. The kernel's bridge sends a frame out of a port, and takes one in,
        only in state forwarding (should_deliver, br_handle_frame): a port set down, or without carrier because
        its veth peer is down, is disabled; STP (or a user) may hold it listening, learning or blocking."""
        link = self.k.links(ns).get(port)
        if link is None:
            return None
        where = f"the bridge port {port} of {bridge.name} in {ns}{whose}"
        if not link.up:
            return f"{where} is down, so the bridge does not forward to it", f"ip -n {ns} link set {port} up"
        state = link.port_state
        if state in (None, "forwarding"):
            return self._settings_block(ns, link, where, ingress, frame)
        peer = self.lab.peers.get((ns, port))
        peer_link = self.k.links(peer[0]).get(peer[1]) if peer else None
        if state == "disabled" and peer and peer_link is not None and not peer_link.up:
            return (f"{where} is disabled: {peer[1]} in {peer[0]}, its veth peer, is down, so {port} has no carrier, "
                    f"and the bridge forwards nothing to or from a port without carrier",
                    self.lab.link_fix(peer[0], peer[1]))  # the link up, and the routes the kernel took with it
        if state == "disabled" and not bridge.up:
            return (f"{where} is disabled: bridge {bridge.name} is down, which disables all its ports",
                    f"ip -n {ns} link set {bridge.name} up")
        return (f"{where} is in state {state}, not forwarding (set by hand or by STP): the bridge forwards nothing "
                f"to or from it", f"bridge -n {ns} link set dev {port} state forwarding")

    def _settings_block(self, ns: str, link: LinkFacts, where: str, ingress: str | None,
                        frame: str) -> faults.Reason | None:
        """Why a forwarding port gets no ``frame`` (unicast, broadcast, flood: one for a MAC the FDB does not
        hold) that came in by ``ingress`` (None: the bridge device sent it), by the port's settings (br_flood,
        should_deliver): none between two isolated ports, no broadcast from another port to one with bcast_flood
        off, no unknown unicast to one with flood off."""
        words, port = link.port_settings, link.name
        src = self.k.links(ns).get(ingress) if ingress else None
        if src is not None and "isolated on" in words and "isolated on" in src.port_settings:
            return (f"{where} is isolated, and so is {ingress}, the port the frame came in by: the bridge forwards "
                    f"nothing between two isolated ports", f"bridge -n {ns} link set dev {port} isolated off")
        if ingress is not None and frame == "broadcast" and "bcast_flood off" in words:
            return (f"{where} has bcast_flood off: the bridge floods no broadcast (an ARP request) from another port "
                    f"to it", f"bridge -n {ns} link set dev {port} bcast_flood on")
        if frame == "flood" and "flood off" in words:
            return (f"{where} has flood off: the bridge floods no frame for a MAC its FDB does not hold to it",
                    f"bridge -n {ns} link set dev {port} flood on")
        return None

    def _bridge_forward(self, ns: str, bridge: LinkFacts, mac: str, ingress: str | None,
                        routed: bool = False) -> State | Walk:
        """A frame switched by ``bridge`` towards ``mac``: which port (FDB), then that port's veth peer.

        ``ingress``: the port the frame came in by; None: the namespace's own IP layer sends it out of the bridge
        device (``routed``: a packet it forwarded, else its own), and br_netfilter runs no iptables hook on it."""
        links = self.k.links(ns)
        cmd = f"bridge -n {ns} fdb show br {bridge.name}"
        on = self.k.bridge_nf(ns)
        # said on every switched frame: whether iptables runs on it while bridged
        nf = f"; {brnf.switched(on) if ingress is not None else brnf.from_stack(routed, bridge.name)}"
        sysctl = brnf.command(ns)
        hooks = brnf.PORT_TO_PORT if ingress is not None and on else []
        entries = [e for e in self.k.fdb(ns) if e.master == bridge.name and e.lladdr.lower() == mac.lower()]
        then = self._fdb_then(ns, bridge.name, mac)
        own = self._taught.get((ns, bridge.name, mac.lower())) if then == "no entry" else None
        taught = then == "no entry" and self._asked is not None and self._asked.lower() == mac.lower()
        if then == "no entry" and not taught and own is None:  # learned since, from the answer: flooded
            entries = []
        if entries:
            port = entries[0].dev
            how = f"FDB: {mac} is behind port {port} ({entries[0].state}" + (
                f", from this packet's own frame, which came into {bridge.name} from {mac} by port {own}: the "
                f"bridge learns a frame's source as it comes in)" if own is not None else
                f", from its ARP answer to this packet's who-has, which crossed {bridge.name} first)"
                if taught else ")")
        else:
            found = None
            for name, link in links.items():
                if link.master != bridge.name:
                    continue
                peer = self.lab.peers.get((ns, name))
                peer_link = self.k.links(peer[0]).get(peer[1]) if peer else None
                if peer_link and peer_link.mac == mac:
                    found = name
                    break
            if found is None:
                why = f"{mac} is in no FDB entry of {bridge.name} and behind none of its ports: the flood finds nobody"
                self.rows.add(ns, bridge.name, "bridge", f"FDB lookup {mac}: unknown{nf}", [cmd, sysctl],
                              self._obs(ns, bridge.name, "out"), problem=why)
                return self._stop(why)
            port = found
            how = f"{mac} is not in the FDB yet: the bridge floods the frame; it reaches port {port}"
        pinned = self._pinned(ns, bridge.name, mac, port, entries[0].state) if entries and own is None else None
        if pinned is not None:  # a hand's entry sends the MAC out of a port it is not behind
            self.rows.add(ns, port, "bridge", f"bridge {bridge.name}: {how}{nf}", [cmd, sysctl],
                          self._obs(ns, port, "out"), *pinned, port=port, mac=mac, lladdr=mac, bridge=bridge.name)
            return self._stop(pinned[0])
        if port == ingress and not links[port].hairpin:
            why = (f"{mac} is behind {port}, the port the frame came in on: a bridge only sends a frame back out "
                   f"its ingress port in hairpin mode (bridge -n {ns} link set dev {port} hairpin on)")
            self.rows.add(ns, port, "bridge", f"bridge {bridge.name}: {how}{nf}",
                          [cmd, f"bridge -n {ns} -d link show dev {port}", sysctl], self._obs(ns, port, "out"),
                          problem=why)
            return self._stop(why)
        peer = self.lab.peers.get((ns, port))
        peer_text = f" (veth peer: {peer[1]} in {peer[0]})" if peer else ""
        # A port that is down or not forwarding (disabled: its veth peer is down) gets nothing, flood or not.
        blocked = self._port_blocked(ns, bridge, port, peer_text, ingress, "unicast" if entries else "flood")
        if blocked is not None:
            how = (f"FDB: {mac} is behind port {port} ({entries[0].state}), but the bridge sends nothing out of "
                   f"{port}" if entries else f"{mac} is not in the FDB: the bridge floods the frame to its "
                   f"forwarding ports, and {port}, the port {mac} is behind, is none of them")
            self.rows.add(ns, port, "bridge", f"bridge {bridge.name}: {how}{peer_text}{nf}",
                          [cmd, f"bridge -n {ns} link show dev {port}", sysctl], self._obs(ns, port, "out"), *blocked,
                          port=port, mac=mac, lladdr=mac, bridge=bridge.name, port_state=links[port].port_state)
            return self._stop(blocked[0])
        snat = self._snat(ns)  # a switched frame's POSTROUTING (br_netfilter), before it leaves the port
        if snat is not None:
            old, hit = snat
            text, commands, facts = self._snat_row(ns, hit, old)
            self.rows.add(ns, port, "snat", text + " (br_netfilter, on the bridge)", commands, None, **facts)
        hair = " (hairpin)" if port == ingress else ""
        size = self._wire_size()
        # The port takes at most its MTU; a veth's peer drops a frame bigger than its own as it arrives.
        planned = getattr(self.lab, "planned_mtu", {})
        encap = bool(self.stack)
        big = faults.too_big(links[port], size, ns, bridge.name, (ns, port), planned=planned.get((ns, port)),
                             encap=encap) or (
            faults.too_big(self.k.links(peer[0]).get(peer[1]), size, ns, port, peer, planned=planned.get(peer),
                           encap=encap) if peer else None)
        self.rows.add(ns, port, "bridge", f"bridge {bridge.name}: {how}{hair}{peer_text}{nf}",
                      [cmd] + ([sysctl] if ingress is not None else []), self._obs(ns, port, "out"),
                      big[0] if big else None, big[1] if big else None, port=port, mac=mac, lladdr=mac,
                      bridge=bridge.name, hairpin=True if hair else None, bridge_hooks=hooks, fdb_before=then)
        if big:
            return self._stop(big[0])
        if peer is None:
            return self._stop(f"port {port} of {bridge.name} in {ns} leads nowhere the lab knows")
        return FrameIn(peer[0], peer[1], mac)

    def _pinned(self, ns: str, bridge: str, mac: str, port: str, state: str) -> tuple[str, str] | None:
        """(why, fix) when an FDB entry a hand added (static, permanent or ``dynamic sticky``: no learned one, no
        plan's: plan/bridge_fdb.py) sends ``mac`` out of ``port`` while another port's veth peer has that MAC;
        None otherwise."""
        if state == "learned" or port == bridge:
            return None
        owner = None
        for name, link in self.k.links(ns).items():
            peer = self.lab.peers.get((ns, name)) if link.master == bridge else None
            peer_link = self.k.links(peer[0]).get(peer[1]) if peer else None
            if peer and peer_link and peer_link.mac == mac:
                owner = (name, peer)
        if owner is None or owner[0] == port:
            return None
        how = ("the bridge refreshes it on each frame from that MAC but never moves it (sticky; learning never "
               "makes a sticky entry)" if "sticky" in state and state.startswith("dynamic") else
               "it never ages (extern_learn), and moves only once a frame from that MAC comes in on another port"
               if state == "dynamic extern_learn" else "it neither ages nor moves")
        goes = ("so the bridge takes the frame as the node's own (local) and forwards it to no port"
                if state.startswith("permanent") else f"so {bridge} sends the frame out of {port}")
        why = (f"{mac} is {owner[1][1]}'s in {owner[1][0]}, behind port {owner[0]}, but an FDB entry a hand added "
               f"({state}) pins it to port {port}: {how}, {goes}")
        return why, f"bridge -n {ns} fdb del {mac} dev {port} master"
