"""The walker's VXLAN steps: Flannel's overlay, where a pod's packet crosses the underlay inside UDP.

Out: the route to another node's pod subnet leaves by flannel.1 to that
node's VTEP MAC (its ARP entry, l2steps.py); flannel.1's FDB names the
remote VTEP's underlay address for that MAC, and the frame goes into UDP 8472
(VNI 1) to it, routed again as the node's own packet. In: the UDP packet is for
the remote node's own address; the VXLAN device listening on that port (same
VNI, the inner frame for its MAC) unwraps it, and the inner packet enters the
IP layer on flannel.1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netlab.trace import faults
from netlab.trace.facts import LinkFacts, vxlan_on_port
from netlab.trace.flow import Flow
from netlab.trace.hops import Walk
from netlab.trace.l2steps import ZERO_MAC
from netlab.trace.states import State
from netlab.trace.walkparts import WalkParts


@dataclass
class Encap:
    """A VXLAN encapsulation under way: the inner packet, and the frame the VXLAN device wrapped."""

    inner: Flow
    vni: int
    vxdev: str  # the VXLAN device that encapsulated
    src_mac: str | None
    dst_mac: str
    shown: bool = False  # the encapsulation row was written
    netns: str = ""  # the node that encapsulated
    remote: str = ""  # the remote VTEP its FDB entry named
    entry_vni: bool = False  # ``vni`` is the FDB entry's own (`bridge fdb ... vni V`), not the device's


class VxlanSteps(WalkParts):
    """The VXLAN half of :class:`~netlab.trace.walk.Walker` (it holds the packet and the rows)."""

    # from the Walker: _obs, _stop, _emit_nat; from RouteSteps: _route, _source; from NatSteps: _prerouting

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
        # Another node than the plan's: the frame goes on to it, which drops it (not its MAC: _wrong_vtep), but
        # the fault is this entry, blamed here however far the packet goes (Hop.cause). So is a remote with
        # another UDP port, VNI or device than flannel.1's own: it goes on, to where nothing takes it.
        astray = None if stale else self._other_vtep(ns, link.name, mac, remote)
        odd = None if stale or astray else faults.odd_remote(entry, vx, link.name)
        # out of lo: the driver's route lookup to the remote out of the loopback device finds none, and it drops
        # the frame there (measured: the VXLAN device's TX errors count it; nothing leaves by lo, nor eth0)
        looped = odd is not None and entry.via == "lo"
        if looped:
            odd = (f"{odd}: the VXLAN driver looks up its route to {remote} out of lo, which routes nothing out, "
                   f"finds none and drops the frame ({link.name}'s TX errors count it: ip -s -n {ns} link show "
                   f"{link.name})")
        # The entry is there with the wrong VTEP: the kernel appends another remote to a zero or multicast MAC's
        # entry only (an append to a unicast one changes nothing), so the fix replaces its remote (and with it
        # its port, VNI and device: the device's own).
        fix = planned if (stale or astray or odd) and planned else None  # plan prints fdb replace, as flanneld
        extra = {name: getattr(entry, name) for name in ("port", "vni", "via") if getattr(entry, name) is not None}
        self.rows.add(ns, link.name, "fdb",
                      f"FDB entry: {entry.text()} → remote VTEP {self.lab.name_ip(remote)}", [cmd],
                      self._obs(ns, link.name, "out"), stale or astray or odd, fix,
                      cause=astray is not None or odd is not None, mac=mac, lladdr=mac, dst=remote,
                      remote_vtep=remote, astray=astray is not None or None, dropped_here=looped or None, **extra)
        if stale:
            return self._stop(stale)
        if looped and odd is not None:
            return self._stop(odd)
        if vx is None:
            return self._stop(f"{link.name} has no VXLAN settings")
        # The UDP port and VNI the kernel sends it with: the entry's where it names its own
        vni = entry.vni if entry.vni is not None else vx.vni
        self.stack.append(Encap(self.flow, vni, link.name, link.mac, mac, netns=ns, remote=remote,
                                entry_vni=vni != vx.vni))
        self.flow = Flow("udp", vx.local, remote, None, entry.port if entry.port is not None else vx.port)
        if not vx.local:
            src = self._source(ns, remote)
            if isinstance(src, Walk):
                return src
            self.flow = self.flow.with_src(src, None)
        return self._route(ns, None)

    def _decap(self, ns: str, iif: str | None, cmd: str) -> State | Walk:
        """A VXLAN packet for this namespace's own address: the VXLAN device listening on its UDP port unwraps it,
        and the inner packet enters the IP layer on that device (its DNAT, then a route lookup again)."""
        f = self.flow
        vx = vxlan_on_port(self.k.links(ns), f.dport)
        enc = self.stack[-1]
        if vx is None or vx.vxlan is None:
            why = f"UDP port {f.dport} is local in {ns} but no VXLAN device listens there: the kernel drops it"
            # The plan's VXLAN device of this node (its FDB entries name it), deleted or made on another port: the
            # lab's repair makes it again, with its address, ARP and FDB entries and its routes.
            planned = sorted({dev for (fns, dev, _) in self.lab.planned_fdb if fns == ns})
            gone = [dev for dev in planned if dev not in self.k.links(ns)]
            if gone:
                why += f" ({gone[0]}, the lab's VXLAN device there, is missing)"
            self.rows.add(ns, iif or "-", "decap", f"route get {f.dst} → local", [cmd],
                          self._obs(ns, iif or "lo", "in"), problem=why, fix=self.lab.repair if planned else None)
            return self._stop(why)
        self.rows.add(ns, iif or "lo", "decap",
                      f"route get {f.dst} → local; UDP {f.dport} belongs to {vx.name} "
                      f"(VNI {vx.vxlan.vni}): decapsulate",
                      [cmd, f"ip -n {ns} -d link show {vx.name}"], self._obs(ns, iif or "lo", "in"),
                      vni=enc.vni, vxlan_device=vx.name)
        problem = fix = None
        if vx.vxlan.vni != enc.vni:
            problem, fix = self._wrong_vni(ns, vx.name, vx.vxlan.vni, enc, f.src)
        elif vx.mac and enc.dst_mac.lower() != vx.mac.lower():
            problem, fix = self._wrong_vtep(ns, vx, enc)
        self.flow = enc.inner
        self.stack.pop()
        self._fragments = 0  # reassembled here
        frame = f"inner frame {enc.src_mac} → {enc.dst_mac}"
        text = (f"{frame} reaches {vx.name} ({vx.mac}): {self.flow}" if problem
                else f"{frame} ({vx.name}'s MAC) enters the IP layer: {self.flow}")
        commands = [f"ip -n {ns} -br link show {vx.name}"]
        seen = self._obs(ns, vx.name, "in")
        if problem:
            self.rows.add(ns, vx.name, "arrive", text, commands, seen, problem=problem, fix=fix)
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

    def _other_vtep(self, ns: str, dev: str, mac: str, remote: str) -> str | None:
        """An FDB entry that sends the frame for ``mac`` to another node than the plan's entry does."""
        want = self.lab.planned_fdb_dst.get((ns, dev, mac.lower()))
        if want is None or want == remote:
            return None
        return (f"{self.lab.where(ns)}'s FDB entry for {mac} on {dev} sends the frame to {self.lab.name_ip(remote)}, "
                f"the plan's to {self.lab.name_ip(want)}")

    def _wrong_vni(self, ns: str, dev: str, vni: int, enc: Encap, sender: str) -> tuple[str, str | None]:
        """A VXLAN packet whose VNI is not the receiving device's: which of the two devices is not the plan's VNI
        (the sender's, or this one), and the repair, which makes it again (its VNI cannot change in place)."""
        why = f"the packet carries VNI {enc.vni} but {dev} in {ns} is VNI {vni}: dropped"
        plan = self.lab.planned_vni
        devices = ((ns, dev, vni, "the receiver"),) if enc.entry_vni else \
            ((enc.netns, enc.vxdev, enc.vni, "the sender"), (ns, dev, vni, "the receiver"))
        odd = [(n, d, v, want, role) for n, d, v, role in devices
               if (want := plan.get((n, d))) is not None and v != want]
        if enc.entry_vni and not odd:  # the sender's FDB row is the cause, with its fix
            return why + f" (the sender's FDB entry for {enc.dst_mac} names VNI {enc.vni})", None
        if not odd:
            return why + f" (the sender, {self.lab.name_ip(sender)}, has a VXLAN device of another VNI)", None
        words = "; ".join(f"{d} in {n} ({self.lab.where(n)}, {role}) is VNI {v}, not the plan's VNI {want}"
                          for n, d, v, want, role in odd)
        remade = " and ".join(f"deletes {d} in {n} ({self.lab.where(n)}) and makes it again with VNI {want}"
                              for n, d, _, want, _ in odd)
        return (f"{why}; {words}; a VXLAN device's VNI cannot change in place: it must be made again with the "
                f"plan's VNI (and its address, ARP and FDB entries and routes with it)",
                f"{self.lab.repair}   (it {remade}, then adds back the device's address, ARP and FDB entries and "
                f"routes as the plan has them)")

    def _wrong_vtep(self, ns: str, vx: LinkFacts, enc: Encap) -> tuple[str, str | None]:
        """An inner frame for another VTEP's MAC than this node's: the sending node's FDB entry for that MAC names
        this node, where the plan's names another (that row is blamed, with the fix: this drop is its
        consequence); else its ARP entry gave a MAC the plan does not know."""
        why = f"the inner frame is for {enc.dst_mac} but {vx.name} in {ns} is {vx.mac}: the kernel drops it"
        key = (enc.netns, enc.vxdev, enc.dst_mac.lower())
        want = self.lab.planned_fdb_dst.get(key)
        if want is None or want == enc.remote:
            return why + " (stale ARP/FDB entries on the sending node?)", None
        return (why + f", the consequence of {self.lab.where(enc.netns)}'s FDB entry for {enc.dst_mac} on "
                f"{enc.vxdev}, which sends it here, not to {self.lab.name_ip(want)} as the plan's does"), None
