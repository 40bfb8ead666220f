"""The walker's NAT steps: what conntrack and kube-proxy did to the packet in a namespace.

The walker (walk.py) calls these where the kernel runs its nat hooks:
PREROUTING (OUTPUT for a namespace's own sockets) when a packet enters a
namespace's IP layer, POSTROUTING when it leaves through a device, and both
for a frame a bridge switches when ``bridge-nf-call-iptables`` is on. The
translation itself is read from the packet's conntrack entry (nat.py); when
a Service packet was not DNATed on a node, kube-proxy's rules say why
(kubeproxy.py), and when it was, which rule chose the endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.kernel.iptables import command as ipt_command
from netlab.trace import (clusterip, detour, faults, hostport, kubeproxy, kubeproxy_nft, lbfirewall, lbpath, nat,
                          unnatreply, wrongdnat)
from netlab.trace.facts import LinkFacts, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.hops import CameHere, Hop
from netlab.trace.labmap import ServiceEndpoint, ServiceFacts
from netlab.plan.services import KUBE_NODEPORTS
from netlab.realize.state import reconfigure_command
from netlab.trace.walkparts import WalkParts
from netlab.trace.wrongdnat import delete_entry


HELD = ("the entry conntrack held for this flow before the packet came (an earlier packet of it, from the same source "
        "port): the packet followed its DNAT, and kube-proxy's rules did not choose again")




class NatSteps(WalkParts):
    """The NAT half of :class:`~netlab.trace.walk.Walker` (it holds the packet and the rows)."""

    def _prerouting(self, ns: str, iif: str | None) -> tuple[Flow | None, Hop | None]:
        """PREROUTING/OUTPUT: the destination change (a DNAT, or a reply's un-SNAT), and its row to write.

        The packet's conntrack entry and its direction are found here, once per
        namespace, before any translation; POSTROUTING (:meth:`_snat`) uses the
        same. The new flow is None when the destination stays.
        """
        hit = None
        if not self.stack and ns in self.lab.nat_netns:
            hit = nat.find(self.k.conntrack(ns, self.flow.tracked().proto), self.flow)
        if hit is None:
            return None, self._not_dnated(ns, iif)
        self._ct_hit[ns] = hit
        old, new = self.flow, nat.new_destination(self.flow, hit)
        if new == old:  # an entry (a masquerade, say) but no DNAT
            return None, self._not_dnated(ns, iif, hit)
        self._pre_nat[ns] = old
        own = iif is None  # OUTPUT: the namespace's own packet
        kp = ns in self.lab.kube_proxy_netns  # a node: kube-proxy's DNAT (a LoadBalancer IP's too)
        facts = nat.service_facts(self.lab, old, new, hit, own, kp)
        how = self._hostport(ns, old, new, hit, facts)  # no Service's: portmap's hostPort DNAT, if it is one
        held = "sep_chain" in facts and hit.direction == "orig" and hit.entry.made_before
        # another endpoint's chain DNATs there too (edited by hand): the one that took the packet, if one says so
        other = self._detour(ns, old, new) if "sep_chain" in facts and not held else None
        via = other.chain if other is not None else None
        unsure = other is not None and via is None  # several chains DNAT there, and no counter says which
        wrong = self._wrong(ns, old, new, hit) or self._detour_why(ns, other)
        entry = self._nodeport_path(ns, old, iif, facts) if kp and facts.get("via") == "NodePort" else None
        text = nat.describe(self.lab, "dst", hit, old, new, own, " or ".join(other.candidates) if unsure else via,
                            stale=wrong is not None and bool(wrong.facts.get("stale_entry")), lb=kp,
                            nodeport=entry[0] if entry else (), how=how)
        way = entry[1] if entry else self._lb_path(ns, old, iif, facts) if kp else None
        if way is not None:
            facts["path"] = way
        chosen: kubeproxy.Choice | kubeproxy_nft.Choice | None = None
        if held:
            # Not a new connection to conntrack: nothing chose an endpoint now, the entry's DNAT was applied.
            facts.update(chosen_by=HELD, held_before=True)
            text += f"; chosen by {HELD}"
        elif unsure:
            text += "; no counter says which of these chains took it"
        elif "sep_chain" in facts and ns in self.lab.kube_proxy_netns:  # which random rule chose the endpoint
            if ns in self.lab.nft_netns:  # kube-proxy in nftables mode: the numgen map's element
                chosen = kubeproxy_nft.chosen_by(self.lab, self.k.nft_table(ns), old, new, own, via)
            else:
                chosen = kubeproxy.chosen_by(self.lab, self.k.nat_table(ns), old, new, own, via)
            if chosen is not None:
                text += f"; {chosen.short()}"
                facts.update(chosen.facts())
        commands = self._nat_commands(ns, hit, "dst")
        if isinstance(chosen, kubeproxy_nft.Choice):  # sessionAffinity: the set that held the client
            commands += chosen.commands(ns)
        if other is not None:  # the chain that took it, or those that may have
            facts["sep_chain"] = via or " or ".join(other.candidates)
        if other is not None and ns in self.lab.nft_netns:  # the chains that may have DNATed it, edited
            commands += [kubeproxy_nft.list_chain(ns, e.chain) for e in other.edited]
        if wrong is not None:
            facts.update(wrong.facts)
        row = self.rows.row(ns, iif or "-", "dnat", text, commands, None,
                            wrong.problem if wrong else None, wrong.fix if wrong else None, cause=wrong is not None,
                            conntrack=hit.entry.text(), before=str(old), after=str(new), **facts)
        return new, row

    def _hostport(self, ns: str, old: Flow, new: Flow, hit: nat.Hit, facts: dict) -> str:
        """A node's DNAT that no Service's rules made, when portmap's hostPort rule for a pod did: its facts (the
        pod as the trace's endpoint) into ``facts``, and the words that name the rule; "" for another DNAT."""
        if facts or hit.direction != "orig" or not self.lab.where(ns).startswith("node "):
            return ""
        pod = self.lab.ip_names.get(new.dst)
        found = hostport.dnat_of(self.k.nat_table(ns), old, new) if pod else None
        if found is None or pod is None or f"pod {pod}" not in self.lab.names.values():
            return ""
        facts.update(hostport.facts(found, pod, new))
        return hostport.words(found, pod, old)

    def _hostport_unkept(self, ns: str, iif: str) -> Hop | None:
        """A packet to a hostPort of a pod of this node that conntrack kept no entry of: portmap's rules here DNAT
        it to the pod in PREROUTING, as kube-proxy's do a nodePort's, and a NetworkPolicy's REJECT (or a FORWARD
        policy of DROP) then dropped it in FORWARD, before conntrack keeps an entry (when the packet leaves the
        node). The row names portmap's rule and the pod (the trace's endpoint, judged by the policies as a
        nodePort's is: policy.py); None for another packet, or one no such drop counted."""
        f = self.flow
        if not self.lab.where(ns).startswith("node ") or f.dport is None:
            return None
        found = hostport.rule_for(self.k.nat_table(ns), f)
        pod = self.lab.ip_names.get(found[1].dst) if found else None
        if found is None or pod is None or f"pod {pod}" not in self.lab.names.values():
            return None
        drop = faults.forward_policy(self.k, ns) or faults.policy_reject(self.k, ns)
        if drop is None:
            return None
        rule, new = found
        commands = [f"ip netns exec {ns} conntrack -L -p {f.proto} --orig-dst {f.dst}",
                    f"ip netns exec {ns} {ipt_command('iptables-save')} -c -t nat"]
        return self.rows.row(
            ns, iif, "dnat", f"DNAT by portmap's rules, but no conntrack entry kept for {f}"
                             f"{hostport.words(rule, pod, f)}", commands,
            problem=f"{f.endpoint('dst')} is hostPort {f.dport} of pod {pod}, whose DNAT to {new.endpoint('dst')} "
                    f"{ns}'s rules hold (portmap's), but {ns} has no conntrack entry for this packet: it was dropped "
                    f"before conntrack kept one; {drop[0]}", fix=drop[1], cause=True, dropped_here=True,
            **hostport.facts(rule, pod, new))

    def _lb_path(self, ns: str, old: Flow, iif: str | None, facts: dict) -> str | None:
        """A pod's or the node's own packet DNATed here for a LoadBalancer IP: its way through kube-proxy's
        rules, in words (lbpath.py); None for another packet."""
        svc = self.lab.service_for(old.dst, old.dport, old.proto)
        if svc is None or old.dst != svc.lb_ip or "sep_chain" not in facts:
            return None
        if ns in self.lab.nft_netns:
            lines = [s.line for s in kubeproxy_nft.path(self.lab.planned_nft.get(ns, ()), svc, old, iif)]
        elif ns in self.lab.planned_nat:
            lines = [s.line for s in kubeproxy.path(self.lab.planned_nat[ns], svc, old, iif)]
        else:
            return None
        return lbpath.words(lines, svc, old, iif is None, ns in self.lab.nft_netns, facts["sep_chain"])

    def _nodeport_path(self, ns: str, old: Flow, iif: str | None, facts: dict) -> tuple[list[str], str] | None:
        """A packet DNATed here at the node's own address and a nodePort: the chains of its way through
        kube-proxy's nodePort rules from the dispatch to its endpoint's chain, and that way in words, with what the
        nodePort rule's counter says (lbpath.py)."""
        svc = self.lab.service_for(old.dst, old.dport, old.proto)
        if svc is None or "sep_chain" not in facts:
            return None
        nft = ns in self.lab.nft_netns
        if nft:
            lines = [s.line for s in kubeproxy_nft.path(self.lab.planned_nft.get(ns, ()), svc, old, iif)]
        elif ns in self.lab.planned_nat:
            lines = [s.line for s in kubeproxy.path(self.lab.planned_nat[ns], svc, old, iif)]
        else:
            return None
        counted = ""
        table = None if nft else self.k.nat_table(ns)
        rule = next((r for r in table.chain_rules(KUBE_NODEPORTS) if r.target == svc.ext_chain
                     and f"--dport {old.dport} " in r.line + " "), None) if table is not None else None
        if rule is not None and rule.delta is not None:
            counted = (f"; `{rule.line}` counted it (its counter went up by {rule.delta} during the trace)"
                       if rule.delta else f"; `{rule.line}` did not count it (its counter stayed)")
        chains = lbpath.nodeport_chains(lines, nft, "", facts["sep_chain"])[1:]
        node = self.lab.where(ns).split()[-1]
        return chains, lbpath.nodeport_words(lines, svc, old, iif is None, nft, facts["sep_chain"], node, counted)

    def _detour(self, ns: str, old: Flow, new: Flow) -> detour.Detour | None:
        """The Service's endpoint chains that DNAT to ``new`` besides the endpoint's own (detour.py)."""
        svc = self.lab.service_for(old.dst, old.dport, old.proto)
        if svc is None or ns not in self.lab.kube_proxy_netns:
            return None
        if ns in self.lab.nft_netns:
            return detour.nft_detour(self.lab, ns, svc, new, self.k.nft_table(ns))
        return detour.iptables_detour(self.lab, ns, svc, new, self.k.nat_table(ns))

    def _detour_why(self, ns: str, d: detour.Detour | None) -> wrongdnat.Why | None:
        """The DNAT row's problem and fix when an endpoint chain that is not the endpoint's own DNATs there: the
        packet arrives, by a path the lab did not plan (astray)."""
        if d is None:
            return None
        where = f"table {kubeproxy_nft.TABLE}" if ns in self.lab.nft_netns else "nat table"
        return wrongdnat.Why(d.problem(self.lab.where(ns).split()[-1], where), d.fix(), d.facts())

    def _wrong(self, ns: str, old: Flow, new: Flow, hit: nat.Hit) -> wrongdnat.Why | None:
        """A Service flow DNATed to an address that is none of its endpoints: a stale entry, or a rule that says
        so (wrongdnat.py)."""
        svc = self.lab.service_for(old.dst, old.dport, old.proto)
        if svc is None or old.dst != svc.ip or svc.endpoint(new.dst, new.dport) is not None or hit.direction != "orig":
            return None
        nft = self.k.nft_table(ns) if ns in self.lab.nft_netns else None
        return wrongdnat.explain(self.lab, ns, svc, old, new, hit.entry.made_before, self.k.nat_table(ns), nft)

    def _not_dnated(self, ns: str, iif: str | None, hit: nat.Hit | None = None) -> Hop | None:
        """A packet for a Service that kube-proxy's rules here did not DNAT: the row that says why.

        Only a node (a namespace with kube-proxy's chains) DNATs Services. When
        its nat table lacks a rule or chain of the packet's path, that is the
        reason, and the packet is doomed here although it travels on: the
        ClusterIP is an address no interface owns, so it follows the node's
        routes as it is (to the gateway, say) and disappears somewhere else.
        """
        f = self.flow
        svc = self.lab.service_for(f.dst, f.dport, f.proto) if not self.stack else None
        fw = self._firewall(ns, iif, svc) if svc is not None and self.direction == "forward" else None
        if fw is not None:
            return fw
        if svc is None and ns in self.lab.nft_netns and self.direction == "forward" and not self.stack:
            check = clusterip.rejected(self.lab, self.k.nft_table(ns), ns, f, iif)  # a ping to a ClusterIP, say
            if check is not None:  # iif: where the node's ICMP error may take its source (rejectanswer)
                return self.rows.row(ns, iif or "-", "dnat", check.decision, check.commands,
                                     problem=check.problem, cause=True, iif=iif, **check.facts)
        if svc is None and hit is None and iif and self.direction == "forward" and not self.stack:
            unkept = self._hostport_unkept(ns, iif)  # a hostPort's packet a policy dropped past portmap's DNAT
            if unkept is not None:
                return unkept
        if not (svc and ns in self.lab.kube_proxy_netns and self.direction == "forward"):
            return None
        if f.dst not in svc.addresses and not self._local(ns, f.dst):
            return None  # a nodePort only counts on the node's own addresses (--dst-type LOCAL)
        if hit is not None and hit.direction == "orig" and hit.entry.made_before:
            return self._held_without_dnat(ns, iif, svc, hit)
        if ns in self.lab.nft_netns and f.dst.startswith("127."):  # no fault: nftables mode has no such nodePorts
            return self.rows.row(ns, iif or "-", "dnat", kubeproxy_nft.no_localhost_nodeport(svc.name, f),
                                 [f"ip netns exec {ns} nft list set {kubeproxy_nft.TABLE} nodeport-ips"],
                                 service=svc.name, localhost_nodeport=True)
        if ns in self.lab.nft_netns:
            why = kubeproxy_nft.no_dnat(self.lab, self.k.nft_table(ns), ns, svc, f, iif, self._nft_problem(ns))
        else:
            refused = not svc.endpoints or svc.dropped_on(self.lab.where(ns).split()[-1], f.src, f.dst, iif is None)
            why = kubeproxy.no_dnat(self.lab, self.k.nat_table(ns) if svc.endpoints else None, ns, svc, f, iif,
                                    self.k.filter_table(ns) if refused else None)
        unconfirmed = self._unconfirmed(ns, iif, svc, f, why.facts.get("missing_rule")) if svc.endpoints else None
        if unconfirmed is not None:
            return unconfirmed
        drop = (faults.forward_policy(self.k, ns) or faults.policy_reject(self.k, ns)
                or (faults.hairpin_off(self.k, ns, self._port_in, f.src, svc, self.lab,
                                       lambda: reconfigure_command(self.lab.lab))
                    if self.k.bridge_nf(ns) else None)  # without br_netfilter the DNAT is routed, not bridged
                or self._unkept(ns, iif, svc)
                if iif and not why.cause and svc.endpoints else None)
        if drop is not None:
            # The rules are whole, yet no entry: conntrack keeps a flow's entry only once its first packet
            # leaves the node, and a packet DNATed to a pod must pass FORWARD to leave.
            why = kubeproxy.NoDnat(f"DNAT by the rules, but no conntrack entry kept for {f}",
                                   f"{f.endpoint('dst')} is Service {svc.name}, whose DNAT {ns}'s "
                                   f"rules hold, but {ns} has no conntrack entry for this packet: it was dropped "
                                   f"before conntrack kept one; {drop[0]}", why.commands, drop[1], cause=True,
                                   facts={**why.facts, "dropped_here": True})
        facts = dict(why.facts)
        if "rejected" in facts:  # kube-proxy's REJECT: the device it came in by (rejectanswer.came_in_by)
            facts["iif"] = iif
        if f.dst == svc.lb_ip and why.cause and svc.endpoints and not facts.get("dropped_here"):
            # not DNATed here, it goes out to the internet's gateway, which routes the address back to a node:
            # delivered, if at all, by a path the lab did not plan (TraceResult.astray)
            facts["astray"] = True
        problem, fix, came = why.problem, why.fix, None
        if facts.get("no_local_endpoints") and self._lb_drift is not None:
            # the internet gateway's route sent an outside client here, to a node the plan does not route it to
            came = CameHere(problem, self._lb_drift[0])
            problem, fix = str(came), fix or self._lb_drift[1]
        return self.rows.row(ns, iif or "-", "dnat", why.decision, why.commands, problem=problem, fix=fix,
                             cause=why.cause, came_here=came, **facts)

    def _firewall(self, ns: str, iif: str | None, svc: ServiceFacts) -> Hop | None:
        """A packet to a LoadBalancer IP kube-proxy's firewall (loadBalancerSourceRanges) decides, as the kernel's
        rules hold it: dropped there (outside the ranges, the drop the topology asks for: no fault, as a
        NetworkPolicy's deny; inside them, the pass the kernel lacks is the fault), or let through undone by a
        firewall that lacks its DROP (lbfirewall.py); nftables mode, any Service's packet that a rule of the kernel's
        firewall-check drops (lbfirewall.checked). None: the firewall is no matter here."""
        if ns not in self.lab.kube_proxy_netns:
            return None
        nft = ns in self.lab.nft_netns
        # nftables mode: a drop in firewall-check itself drops any Service's packet, before any DNAT
        why = lbfirewall.checked(self.lab, ns, self.flow, iif, self.k.nft_table(ns)) if nft else None
        if why is None and (svc.fw_chain is None or self.flow.dst != svc.lb_ip):
            return None
        why = why or lbfirewall.judge(self.lab, ns, svc, self.flow, iif, self._local(ns, self.flow.dst),
                                      None if nft else self.k.nat_table(ns), None if nft else self.k.filter_table(ns),
                                      self.k.nft_table(ns) if nft else None)
        if why is None:
            return None
        return self.rows.row(ns, iif or "-", "dnat", why.decision, why.commands, problem=why.problem, fix=why.fix,
                             cause=why.cause, **why.facts)

    if TYPE_CHECKING:  # l2steps.py's, on the same Walker
        def _port_toward(self, ns: str, bridge: LinkFacts, ip: str) -> faults.Reason | None: ...

    def _unkept(self, ns: str, iif: str, svc: ServiceFacts) -> faults.Reason | None:
        """Why a Service packet whose DNAT the rules of ``ns`` hold died before conntrack kept its entry, when it is
        not the firewall's: conntrack confirms a flow's first packet only as it leaves the node (or is delivered
        in it). The node does not forward (ip_forward 0: dropped at the forwarding decision, whatever endpoint
        the rules picked); or the bridge port towards the endpoint they picked takes no frame (the node's ARP
        request for it goes unanswered, and the packet waiting for the answer is dropped)."""
        picked, how = self._picked(ns, svc)
        read = getattr(self.k, "sysctl", None)
        if read is not None and read(ns, "net.ipv4.ip_forward") == "0":
            to = f"{picked.ip}:{picked.port} ({picked.pod}{how})" if picked else "one of its endpoints"
            return (f"the rules DNATed it to {to}, but net.ipv4.ip_forward = 0 in {ns}: the node does not forward, "
                    f"so the DNATed packet in on {iif} is dropped at the forwarding decision, before it leaves the "
                    f"node{faults.NODE_FORWARDS}", f"ip netns exec {ns} sysctl -w net.ipv4.ip_forward=1")
        bridges = [link for link in self.k.links(ns).values() if link.kind == "bridge"]
        blocked = [(e, r) for e in ([picked] if picked else svc.endpoints) for b in bridges
                   for r in [self._port_toward(ns, b, e.ip)] if r is not None]
        if not blocked:
            return None
        e, (why, fix) = blocked[0]
        if picked is None and len(blocked) < len(svc.endpoints):
            how = ("; no counter says which endpoint the rules picked, but a packet DNATed to another one would "
                   "have left the node, and conntrack would have kept its entry")
        return (f"the rules DNATed it to {e.ip}:{e.port} ({e.pod}{how}), but {why}: the node's ARP request for "
                f"{e.ip} goes unanswered, and the packet waiting for the answer is dropped", fix)

    def _picked(self, ns: str, svc: ServiceFacts) -> tuple[ServiceEndpoint | None, str]:
        """The endpoint whose chain's DNAT counted a packet while the trace ran, and how that is known: iptables
        counts every rule; kube-proxy's nftables table only with a counter a user inserted (detour.py)."""
        if ns in self.lab.nft_netns:
            nft = self.k.nft_table(ns)
            moved = [e for e in svc.endpoints if nft is not None and nft.counted(e.sep_chain)]
        else:
            table = self.k.nat_table(ns)
            moved = [e for e in svc.endpoints if table is not None
                     and any(r.delta for r in table.chain_rules(e.sep_chain) if wrongdnat.dnat_to(r.line))]
        if len(moved) != 1:
            return None, ""
        return moved[0], f"; the counter of {moved[0].sep_chain}'s DNAT went up during the trace"

    def _unconfirmed(self, ns: str, iif: str | None, svc: ServiceFacts, f: Flow, missing: str | None) -> Hop | None:
        """A Service packet DNATed by a rule edited by hand to an address that is no endpoint, which died there
        before conntrack kept an entry (wrongdnat.unconfirmed_rule): the row that blames the rule."""
        nft = self.k.nft_table(ns) if ns in self.lab.nft_netns else None
        gap_chain = missing.split()[1] if missing and len(missing.split()) > 1 else None
        rule = wrongdnat.unconfirmed_rule(self.lab, ns, svc, self.k.nat_table(ns), nft, gap_chain)
        if rule is None:
            return None
        to = (wrongdnat.dnat_to(rule.text) or "").rsplit(":", 1)[0]
        try:
            route = self.k.route_get(ns, to)
        except RouteFailure:
            route = None
        dev = route.oif if route is not None and route.type == "unicast" and route.gateway is None else None
        neigh = self.k.neigh(ns, dev, to) if dev else None
        arp = wrongdnat.arp_words(self.lab.where(ns).split()[-1], to, dev, neigh.state if neigh else None)
        why = wrongdnat.unconfirmed(self.lab, ns, svc, f, rule, arp)
        commands = [f"ip netns exec {ns} conntrack -L -p {f.proto} --orig-dst {f.dst}",
                    f"ip netns exec {ns} nft list chain {kubeproxy_nft.TABLE} {rule.chain}" if nft is not None else
                    f"ip netns exec {ns} {ipt_command('iptables-save')} -c -t nat"]
        if dev:
            commands.append(f"ip netns exec {ns} ip neigh show {to} dev {dev}")
        return self.rows.row(ns, iif or "-", "dnat", f"DNAT {f.endpoint('dst')} → {why.facts['dnat_to']}: no "
                             f"endpoint of Service {svc.name}, and conntrack kept no entry", commands,
                             problem=why.problem, fix=why.fix, cause=True, **why.facts)

    def _held_without_dnat(self, ns: str, iif: str | None, svc: ServiceFacts, hit: nat.Hit) -> Hop:
        """A Service packet that met an entry its namespace held before it, made without a DNAT: the row.

        conntrack consults the nat table for a connection's first packet only.
        A flow that left an entry without a DNAT (its SYN went out while
        kube-proxy's rule was missing, say; an unanswered SYN's entry stays 120 s,
        a UDP flow's 30 s) keeps every later packet of the same five-tuple out of
        the nat table, whatever the rules say now: kube-proxy's own cleanup of
        stale UDP entries exists for this.
        """
        f = self.flow
        if ns in self.lab.nft_netns:
            then, refused = kubeproxy_nft.without_dnat(self.lab, self.k.nft_table(ns), ns, svc, f, iif)
        else:
            then, refused = kubeproxy.without_dnat(self.lab.where(ns).split()[-1], svc, f, iif), False
        problem = (f"{ns} already held a conntrack entry for this flow, made before this packet and without a DNAT "
                   f"({hit.entry.text()}): packets of a known flow skip the nat table, so kube-proxy's rules for "
                   f"Service {svc.name} never saw this one; without a DNAT {then}")
        fix = delete_entry(ns, f)
        commands = [nat.list_entries(ns, f)]
        return self.rows.row(ns, iif or "-", "dnat", f"no DNAT for {f}: an older entry holds the flow", commands,
                             problem=problem, fix=fix, cause=True, conntrack=hit.entry.text(), held_before=True,
                             dropped_here=refused or None)

    def _nft_problem(self, ns: str) -> str | None:
        """Why kube-proxy's table in ``ns`` could not be read (a kernel that does not say: None)."""
        said = getattr(self.k, "nft_problem", None)
        return said(ns) if said is not None else None

    def _local(self, ns: str, ip: str) -> bool:
        """``ip`` is an address of this namespace (iptables' ``-m addrtype --dst-type LOCAL``)."""
        return any(a.split("/")[0] == ip for link in self.k.links(ns).values() for a in link.addresses)

    def _bridged_nat(self, ns: str, port: str) -> None:
        """A frame the bridge switches: with br_netfilter it passes nat PREROUTING and POSTROUTING too.

        So conntrack translates it on the bridge: a same-node endpoint's reply,
        sent straight to the client's MAC, gets its source turned back into the
        ClusterIP there (:meth:`_snat`, when it leaves the port).
        """
        if self.stack or ns not in self.lab.nat_netns:
            return
        if not self.k.bridge_nf(ns):
            self._unnat_skipped(ns, port)
            return
        hit = nat.find(self.k.conntrack(ns, self.flow.tracked().proto), self.flow)
        if hit is None:
            return
        self._ct_hit[ns] = hit
        old, new = self.flow, nat.new_destination(self.flow, hit)
        if new != old:
            self.rows.add(ns, port, "dnat", nat.describe(self.lab, "dst", hit, old, new,
                                                         lb=ns in self.lab.kube_proxy_netns) + " (br_netfilter, on the "
                          "bridge)", self._nat_commands(ns, hit, "dst"), None, conntrack=hit.entry.text(),
                          before=str(old), after=str(new))
            self.flow = new

    def _unnat_skipped(self, ns: str, port: str) -> None:
        """Without br_netfilter a bridged reply skips conntrack: a DNATed flow's reply keeps the endpoint's
        source, and the client's kernel, whose connection is with the Service address, answers it as a stray
        (unnatreply.py: a reset, a port unreachable). Doomed here, though it arrives."""
        hit = nat.find(self.k.conntrack(ns, self.flow.tracked().proto), self.flow)
        new = nat.new_source(self.flow, hit) if hit is not None else self.flow
        if hit is None or new.src == self.flow.src:
            return
        why = (f"net.bridge.bridge-nf-call-iptables = 0 in {ns}: this reply is bridged straight to the client "
               f"without passing iptables, so conntrack never turns its source {self.flow.src} back into "
               f"{new.src}; {unnatreply.client_words(self.flow, new, self.lab.ip_names.get(self.flow.src or ''))}")
        self.rows.add(ns, port, "dnat", f"bridged without iptables: the reply keeps source {self.flow.src}",
                      [f"ip netns exec {ns} sysctl net.bridge.bridge-nf-call-iptables"], None, problem=why,
                      fix=f"ip netns exec {ns} sysctl -w net.bridge.bridge-nf-call-iptables=1", cause=True,
                      stray_reply=unnatreply.answered(self.flow.proto) or "ignored")

    def _snat(self, ns: str) -> tuple[Flow, nat.Hit] | None:
        """POSTROUTING: the source change (masquerade, or a reply's un-DNAT); the flow before it, and the entry."""
        hit = self._ct_hit.pop(ns, None)
        if hit is None:
            return None
        new = nat.new_source(self.flow, hit)
        if new == self.flow:
            return None
        old, self.flow = self.flow, new
        return old, hit
