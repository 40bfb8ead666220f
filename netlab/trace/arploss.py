"""A next hop's ARP entry left INCOMPLETE by netlab's impairment loss: the ARP answer is lost, not missing.

netlab's loss (plan/impair.py) drops what a lossy wire drops, ARP frames
too, as netem's does. A sender's entry that stays INCOMPLETE then says no
more than that no answer came back: the target may well answer, and its
answer be dropped on the way back, where the target's own interface is
impaired (a pod's eth0, on its veth peer's ingress in the node; a node's
eth0, on its underlay port's ingress; a node's cni0 or flannel.<vni>, which
answers for its own address, on the device's egress). A VXLAN device's
answer (a learning flannel.<vni>) leaves its node by eth0, encapsulated, so
that node's eth0 loss drops it too. A bridge between them (cni0 switching
two of its pods' frames) is no egress of cni0: its loss drops none of them.

The chains' counters (``nft -j list table netdev netlab-impair`` before and
after the packet) prove it: one that rose during the trace dropped frames
then; one that did not dropped no answer, and the entry's words stand (the
target does not answer). Unreadable, the placement alone says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from netlab.kernel import nft
from netlab.model.lab import Lab
from netlab.model.naming import vxlan_name
from netlab.plan.cniadd import node_gateway
from netlab.plan.impair import FAMILY, TABLE, LossHook
from netlab.trace import faults

Counts = dict[tuple[str, str], int]  # (namespace, chain) -> packets its counter counted


@dataclass
class ArpLoss:
    """What ``lossblame.impaired`` needs to blame a lost ARP answer on an impairment."""

    answerers: dict[str, tuple[str, ...]]  # address -> the NAME:IFACE whose loss drops its ARP answers
    rose: Counts | None = None  # (namespace, chain) -> what its counter counted during the trace; None: not read


def answerers(lab: Lab) -> dict[str, tuple[str, ...]]:
    """Each lab address that answers ARP, and the impairable interfaces its answer leaves by."""
    out: dict[str, tuple[str, ...]] = {}
    for node in lab.nodes:
        out[str(node.ip)] = (f"{node.name}:eth0",)
        gateway = node_gateway(lab, node)
        if gateway:
            out[str(gateway[0])] = (f"{node.name}:{gateway[1]}",)
        if lab.mode == "vxlan":  # its answer leaves by the VXLAN device, then encapsulated by the node's eth0
            vxlan = vxlan_name(lab.topo.network.vxlan.vni)
            out[str(node.vtep_ip)] = (f"{node.name}:{vxlan}", f"{node.name}:eth0")
    for pod in lab.pods:
        out[str(pod.ip)] = (f"{pod.name}:eth0",)
    return out


def chain_counts(listing: dict[str, Any] | None) -> dict[str, int]:
    """chain -> the packets its rules' counters counted, from ``nft -j list table netdev netlab-impair``."""
    out: dict[str, int] = {}
    for item in (listing or {}).get("nftables") or ():
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        for expr in rule.get("expr") or ():
            counter = expr.get("counter") if isinstance(expr, dict) else None
            if isinstance(counter, dict):
                out[rule["chain"]] = out.get(rule["chain"], 0) + int(counter.get("packets", 0))
    return out


def read_counts(netns_list: Iterable[str]) -> Counts:
    """The loss chains' counters of each namespace; one unreadable (no table, nft failing) is left out."""
    out: Counts = {}
    for ns in netns_list:
        try:
            listing = nft.list_table(ns, FAMILY, TABLE)
        except (nft.NftError, OSError):
            continue
        out.update({(ns, chain): n for chain, n in chain_counts(listing).items()})
    return out


def rose(before: Counts, after: Counts) -> Counts:
    """What each chain read both times counted in between."""
    return {key: after[key] - n for key, n in before.items() if key in after}


def answer_lost(losses: Iterable[LossHook], hop: Any, arp: ArpLoss, lab: str) -> faults.Reason | None:
    """Why the neighbour row ``hop`` got no ARP answer: an impairment's loss dropped the target's answers (the
    first whose counter rose, or by placement when not read); None when none is on their way back or none of
    those that are dropped anything during the trace."""
    ip, state = hop.facts.get("ip"), hop.facts.get("state")
    targets = arp.answerers.get(ip or "", ())
    for target in targets:
        hit = next((h for h in losses if h.target == target), None)
        if hit is None:
            continue
        counted = arp.rose.get((hit.netns, hit.chain)) if arp.rose is not None else None
        if counted is not None and counted <= 0:
            continue  # it dropped nothing while the kernel asked: not what kept the answer away
        proof = f" (the chain's counter rose by {counted} during the trace)" if counted else ""
        then = (f"ARP answers too: {targets[0].split(':')[0]} answers who-has {ip}, and its answers to {hop.device} in "
                f"{hop.netns} are dropped there{proof}, so the entry stays {state} and the packet went no further")
        return faults.impairment_loss(hit, lab, then)
    return None
