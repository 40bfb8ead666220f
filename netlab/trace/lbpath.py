"""The way a packet to a LoadBalancer IP takes through a node's kube-proxy rules, in words: a pod's or the node's
own, and an outside client's, which the internet's gateway routes to a node untranslated (plan/internet.py).

kube-proxy matches a Service's LoadBalancer IP in its Service dispatch as it
does the ClusterIP (iptables mode: ``-A KUBE-SERVICES -d <LB IP>/32 ... "<svc>
loadbalancer IP" -j KUBE-EXT-<hash>``; nftables mode: the ``service-ips``
element ``<LB IP> . tcp . <port> : goto external-...``), and that dispatch
runs at nat PREROUTING (a pod's packet, in from cni0) and at nat OUTPUT (the
node's own sockets). So a packet sent to the LoadBalancer IP from inside the
cluster never goes to the balancer: its node DNATs it straight to an endpoint
(kube-proxy's proxier.go: "Redirect all src-type=LOCAL -> external destination
to the policy=cluster chain. This allows traffic originating from the host to
be redirected to the service correctly"). The external chain marks it for the
masquerade (KUBE-MARK-MASQ; ``jump mark-for-masquerade``): every packet of an
externalTrafficPolicy Cluster Service, and with Local the node's own ("masquerade
LOCAL traffic"), whereas a pod's is sent on unmarked ("pod traffic for ...
external destinations"); both are short-circuited to the Service's chain of
every endpoint, never the node's own endpoints' only.

Pure: the planned path (kubeproxy.path, kubeproxy_nft.path) comes in as lines.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from netlab.plan import nftables
from netlab.plan.services import KUBE_MARK_MASQ, KUBE_NODEPORTS
from netlab.trace.flow import Flow
from netlab.trace.labmap import ServiceFacts


def _chain(line: str, nft: bool) -> str | None:
    """The chain a planned line is in (iptables: ``-A CHAIN ...``; nftables: ``rule CHAIN ...``, ``chain CHAIN``;
    a map element is the dispatch's, ``services``)."""
    words = line.split()
    if not nft:
        return words[1] if len(words) > 1 else None
    if words[0] in ("rule", "chain"):
        return words[1]
    return nftables.SERVICES if words[0] == "element" else None


def _hook(own: bool, nft: bool) -> str:
    return ("nat-output" if own else "nat-prerouting") if nft else ("OUTPUT" if own else "PREROUTING")


def crossed(lines: list[str], nft: bool, hook: str, sep_chain: str) -> list[str]:
    """The chains the planned ``lines`` a packet crosses are in, from ``hook`` to its endpoint's ``sep_chain``."""
    chains = [hook]
    for line in lines:
        chain = _chain(line, nft)
        if chain is None or chain in chains or (chain != sep_chain and chain.startswith(("KUBE-SEP-", "endpoint-"))):
            continue
        chains.append(chain)
    if sep_chain not in chains:
        chains.append(sep_chain)
    return chains


def nodeport_chains(lines: list[str], nft: bool, hook: str, sep_chain: str) -> list[str]:
    """:func:`crossed` for a packet to a nodePort; in nftables mode the verdict map the dispatch looks the port up in,
    ``map service-nodeports``, is named after ``services`` (iptables mode has the chain KUBE-NODEPORTS there)."""
    chains = crossed(lines, nft, hook, sep_chain)
    if nft and nftables.SERVICES in chains:
        chains.insert(chains.index(nftables.SERVICES) + 1, "map service-nodeports")
    return chains


def _marking(lines: list[str], svc: ServiceFacts, nft: bool) -> list[str]:
    """The external chain's rules among ``lines`` that mark the packet for the masquerade."""
    mark = f"jump {nftables.MARK_MASQ}" if nft else f"-j {KUBE_MARK_MASQ}"
    return [line for line in lines if _chain(line, nft) == svc.ext_chain and mark in line]


def nodeport_words(lines: list[str], svc: ServiceFacts, f: Flow, own: bool, nft: bool, sep_chain: str, node: str,
                   counted: str) -> str:
    """The path of packet ``f`` to ``node``'s own address and ``svc``'s nodePort in its kube-proxy rules, as a
    sentence: the chains it crosses, the masquerade's mark; ``counted``: what the kernel's counters say of the
    nodePort rule (iptables mode), or "" (nftables mode, where kube-proxy writes no counter)."""
    hook = _hook(own, nft)
    chains = nodeport_chains(lines, nft, hook, sep_chain)
    dispatch, entry = (("services", f"element {f.proto} . {f.dport} of map service-nodeports") if nft else
                       ("KUBE-SERVICES", f"rule for --dport {f.dport} in {KUBE_NODEPORTS}"))
    text = (f"a packet to {node}'s nodePort {f.endpoint('dst')}: no Service address in {dispatch} is "
            f"{f.dst}, the node's own, so the nodePort dispatch catches it, kube-proxy's {entry}, which DNATs it: "
            f"{' → '.join(chains)}{counted}")
    if _marking(lines, svc, nft):
        text += (f"; {svc.ext_chain} marks it for the masquerade ({'mark-for-masquerade' if nft else KUBE_MARK_MASQ}"
                 "), so it leaves the node masqueraded to the address of the device it leaves by")
    elif svc.external_local:
        text += (f"; externalTrafficPolicy Local: {svc.chain_for(f.src, f.dst, own)} picks among the node's own "
                 "endpoints, the client's address kept")
    return text


def words(lines: list[str], svc: ServiceFacts, f: Flow, own: bool, nft: bool, sep_chain: str) -> str | None:
    """The path of packet ``f`` (to ``svc``'s LoadBalancer IP) in a node's kube-proxy rules, as a sentence:
    the hook, the chains it crosses to its endpoint's chain ``sep_chain``, and whether it is marked for the
    masquerade; None for a packet to another address. ``lines``: the planned lines it crosses, in order;
    ``own``: the node's own packet (nat OUTPUT); ``nft``: kube-proxy in nftables mode."""
    if svc.lb_ip is None or f.dst != svc.lb_ip or svc.ext_chain is None:
        return None
    hook = _hook(own, nft)
    chains = crossed(lines, nft, hook, sep_chain)
    marking = _marking(lines, svc, nft)
    entry = (f"element {svc.lb_ip} . {f.proto} . {f.dport} of map service-ips" if nft
             else f'rule "{svc.name} loadbalancer IP" in KUBE-SERVICES')
    if f.src is not None and svc.sender(f.src, own) == "outside":
        return _outside_words(svc, f, nft, hook, entry, chains, marking)
    who = "the node's own packet" if own else "a pod's packet"
    how = "the node's own packets enter nat" if own else "a packet in from a device enters nat"
    text = (f"{who} to the LoadBalancer IP {f.endpoint('dst')} never goes to the load balancer: kube-proxy's "
            f"{entry} (from {hook}, where {how}) catches it on this node, which DNATs it: {' → '.join(chains)}")
    if marking:
        text += (f"; {svc.ext_chain} marks it for the masquerade ({'mark-for-masquerade' if nft else KUBE_MARK_MASQ}"
                 f"), so it leaves the node masqueraded to the address of the device it leaves by "
                 f"({'chain masquerading' if nft else 'KUBE-POSTROUTING'})")
    else:
        text += (f"; {svc.ext_chain} does not mark it for the masquerade (a pod's packet of an "
                 "externalTrafficPolicy Local Service keeps its source)")
    local = " (not only the node's own endpoints: externalTrafficPolicy Local is for outside clients)" \
        if svc.external_local else ""
    return text + f"; {svc.chain_for(f.src, f.dst, own)} picks among every endpoint{local}"


def _in_ranges(src: str | None, ranges: tuple[str, ...]) -> bool:
    """Whether ``src`` is in one of the CIDRs ``ranges`` (an unparsable one holds nothing)."""
    try:
        ip = IPv4Address(src or "")
    except ValueError:
        return False
    out = False
    for r in ranges:
        try:
            out = out or ip in IPv4Network(r, strict=False)
        except ValueError:
            continue
    return out


def _outside_words(svc: ServiceFacts, f: Flow, nft: bool, hook: str, entry: str, chains: list[str],
                   marking: list[str]) -> str:
    """:func:`words` for a packet from outside the cluster, which the internet's gateway routed to this node still
    addressed to the LoadBalancer IP (plan/internet.py: a passthrough balancer, no NAT on the way)."""
    text = (f"a packet from outside the cluster to the LoadBalancer IP {f.endpoint('dst')}, which the gateway "
            f"routed to this node untranslated (a passthrough balancer): kube-proxy's {entry} (from {hook}, where a "
            f"packet in from a device enters nat) catches it and DNATs it: {' → '.join(chains)}")
    if svc.source_ranges:
        ranges, check = ", ".join(svc.source_ranges), "firewall-ips" if nft else svc.fw_chain
        if _in_ranges(f.src, svc.source_ranges):
            text += f"; its source {f.src} is in loadBalancerSourceRanges {ranges}, which kube-proxy checks here " \
                    f"({check})"
        else:
            text += (f"; its source {f.src} is not in loadBalancerSourceRanges {ranges}, yet it was delivered: "
                     f"something bypassed kube-proxy's firewall check ({check}), which drops it")
    if marking:
        mark = "mark-for-masquerade" if nft else KUBE_MARK_MASQ
        return text + (f"; {svc.ext_chain} marks it for the masquerade ({mark}), so it leaves the node masqueraded "
                       f"to the address of the device it leaves by "
                       f"({'chain masquerading' if nft else 'KUBE-POSTROUTING'}), and "
                       f"{svc.chain_for(f.src, f.dst)} picks among every endpoint")
    return text + (f"; externalTrafficPolicy Local: {svc.ext_chain} does not mark it for the masquerade and "
                   f"{svc.chain_for(f.src, f.dst)} picks among the node's own endpoints, the client's address kept")
