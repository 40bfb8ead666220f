"""The walker's route steps: the kernel's route lookup for the packet, and what its answer makes of it.

Where a packet enters a namespace's IP layer (or a socket sends it), the
walker asks ``ip route get DST from SRC iif DEV`` (``RTM_GETROUTE``) and
follows the answer: a refusal (no route, a source the kernel will not take:
the row that loses it, with why and the fix), this namespace's own address
(delivered, or a VXLAN packet unwrapped: arrivalsteps.py, vxlansteps.py), or
out through a device: POSTROUTING's masquerade (natsteps.py), the next hop's
ARP entry and the bridge (l2steps.py), a VXLAN device's FDB (vxlansteps.py),
and out of a veth to its peer, whose MTU may refuse a packet with DF.
"""

from __future__ import annotations

from typing import Any

from netlab.trace import clusterip, faults, strayroutes
from netlab.trace.facts import RouteFacts, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.hops import CameHere, Walk
from netlab.trace.states import FrameIn, State
from netlab.trace.walkparts import WalkParts


L4_PROTOS = {"tcp": 6, "udp": 17}


class RouteSteps(WalkParts):
    """The route half of :class:`~netlab.trace.walk.Walker` (it holds the packet and the rows)."""

    # from the Walker: _obs, _stop, _on, _wire_size; from NatSteps: _snat; from L2Steps: _neigh,
    # _bridge_forward; from VxlanSteps: _vxlan_out; from ArrivalSteps: _local_in

    def _lookup(self, ns: str, iif: str | None) -> tuple[RouteFacts | RouteFailure, str]:
        """``ip route get`` for the packet as it is now: the kernel's answer (or refusal), and the command."""
        f = self.flow
        cmd = f"ip -n {ns} route get {f.dst} from {f.src}" + (f" iif {iif}" if iif else "")
        try:
            ans = self.k.route_get(ns, f.dst, src=f.src, iif=iif)
            if ans.hops and f.proto in L4_PROTOS and f.sport and f.dport:
                # A multipath route: its hop is the hash's pick, of the packet's ports too (the gateway's policy,
                # plan/internet.py), which the lookup then needs
                cmd += f" ipproto {f.proto} sport {f.sport} dport {f.dport}"
                ans = self.k.route_get(ns, f.dst, src=f.src, iif=iif, l4=(L4_PROTOS[f.proto], f.sport, f.dport))
            return ans, cmd
        except RouteFailure as exc:
            return exc, cmd

    def _route(self, ns: str, iif: str | None) -> State | Walk:
        return self._decide(ns, iif, *self._lookup(ns, iif))

    def _decide(self, ns: str, iif: str | None, ans: RouteFacts | RouteFailure, cmd: str) -> State | Walk:
        """The route lookup's answer: a drop, this namespace (local), or out through a device."""
        f = self.flow
        if isinstance(ans, RouteFailure):
            own = faults.refused(self.k, ns, iif, f.src, f.dst, ans.message, self.lab)
            why, fix = own or \
                strayroutes.refusing_route(self.k, self.lab, ns, f.dst, ans.message) or \
                faults.links_down(self.k, ns, f.dst, ans.message, self.lab) or \
                faults.cut_off(self.k, self.lab, ns, f.dst, ans.message) or \
                (f"no route to {f.dst} in {ns}: {ans.message}", self.lab.route_fix(ns, f.dst))
            commands = [cmd, f"ip -n {ns} route"]
            if self.stack and not iif:  # the VXLAN driver found no route for the outer packet and dropped it
                why += f" (the VXLAN device {self._on(iif)} drops the packet it wrapped, counted in its TX errors)"
                commands.append(f"ip -n {ns} -s link show {self._on(iif)}")
            came = None
            if self._doomed is not None or (own is not None and own[1] is None) or \
                    (iif and fix is None and clusterip.unanswered(self.lab, f) is not None):
                # a doomed packet's end, where the plan makes no router, or a router the plan gives no route to a
                # ClusterIP (the internet's gateway): a node's missing route keeps its fix. Last, once the row's
                # own words are all said (the VXLAN device's too): CameHere.own is what verdict.explain says.
                why, fix, came = self._doomed_here(why, fix, self._icmp_answer(ns, iif, ans.message))
            # Strict rp_filter is a fault of its own (every lab namespace plans it off), even where a stray route
            # made the path asymmetric: verdict.explain names it first, the route as its cause.
            drift = own is not None and "rp_filter=" in (own[1] or "")
            return self._no_route(ns, self._on(iif), f"route get {f.dst}", commands, why, fix, ans.message,
                                  came_here=came, drift=drift or None)
        missing = (faults.pod_cidr_by_default(self.lab, ns, f.dst, ans.matched, self.k)
                   or self.lab.outside_by_default(ns, f.dst, ans.matched)
                   or faults.pod_host_route_gone(self.lab, ns, f.dst, ans.oif, ans.matched, self.k)) \
            if ans.type == "unicast" else None
        if missing:  # the node's own fault: the packet goes on to die at the underlay's gateway, which says why
            self._doomed = missing
            return self._forward(ns, iif, ans, cmd, fault=missing)
        gone = faults.route_gone_with_link(self.k, self.lab, ns, f.dst, ans.oif, ans.matched) \
            if ans.type == "unicast" else None
        if gone is not None:
            # The packet goes on by the wider route (out of eth0 by the default route to the underlay's gateway, as
            # `ip route get` and a capture there show), doomed as by a missing pod-CIDR route: lost where it dies,
            # the down link named there as why, with its fix (_doomed_here).
            dev, why, fix = gone
            self._doomed = (why, fix)
            self.rows.add(ns, dev, "link", f"{dev} is down, its routes gone with it: route get {f.dst} → "
                          f"{ans.matched}", [f"ip -n {ns} -br link show {dev}", cmd], problem=why, fix=fix)
        if ans.type == "local":
            return self._local_in(ns, iif, ans, cmd)
        if ans.type != "unicast" or not ans.oif:
            why = f"the route to {f.dst} in {ns} is {ans.type}" + (f" ({ans.matched})" if ans.matched else "")
            stray = strayroutes.refusing_route(self.k, self.lab, ns, f.dst, ans.type) \
                if ans.type in strayroutes.REFUSING else None
            problem, fix = stray if stray else (why + ": the kernel drops it", None)
            self.rows.add(ns, self._on(iif), "drop", f"route get {f.dst}: {ans.type}", [cmd], problem=problem,
                          fix=fix)
            return self._stop(stray[0] if stray else why)
        return self._forward(ns, iif, ans, cmd)

    def _no_route(self, ns: str, dev: str, decision: str, commands: list[str], why: str, fix: str | None,
                  message: str, came_here: CameHere | None = None, **facts: Any) -> Walk:
        """A lookup the kernel refused (``message``, as `ip route get` prints it). A socket's own packet then
        leaves by no device: where a link set down took its routes with it (a pod's eth0), that link is the device
        the kernel has there."""
        down = faults.down_links(self.k, ns) if dev == "-" else []
        decision += f": {message}"
        if down:
            dev = down[0]
            decision += f" ({dev} is down: no route left through it)"
            commands = commands + [f"ip -n {ns} link show {dev}"]
        return self._drop(ns, dev, decision, commands, why, fix, error=message, up=False if down else None,
                          came_here=came_here, **facts)

    def _drop(self, ns: str, dev: str, decision: str, commands: list[str], why: str, fix: str | None,
              kind: str = "drop", came_here: CameHere | None = None, **facts: Any) -> Walk:
        """A row that loses the packet here, and the end of the walk (``came_here``: ``why``'s parts, when it says
        why the packet came here)."""
        self.rows.add(ns, dev, kind, decision, commands, problem=why, fix=fix, came_here=came_here, **facts)
        return self._stop(why)

    def _doomed_here(self, why: str, fix: str | None,
                     answer: str | None = None) -> tuple[str, str | None, CameHere | None]:
        """A packet a node's fault doomed, dropped where it ended (the underlay's gateway): that fault, which sent
        it there, and its fix; else dropped where the plan makes no router, or by a router with no route there
        (the internet's gateway, which answers ``answer``), a ClusterIP's echo nothing answers (no fault, no
        fix); with the parts of the words when they say why the packet came here."""
        if self._doomed is not None:
            came = CameHere(why, self._doomed[0])
            return str(came), self._doomed[1], came
        virtual = clusterip.unanswered(self.lab, self.flow, answer)
        return (f"{why}: {virtual}", None, None) if virtual else (why, fix, None)

    def _icmp_answer(self, ns: str, iif: str | None, message: str) -> str | None:
        """What a router (ip_forward 1) that finds no route for a packet it would forward sends its sender: an ICMP
        destination unreachable from its address on the device it came in on (the kernel's ip_error); a namespace
        that does not forward drops it without a word. None when it sends none."""
        kind = {"Network is unreachable": "net", "No route to host": "host"}.get(message)
        link = self.k.links(ns).get(iif) if iif else None
        if kind is None or link is None or not link.addresses or ns in getattr(self.lab, "no_forward", ()) or \
                faults.forwards(self.k, ns) is False:
            return None
        addr = link.addresses[0].split("/")[0]
        said = f"ping: Destination {kind.capitalize()} Unreachable; " if self.flow.proto == "icmp" else ""
        return (f"an ICMP {kind} unreachable from its address {addr} on {iif} ({said}at most one a second to a "
                f"sender, net.ipv4.icmp_ratelimit)")

    def _forward(self, ns: str, iif: str | None, ans: RouteFacts, cmd: str,
                 fault: faults.Reason | None = None) -> State | Walk:
        """Out through the route's device: POSTROUTING, the route (or encapsulation) row, the next hop's MAC.
        ``fault``: what is wrong with this route (a pod CIDR's route missing), said on its row; the packet goes on."""
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
        if ans.hops:
            matched += "; " + self._multipath_words(ns, ans)
        problem = down if snat is None else None  # a down device is named on the last row written here
        # Not the plan's next hop: the packet goes on (the rows after say where), but this row is why it strays.
        # So is a route the plan does not have, more specific than the plan's for the packet (an extra one).
        lb_drift = None if down else strayroutes.balancer_route(self.lab, ns, ans.gateway, ans.hops, oif, ans.matched)
        if lb_drift is not None:
            self._lb_drift = lb_drift
        astray = None if down else strayroutes.wrong_next_hop(self.lab, ns, ans.gateway, oif, ans.matched) or \
            strayroutes.extra_route(self.lab, ns, before.dst, ans.gateway, oif, ans.matched) or lb_drift
        # The request `trace --size` sends has DF (the reply and a VXLAN packet have not): a path MTU in the answer
        # below its size refuses it here (faults.path_mtu), whatever the device's MTU; the sender's kernel, only if
        # its socket refused it (else it learned the MTU from this packet's own fragmentation needed, after it left)
        too_big = faults.path_mtu(ns, before.dst, ans, self._wire_size(), iif is not None) \
            if self.role == "request" and not self.stack and not down and \
            (iif is not None or getattr(self.k, "sent_too_big", None) is not False) else None
        if too_big is None and self.role == "request" and not self.stack and not down and iif is not None:
            # a router meets the MTU of the device it forwards by too (flannel.1, cni0), not only a route's mtu
            too_big = faults.forwarded_too_big(link, self._wire_size(), ns, self._planned_mtu(ns, oif),
                                               self._low_ports(ns, link), self._follows(ns, link))
        if ans.mtu:
            matched += (f"; path MTU {ans.mtu} (learned: cache expires {ans.mtu_expires}sec mtu {ans.mtu})"
                        if ans.mtu_expires is not None else f"; path MTU {ans.mtu} (the route's mtu)")
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
            bridged = iif is not None and self._unseen == (ns, oif)
            if bridged:  # br_nf_pre_routing_finish's lookup after its DNAT: bridged_dnat, no ip_forward
                fwd = (f" (br_netfilter's lookup after the DNAT at the bridge port: the new destination is behind "
                       f"{oif} too, so the frame goes back into the bridge; it is not IP-forwarded, and its TTL is "
                       f"not decremented)")
            fix = None
            if astray is not None:
                problem, fix = astray
            if fault is not None and not down:
                problem, fix = fault
            if too_big is not None:
                problem, fix = too_big
            self.rows.add(ns, oif, "route", f"route get {before.dst} →{via} dev {oif}{src}{fwd}{matched}",
                          [cmd] + ([f"ip -n {ns} route"] if astray or fault else []), self._obs(ns, oif, "out"),
                          problem, fix, oif=oif, gateway=ans.gateway, prefsrc=ans.prefsrc, matched=ans.matched,
                          iif=iif, astray=astray is not None or None, bridged_dnat=bridged or None,
                          missing_route=fault is not None or None, hops=list(ans.hops) or None,
                          lb_route_drift=lb_drift is not None or None, mtu=ans.mtu, mtu_expires=ans.mtu_expires)
            if too_big is not None:
                return self._stop(too_big[0])
        if snat is not None:
            old, hit = snat
            text, commands, facts = self._snat_row(ns, hit, old)
            self.rows.add(ns, oif, "snat", text, commands, self._obs(ns, oif, "out"), down, **facts)
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
            return self._bridge_forward(ns, link, mac, ingress=ingress, routed=iif is not None)
        if link.kind in ("macvlan", "ipvlan"):  # a pod's plugin-made child of a node device: macvlansteps.py
            return self._child_out(ns, link, mac)
        return self._leave(ns, oif, mac)

    def _multipath_words(self, ns: str, ans: RouteFacts) -> str:
        """Why a multipath route sent the packet by this hop: the kernel's hash of its headers picked it."""
        read = getattr(self.k, "sysctl", None)
        policy = read(ns, "net.ipv4.fib_multipath_hash_policy") if read is not None else None
        how = {"0": "source and destination address (fib_multipath_hash_policy 0)",
               "1": "addresses, protocol and ports (fib_multipath_hash_policy 1)",
               "3": "addresses, protocol and ports (fib_multipath_hash_policy 3, custom, "
                    "fib_multipath_hash_fields)"}.get(policy or "", f"fib_multipath_hash_policy {policy}")
        names = self.lab.ip_names
        hops = ", ".join(f"{gw} ({names[gw]})" if gw in names else gw for gw in ans.hops)
        picked = f"{ans.gateway} ({names[ans.gateway]})" if ans.gateway in names else ans.gateway
        return (f"a multipath route of {len(ans.hops)} hops, {hops}: {ns}'s hash of the packet's {how} picked "
                f"{picked}")

    def _source_row(self, ns: str, f: Flow, service: str | None = None) -> None:
        """The row of the route lookup that picked a socket's source address, where nat OUTPUT then DNATs its
        packet (a node reaching a Service): the kernel routes by the address the socket sent to, takes the route's
        preferred source, and keeps it when it routes the packet again by the new destination (a masquerade in
        POSTROUTING may change it later). ``service``: a node's ICMP echo to that Service's ClusterIP, which no
        rule of kube-proxy's DNATs (it matches the Service's ports): routed by that lookup alone."""
        cmd = f"ip -n {ns} route get {f.dst}"
        try:
            ans = self.k.route_get(ns, f.dst)
        except RouteFailure:
            return  # the walk goes on by the new destination; only the source's lookup is not shown
        via = f" via {ans.gateway}" if ans.gateway else ""
        dev = f" dev {ans.oif}" if ans.oif else ""
        why = (f"{service}'s ClusterIP: kube-proxy DNATs only its ports, TCP and UDP, not this ICMP echo, so the "
               f"packet is routed by this destination and this lookup") if service else \
            "before nat OUTPUT's DNAT; the packet is then routed by its new destination and keeps this source"
        self.rows.add(ns, ans.oif or "-", "route",
                      f"route get {f.dst} →{via}{dev} src {ans.prefsrc or f.src}: the source address {f.src} the "
                      f"socket sends from, picked by the route to the address it sent to ({why})",
                      [cmd], None, prefsrc=ans.prefsrc, source=f.src, source_route=True)

    def _source(self, ns: str, dst: str) -> str | Walk:
        """The source address the kernel picks for a socket here sending to ``dst``."""
        try:
            return self.k.route_get(ns, dst).prefsrc or "0.0.0.0"
        except RouteFailure as exc:
            why, fix = strayroutes.refusing_route(self.k, self.lab, ns, dst, exc.message) or \
                faults.links_down(self.k, ns, dst, exc.message, self.lab) or \
                faults.cut_off(self.k, self.lab, ns, dst, exc.message) or \
                (f"no route to {dst} in {ns}: {exc.message}", None)
            return self._no_route(ns, self._on(None), f"route get {dst}", [f"ip -n {ns} route get {dst}"], why, fix,
                                  exc.message)

    def _planned_mtu(self, ns: str, dev: str) -> int | None:
        """The MTU the plan gives ``dev`` (None: not a device the plan makes)."""
        return getattr(self.lab, "planned_mtu", {}).get((ns, dev))

    def _low_ports(self, ns: str, link: Any) -> tuple[tuple[str, int, int], ...]:
        """A bridge's ports below their planned MTU, at the bridge's MTU: (name, MTU, planned)."""
        if link is None or link.kind != "bridge":
            return ()
        out = []
        for port in self.k.links(ns).values():
            want = self._planned_mtu(ns, port.name)
            if port.master == link.name and want is not None and port.mtu < want and port.mtu <= link.mtu:
                out.append((port.name, port.mtu, want))
        return tuple(sorted(out))

    def _follows(self, ns: str, link: Any) -> bool:
        """Whether a bridge's MTU is its smallest port's, as the kernel keeps it until someone sets it by hand
        (a bridge without ports, or a device of another kind: True)."""
        if link is None or link.kind != "bridge":
            return True
        mtus = [port.mtu for port in self.k.links(ns).values() if port.master == link.name and port.mtu]
        return not mtus or min(mtus) == link.mtu

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
        big = faults.too_big(own, size, ns, dev, (ns, dev), own=True, planned=self._planned_mtu(ns, dev)) or \
            faults.too_big(self.k.links(peer[0]).get(peer[1]), size, ns, dev, peer, planned=self._planned_mtu(*peer),
                           encap=bool(self.stack))
        if big:
            return self._drop(ns, dev, big[0], [f"ip -n {peer[0]} link show {peer[1]}"], *big, kind="mtu")
        return FrameIn(peer[0], peer[1], mac)
