"""kube-proxy's firewall of a LoadBalancer IP (loadBalancerSourceRanges), judged from the rules the kernel holds.

iptables mode: KUBE-SERVICES sends the balancer's IP and port to KUBE-FW-<hash>, whose ``-s <range> -j
KUBE-EXT-<hash>`` rules pass the sources it allows on to the DNAT; any other falls through undone, and the filter
table's KUBE-PROXY-FIREWALL (jumped to from INPUT, FORWARD and OUTPUT for a new connection) drops it: ``-d <LB
IP>/32 -p tcp ... --dport <port> -j DROP``. nftables mode: filter-prerouting-pre-dnat (filter-output-pre-dnat for
the node's own packet) jumps to firewall-check, whose verdict map firewall-ips sends the balancer's IP . protocol .
port to firewall-<hash>, whose ``ip saddr != { ... } drop`` drops every other source before any DNAT.

A packet to the balancer's IP the node did not DNAT is dropped there when the kernel holds that drop for its
source, whatever the topology's ranges say: a source outside them is the drop the topology asks for (no fault); a
source inside them that the kernel's rules no longer pass is dropped all the same, and the pass the kernel lacks
is the fault. Without the drop (iptables mode: the DROP or its jump deleted by hand) nothing stops a source
KUBE-FW did not pass: it goes on undone (kubeproxy.without_dnat), and the missing DROP is the fault.

Pure: the kernel's tables and the plan's rules come in as data.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

from netlab.kernel.iptables import command as ipt_command
from netlab.plan.services import KUBE_PROXY_FIREWALL
from netlab.trace import kubeproxy, kubeproxy_nft, nftmatch
from netlab.trace.facts import NatTable, NftTable
from netlab.trace.flow import Flow
from netlab.trace.kubeproxy import NoDnat, Step
from netlab.trace.labmap import LabMap, ServiceFacts

NFT_CHECK = "firewall-check"
NFT_SOURCES = re.compile(r"^ip saddr (!= )?(?:\{ (.*) \}|(\S+)) drop$")


def judge(lab: LabMap, ns: str, svc: ServiceFacts, f: Flow, iif: str | None, local: bool,
          nat: NatTable | None, filt: NatTable | None, nft: NftTable | None) -> NoDnat | None:
    """The row of a packet to ``svc``'s balancer IP that node ``ns`` did not DNAT, when kube-proxy's firewall (as
    the kernel holds it) decides its fate: dropped there (``dropped_here``), or let through undone by a firewall
    that lacks its DROP; None when the firewall is no matter (the kernel's rules pass its source, or it holds none
    of them: the packet's other rules say why it was not DNATed). ``local``: the balancer's IP is the node's own
    (INPUT, not FORWARD)."""
    if svc.fw_chain is None or f.dst != svc.lb_ip:
        return None
    if ns in lab.nft_netns:
        return _nft(lab, ns, svc, f, iif, nft)
    return _iptables(lab, ns, svc, f, iif, local, nat, filt)


def _words(svc: ServiceFacts, f: Flow) -> tuple[str, str]:
    """The row's decision, and the problem's end for a source outside the ranges (how to let it through)."""
    ranges = ", ".join(svc.source_ranges)
    return (f"no DNAT for {f}: {f.src} is outside Service {svc.name}'s loadBalancerSourceRanges ({ranges})",
            f": the drop the topology asks for, not a fault (to let such a client through: send from an address in "
            f"{ranges}, or add its address to the Service's loadBalancerSourceRanges and run netlab up)")


def _held_passes(nat: NatTable | None, svc: ServiceFacts) -> list[str]:
    """The ``-s`` of the kernel's KUBE-FW rules that pass a source on to the DNAT (the balancer's own IP among
    them when a range holds the node's address)."""
    words = [r.line.split() for r in nat.chain_rules(svc.fw_chain or "")] if nat is not None else []
    return [w[w.index("-s") + 1] for w in words if "-s" in w[:-1] and svc.ext_chain in w]


def _in(src: str | None, cidrs: list[str]) -> bool:
    return src is not None and any(IPv4Address(src) in IPv4Network(c, strict=False) for c in cidrs)


def _drop_path(planned: list[str], svc: ServiceFacts, f: Flow, iif: str | None, local: bool) -> list[Step]:
    """The planned filter rules that drop a new connection to the balancer's IP that KUBE-FW did not pass: the
    jump from FORWARD (INPUT for the node's own address, OUTPUT for the node's own packet) to
    KUBE-PROXY-FIREWALL, and its DROP for this IP and port."""
    drop = next((line for line in planned if line.startswith(f"-A {KUBE_PROXY_FIREWALL} ")
                 and f"-d {f.dst}/32 " in line and f"-p {f.proto} " in line
                 and f"--dport {f.dport} " in line and line.endswith("-j DROP")), None)
    if drop is None:
        return []
    hook = "OUTPUT" if iif is None else "INPUT" if local else "FORWARD"
    jumps = [Step(line, "the jump to kube-proxy's firewall") for line in planned
             if line.startswith(f"-A {hook} ") and line.endswith(f"-j {KUBE_PROXY_FIREWALL}")]
    return jumps + [Step(drop, f"kube-proxy's DROP of what {svc.fw_chain} does not pass")]


def _iptables(lab: LabMap, ns: str, svc: ServiceFacts, f: Flow, iif: str | None, local: bool,
              nat: NatTable | None, filt: NatTable | None) -> NoDnat | None:
    node = lab.where(ns).split()[-1]
    planned_nat, planned_filter = lab.planned_nat.get(ns), lab.planned_filter.get(ns)
    steps = _drop_path(list(planned_filter.rules), svc, f, iif, local) if planned_filter is not None else []
    held = _held_passes(nat, svc)
    if not steps or filt is None or planned_filter is None or _in(f.src, held):
        return None  # no DROP planned (a Service without endpoints: its REJECT), or the kernel passes it on
    save = ipt_command("iptables-save")
    commands = [f"ip netns exec {ns} {save} -c -t nat | grep {svc.fw_chain}",
                f"ip netns exec {ns} {save} -c -t filter | grep {KUBE_PROXY_FIREWALL}"]
    decision, asked = _words(svc, f)
    passes = (f"{svc.fw_chain} passes only {', '.join(held)} on to {svc.ext_chain}" if held else
              f"{node}'s nat table holds no rule of {svc.fw_chain} that passes a source on to {svc.ext_chain}")
    gap = kubeproxy.missing(filt, planned_filter, steps, "filter")
    if gap is not None:  # nothing drops it here: it goes on as it is
        why = (f"{f.src} is outside Service {svc.name}'s loadBalancerSourceRanges: {passes}, so the packet falls "
               f"through undone (as asked), but kube-proxy's firewall does not drop it: {gap.text(node)}; without "
               f"a DNAT {kubeproxy.without_dnat(node, svc, f, iif)}")
        return NoDnat(f"{decision}, and {gap.lacks()} is missing", why, commands, gap.fix(ns, planned_filter),
                      cause=True, facts={"service": svc.name, "missing_rule": gap.step.line,
                                         "missing_from": "filter", "source_ranges": list(svc.source_ranges)})
    rule = filt.rule(steps[-1].line)
    counted = f" (its counter went up by {rule.delta} during the trace)" if rule is not None and rule.delta else ""
    how = (f"{passes}; this packet falls through it undone, and {KUBE_PROXY_FIREWALL}'s `{steps[-1].line}` "
           f"drops it{counted}")
    facts = {"dropped_here": True, "service": svc.name, "source_ranges": list(svc.source_ranges)}
    planned_passes = [line for line in planned_nat.rules if line.startswith(f"-A {svc.fw_chain} ")
                      and line.endswith(f"-j {svc.ext_chain}")] if planned_nat is not None else []
    if not _in(f.src, [line.split()[line.split().index("-s") + 1] for line in planned_passes
                       if "-s" in line.split()]):
        return NoDnat(decision, f"dropped by kube-proxy's firewall for Service {svc.name}'s "
                      f"loadBalancerSourceRanges: {how}{asked}", commands, cause=True, facts=facts)
    # the topology lets this source through, the kernel's rules do not: what of kube-proxy's way they lack
    nat_gap = kubeproxy.missing(nat, planned_nat, kubeproxy.path(planned_nat, svc, f, iif)) \
        if nat is not None and planned_nat is not None else None
    lost = kubeproxy.lost_targets(nat, planned_nat, nat_gap) if nat_gap and nat and planned_nat else []
    lacks = f": {nat_gap.text(node)}{kubeproxy.targets_too(lost)}" if nat_gap is not None else ""
    fix = (lab.repair if lost else nat_gap.fix(ns, planned_nat)) if nat_gap and planned_nat else None
    if nat_gap is not None:
        facts.update(missing_rule=nat_gap.step.line, missing_chain=nat_gap.chain)
    return NoDnat(f"no DNAT for {f}: {f.src} is in Service {svc.name}'s loadBalancerSourceRanges, yet not passed",
                  f"dropped by kube-proxy's firewall for Service {svc.name}, though {f.src} is in its "
                  f"loadBalancerSourceRanges ({', '.join(svc.source_ranges)}): {node} did not pass it on to the "
                  f"DNAT{lacks}; {how}", commands, fix, cause=True, facts=facts)


def nft_drops(rule: str, src: str | None) -> bool | None:
    """Whether a rule of the firewall chain as nft lists it drops ``src``: ``drop``, ``ip saddr != { a, b/n, c-d }
    drop`` (nft merges, sorts, lists a /32 as an address and a span no prefix covers as a range),
    ``ip saddr { ... } drop``; None for a rule of another form (it decides nothing trace can read)."""
    rule = rule.removeprefix("counter ")  # a counter (kube-proxy writes none) decides nothing
    if rule == "drop":
        return True
    m = NFT_SOURCES.match(rule)
    if m is None or src is None:
        return None
    held = [e.strip() for e in (m.group(2) or m.group(3) or "").split(",") if e.strip()]
    ip = IPv4Address(src)

    def holds(e: str) -> bool:
        if "-" in e:
            lo, hi = e.split("-", 1)
            return IPv4Address(lo.strip()) <= ip <= IPv4Address(hi.strip())
        return ip in IPv4Network(e, strict=False)

    inside = any(holds(e) for e in held)
    return not inside if m.group(1) else inside


def checked(lab: LabMap, ns: str, f: Flow, iif: str | None, table: NftTable | None) -> NoDnat | None:
    """nftables mode: the row of a packet that the kernel's chain firewall-check drops itself, before any DNAT (a
    rule there that drops it, in place of kube-proxy's verdict map or before it); None when kube-proxy's rule
    decides first, or the way there is not the kernel's. Every new connection that crosses the node's
    filter-prerouting-pre-dnat (filter-output-pre-dnat: the node's own) jumps there, whatever its address."""
    planned = lab.planned_nft.get(ns, ())
    if table is None or not table.exists:
        return None
    hook = "filter-prerouting-pre-dnat" if iif else "filter-output-pre-dnat"
    jumps = [line for line in planned if line.startswith(f"rule {hook} ") and line.endswith(f"jump {NFT_CHECK}")]
    kube = [line for line in planned if line.startswith(f"rule {NFT_CHECK} ")]
    if not jumps or not kube or not all(kubeproxy_nft.present(table, line) for line in jumps):
        return None
    own = [line.split(" ", 3)[3] for line in kube]
    held = table.chain_rules(NFT_CHECK)
    drop = nftmatch.first_drop(NFT_CHECK, lambda chain: table.rules.get(chain), f, table.elements,
                               stop=lambda chain, rule: chain == NFT_CHECK and rule in own)
    if drop is None:
        return None  # kube-proxy's verdict map decides (judge: the firewall chain it leads to)
    rule, node, judged = drop.first.rule, lab.where(ns).split()[-1], drop.judged
    now = table.counters.get(drop.step.chain, ())
    then = (table.counters_before or {}).get(drop.step.chain, ())
    at = drop.step.at
    after, before = (now[at], then[at]) if at < min(len(now), len(then)) else (None, None)
    counted = f" (its counter went up by {after - before} during the trace)" \
        if after is not None and before is not None else ""
    sure = drop.sure or (after is not None and before is not None and after > before)
    place = "before" if any(r in own for r in held[drop.first.at:]) else "in place of"
    verb = "rejects" if judged.verdict and judged.verdict.startswith("reject") else "drops"
    facts: dict = {"dropped_here": True, "drop_rule": drop.step.rule, "chain": drop.step.chain}
    if drop.via:
        facts["via"] = [f"{s.chain}: {s.rule}" for s in drop.via]
    if not all(r in held for r in own):
        facts["missing_rule"] = kube[0]
    kubes = (f"which {node} holds {place} kube-proxy's '{own[0]}' (whose map firewall-ips sends only a balancer's IP "
             "and port with loadBalancerSourceRanges on to its firewall chain, and lets any other packet by)")
    commands = [kubeproxy_nft.list_chain(ns, NFT_CHECK), kubeproxy_nft.list_chain(ns, hook)]
    commands += [kubeproxy_nft.list_chain(ns, c) for c in dict.fromkeys(s.chain for s in (*drop.via[1:], drop.step))
                 if c != NFT_CHECK]
    fix = kubeproxy_nft.fix(ns, kubeproxy_nft.Step(kube[0], "kube-proxy's firewall check"), planned)
    where = f"the chain's rule '{rule}'" + _way(drop)
    said = "" if drop.via else f" {verb} what it matches"  # the way says it
    if not sure:
        facts["may_drop"] = True
        return NoDnat(f"no DNAT for {f}: {node}'s chain {NFT_CHECK} may drop it",
                      f"{node}'s chain {NFT_CHECK} may drop this packet, before any DNAT: {hook} jumps there for "
                      f"every new connection, and {where}{said}; trace cannot "
                      f"evaluate its '{drop.unknown}' (its other matches hold for this packet){counted}, {kubes}. "
                      f"Insert a counter in the rule, or run tcpdump past the node, to see whether it does",
                      commands, fix, cause=True, facts=facts)
    done = "dropped" if verb == "drops" else "rejected"
    return NoDnat(f"no DNAT for {f}: {node}'s chain {NFT_CHECK} {verb} it",
                  f"{done} by {node}'s chain {NFT_CHECK}, before any DNAT: {hook} jumps there for every new connection"
                  f", and the kernel {verb} this packet at {where}"
                  f"{counted}, {kubes}", commands, fix, cause=True, facts=facts)


def _way(drop: nftmatch.Drop) -> str:
    """How a rule of firewall-check leads to the drop in another chain: `` (which jumps to X, whose rule '...' drops
    it)``, each jump and goto on the way; nothing for a drop of firewall-check's own."""
    if not drop.via:
        return ""
    ends = [*drop.via[1:], drop.step]
    verdicts = [nftmatch.COMMENT.sub("", s.rule).split()[-2:] for s in drop.via]  # a rule's comment comes last
    hops = [f"{'jumps' if word == 'jump' else 'goes'} to {chain}" for word, chain in verdicts]
    said = ", ".join(f"which {h}, whose rule '{e.rule}'" for h, e in zip(hops, ends))
    return f" ({said} {'rejects' if (drop.judged.verdict or '').startswith('reject') else 'drops'} what it matches)"


def _nft(lab: LabMap, ns: str, svc: ServiceFacts, f: Flow, iif: str | None, table: NftTable | None) -> NoDnat | None:
    """nftables mode: the kernel's firewall chain drops the source, on the way there the kernel holds."""
    planned = lab.planned_nft.get(ns, ())
    if table is None or not table.exists or svc.fw_chain is None:
        return None
    hook = "filter-prerouting-pre-dnat" if iif else "filter-output-pre-dnat"
    way = [line for line in planned if line.startswith(f"rule {hook} ") and line.endswith(f"jump {NFT_CHECK}")]
    way += [line for line in planned if line.startswith(f"rule {NFT_CHECK} ")]
    way += [line for line in planned
            if line.startswith(f"element firewall-ips {f.dst} . {f.proto} . {f.dport} : goto {svc.fw_chain}")]
    if not way or not all(kubeproxy_nft.present(table, line) for line in way):
        return None  # the kernel sends it to no firewall chain: whatever else stopped its DNAT says why
    # the chain's first rule that decides for this source, as the kernel holds it
    rule, drops = next(((r, d) for r in table.chain_rules(svc.fw_chain) if (d := nft_drops(r, f.src)) is not None),
                       ("", False))
    if not drops:
        return None  # it passes the kernel's firewall: not why it was not DNATed
    node = lab.where(ns).split()[-1]
    commands = [kubeproxy_nft.list_chain(ns, svc.fw_chain),
                f"ip netns exec {ns} nft list map {kubeproxy_nft.TABLE} firewall-ips"]
    decision, asked = _words(svc, f)
    how = (f"the map firewall-ips sends {f.dst} . {f.proto} . {f.dport} to {svc.fw_chain}, whose '{rule}' drops "
           "it before any DNAT")
    facts = {"dropped_here": True, "service": svc.name, "source_ranges": list(svc.source_ranges)}
    kube = [line for line in planned if line.startswith(f"rule {svc.fw_chain} ")]
    if any(nft_drops(line.split(" ", 3)[3], f.src) for line in kube):  # kube-proxy's own rule drops it too
        return NoDnat(decision, f"dropped by kube-proxy's firewall for Service {svc.name}'s "
                      f"loadBalancerSourceRanges: {how}{asked}", commands, cause=True, facts=facts)
    # the topology lets this source through, the kernel's chain does not: its rules, as kube-proxy writes them
    step = kubeproxy_nft.Step(kube[0], f"Service {svc.name}'s loadBalancerSourceRanges") if kube else None
    said = f"; kube-proxy's is '{kube[0].split(' ', 3)[3]}'" if kube else ""
    if step is not None:
        facts["missing_rule"] = step.line
    return NoDnat(f"no DNAT for {f}: {f.src} is in Service {svc.name}'s loadBalancerSourceRanges, yet dropped",
                  f"dropped by kube-proxy's firewall for Service {svc.name}, though {f.src} is in its "
                  f"loadBalancerSourceRanges ({', '.join(svc.source_ranges)}): {node}'s chain {svc.fw_chain} is "
                  f"not kube-proxy's: {how}{said}", commands,
                  kubeproxy_nft.fix(ns, step, planned) if step is not None else lab.repair, cause=True, facts=facts)
