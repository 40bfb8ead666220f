"""A pod attached by the macvlan CNI plugin: its eth0 is no veth but a child of a node device.

What the kernel does with a frame a child sends (drivers/net/macvlan.c, macvlan_queue_xmit): in bridge mode, a
unicast frame for the MAC of another bridge-mode child of the same lower device is handed to that child inside
the driver (it never shows on the lower device); every other frame, the lower device's own MAC included, is sent
out of the lower device onto its wire (dev_queue_xmit on it), never up into the lower device's own namespace. So a
child cannot reach its lower device's addresses (nor anything else its node holds: they come back on the wire to
no one). A frame that comes in from the wire on the lower device for a child's MAC is that child's
(macvlan_handle_frame). An ipvlan child is not followed: this machine's kernel has no ipvlan to test a walk
against, so trace stops there and says so.
"""

from __future__ import annotations

from netlab.trace.facts import LinkFacts
from netlab.trace.faults import Reason
from netlab.trace.hops import Walk
from netlab.trace.states import FrameIn, State
from netlab.trace.walkparts import WalkParts


class MacvlanSteps(WalkParts):
    """macvlan children (and ipvlan's, named as not followed) for :class:`~netlab.trace.walk.Walker` (it holds
    the packet and the rows)."""

    # from the Walker: _obs, _stop; from RouteSteps: _leave, _drop

    def _lower_of(self, ns: str, link: LinkFacts) -> tuple[str, LinkFacts] | None:
        """(namespace, device) of a child's lower device: the node's, for a pod's child a plugin moved there."""
        lower_ns = self.lab.pod_nodes.get(ns) if link.lower_elsewhere else ns
        if lower_ns is None:
            return None
        lower = next((lk for lk in self.k.links(lower_ns).values() if lk.index == link.lower), None)
        return (lower_ns, lower) if lower is not None else None

    def _children(self, lower_ns: str, lower: LinkFacts, kind: str) -> list[tuple[str, LinkFacts]]:
        """Every ``kind`` child of ``lower``: in its own namespace and in its node's pods'."""
        spaces = [lower_ns] + sorted(p for p, n in self.lab.pod_nodes.items() if n == lower_ns)
        return [(ns, lk) for ns in spaces for lk in self.k.links(ns).values()
                if lk.kind == kind and lk.lower == lower.index and lk.lower_elsewhere == (ns != lower_ns)]

    def _child_out(self, ns: str, link: LinkFacts, mac: str) -> State | Walk:
        """Out of a macvlan child: to a sibling inside the driver, or out of its lower device."""
        dev, kind, mode = link.name, link.kind or "", link.mode or "?"
        if kind != "macvlan":
            return self._stop(f"{dev} in {ns} is an {kind} ({mode} mode): trace does not follow {kind} devices "
                              f"(ping and tcpdump do)")
        found = self._lower_of(ns, link)
        if found is None:
            return self._stop(f"{dev} in {ns} is a {kind} whose lower device (ifindex {link.lower}) the lab does "
                              f"not know")
        lower_ns, lower = found
        where = f"{self.lab.where(lower_ns).split()[-1]}'s {lower.name}"
        cmds = [f"ip -n {ns} -d link show {dev}", f"ip -n {lower_ns} -d link show {lower.name}"]
        sibling = None
        if kind == "macvlan" and mode == "bridge":
            sibling = next(((cns, c) for cns, c in self._children(lower_ns, lower, kind)
                            if (cns, c.name) != (ns, dev) and (c.mac or "").lower() == mac.lower()), None)
            if sibling is not None and sibling[1].mode != "bridge":
                sibling = None  # the driver hands a frame only to a bridge-mode child; others get it by the wire
        if sibling is not None:
            cns, child = sibling
            owner = self.lab.where(cns)
            by = f"its MAC {mac}"
            self.rows.add(ns, dev, kind, f"{kind} {dev} ({mode} mode) on {where}: {by} is {owner}'s {child.name}, "
                          f"a {kind} of {lower.name} too, so the driver hands the frame to it directly (it is never "
                          f"seen on {lower.name})", cmds, self._obs(ns, dev, "out"), lower=lower.name,
                          lower_netns=lower_ns, mode=mode, to_netns=cns, to_dev=child.name)
            return FrameIn(cns, child.name, mac, came=f"from {dev} in {ns} ({kind} {mode} mode, inside the driver)")
        if kind == "macvlan" and mac.lower() == (lower.mac or "").lower():
            why = (f"{self.flow.dst} is {where}'s own: a {kind} child cannot reach its lower device's addresses (the "
                   f"driver sends the frame out of {lower.name} onto the wire, never up into {lower_ns}, and the "
                   f"wire does not send it back); a node reaches its pods, and they it, through a {kind} of its "
                   f"own on {lower.name} holding its address")
            return self._drop(ns, dev, f"{kind} {dev} ({mode} mode) on {where}", cmds, why, None, kind=kind)
        self.rows.add(ns, dev, kind, f"{kind} {dev} ({mode} mode) on {where}: {mac} is no {kind} of {lower.name} "
                      f"the driver hands frames to, so the frame leaves by {lower.name} onto its wire",
                      cmds, self._obs(ns, dev, "out"), lower=lower.name, lower_netns=lower_ns, mode=mode)
        if not lower.up:
            why = f"{lower.name} in {lower_ns}, the lower device of {dev}, is down: it sends nothing"
            return self._drop(ns, dev, f"{kind} {dev}: lower device {lower.name} down", cmds[1:], why,
                              f"ip -n {lower_ns} link set {lower.name} up", kind=kind)
        return self._leave(lower_ns, lower.name, mac)

    def _child_arp(self, ns: str, link: LinkFacts, ip: str) -> str | None:
        """Why a macvlan child's ARP request for an address of its lower device's namespace gets no answer."""
        found = self._lower_of(ns, link) if link.kind == "macvlan" else None
        if found is None:
            return None
        lower_ns, lower = found
        holder = next((lk.name for lk in self.k.links(lower_ns).values()
                       if any(a.split("/")[0] == ip for a in lk.addresses)), None)
        if holder is None or any(c.addresses for cns, c in self._children(lower_ns, lower, "macvlan")
                                 if cns == lower_ns):
            return None
        return (f"{ip} is {holder}'s in {lower_ns}, the namespace of {link.name}'s lower device {lower.name}: a "
                f"macvlan child cannot reach it (the driver sends its frames, ARP requests too, out of {lower.name} "
                f"onto the wire, never up into {lower_ns}, and the wire does not send them back); a node reaches its "
                f"pods, and they it, through a macvlan of its own on {lower.name} holding an address")

    def _vepa_arp(self, ns: str, link: LinkFacts, ip: str) -> Reason | None:
        """Why a vepa-mode macvlan child's ARP request for a sibling child of its lower device gets no answer: the
        driver sends every frame of a vepa child, broadcasts too, out of the lower device onto its wire
        (macvlan_queue_xmit), for the switch there to send back (a reflective relay); a Linux bridge sends a frame
        back out of the port it came in by only in hairpin mode (br_forward: should_deliver), and the sibling
        never sees the request. With hairpin on, the reflected broadcast comes in on the lower device and the
        driver hands it to its other vepa and bridge children (macvlan_handle_frame), which answer."""
        found = self._lower_of(ns, link) if link.kind == "macvlan" and link.mode == "vepa" else None
        if found is None:
            return None
        lower_ns, lower = found
        sibling = next(((cns, c) for cns, c in self._children(lower_ns, lower, "macvlan")
                        if (cns, c.name) != (ns, link.name) and any(a.split("/")[0] == ip for a in c.addresses)),
                       None)
        peer = self.lab.peers.get((lower_ns, lower.name))
        port = self.k.links(peer[0]).get(peer[1]) if peer is not None and sibling is not None else None
        bridge = self.k.links(peer[0]).get(port.master) if peer is not None and port and port.master else None
        if sibling is None or peer is None or port is None or bridge is None or bridge.kind != "bridge" \
                or port.hairpin is not False:
            return None
        node = self.lab.where(lower_ns).split()[-1]
        return (f"{ip} is {self.lab.where(sibling[0])}'s {sibling[1].name}, a macvlan of {node}'s {lower.name} "
                f"too; in vepa mode the driver sends every frame, this ARP request too, out of {lower.name} onto its "
                f"wire for the switch to send back, and bridge {bridge.name} in {peer[0]} sends no frame back out of "
                f"{peer[1]}, the port it came in by ({lower.name}'s veth peer): it does only in hairpin mode, off on "
                f"{peer[1]}", f"bridge -n {peer[0]} link set dev {peer[1]} hairpin on")

    def _child_in(self, ns: str, dev: str, mac: str) -> FrameIn | None:
        """A frame from the wire on a lower device, for the MAC of one of its macvlan children: that child's."""
        lower = self.k.links(ns).get(dev)
        if lower is None or (lower.mac or "").lower() == mac.lower():
            return None
        hit = next(((cns, c) for cns, c in self._children(ns, lower, "macvlan")
                    if (c.mac or "").lower() == mac.lower()), None)
        if hit is None:
            return None
        cns, child = hit
        self.rows.add(ns, dev, "macvlan", f"{mac} is {self.lab.where(cns)}'s {child.name}, a macvlan of {dev}: the "
                      f"driver hands the frame to it, not to {ns}'s own stack",
                      [f"ip -n {ns} -d link show {dev}", f"ip -n {cns} -d link show {child.name}"],
                      self._obs(ns, dev, "in"), to_netns=cns, to_dev=child.name)
        return FrameIn(cns, child.name, mac, came=f"from {dev} in {ns} (its macvlan lower device)")
