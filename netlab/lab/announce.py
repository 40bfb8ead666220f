"""The gratuitous ARP of an address ``up`` just gave a pod or a node (kernel/garp.py says why).

Which addresses: a pod's on its ``eth0`` (what the CNI bridge plugin
announces) and a node's on its underlay ``eth0`` (a node joining the network
announces itself). Not the gateway's on ``cni0``, which no other device holds,
nor a pod a user's CNI plugins attached: cni/announce.py announces those after
their ADD. Not in a lab made now: all its namespaces are new, no neighbour
table holds an entry yet.

When: once the interface and its veth's other end run. Until the kernel's
link watch has marked them operationally up (lab/carrier.py) the device has
no queueing discipline and the bridge has not enabled the far end's port: a
packet sent then is dropped, and the stale entries it should correct stay.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Iterable

from netlab.kernel.base import Kernel, KernelError, Op
from netlab.lab import carrier
from netlab.model.lab import Lab
from netlab.model.naming import NODE_IF, POD_IF
from netlab.plan.build import Plan
from netlab.plan.resources import Address, Veth


def announced_devs(lab: Lab) -> set[tuple[str, str]]:
    """(namespace, interface) whose new address is announced: every pod's eth0, every node's underlay eth0."""
    return {(p.netns, POD_IF) for p in lab.pods} | {(n.netns, NODE_IF) for n in lab.nodes}


def announcements(lab: Lab, ops: Iterable[Op]) -> list[tuple[str, str, IPv4Address]]:
    """(namespace, interface, address) of each such address that ``ops`` add, in their order."""
    devs = announced_devs(lab)
    out = [(op.res.netns, op.res.dev, op.res.address.ip) for op in ops
           if isinstance(op.res, Address) and op.verb in ("add", "replace") and (op.res.netns, op.res.dev) in devs]
    return list(dict.fromkeys(out))


def _with_peers(plan: Plan, links: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The links and the other end of each one's veth (a veth has carrier only with both ends up)."""
    other: dict[tuple[str, str], tuple[str, str]] = {}
    for v in plan.of_kind("veth"):
        if isinstance(v, Veth):
            other[(v.netns, v.name)] = (v.peer_netns, v.peer_name)
            other[(v.peer_netns, v.peer_name)] = (v.netns, v.name)
    return list(dict.fromkeys(links + [other[link] for link in links if link in other]))


def announce(kernel: Kernel, lab: Lab, plan: Plan, ops: Iterable[Op]) -> list[str]:
    """Send each gratuitous ARP ``ops`` call for; what could not be sent, as warnings (the lab is up regardless:
    a stale entry only delays the first packets to the address)."""
    todo = announcements(lab, ops)
    if not todo:
        return []
    late = carrier.wait_running(kernel, _with_peers(plan, [(ns, dev) for ns, dev, _ in todo]))
    warnings = []
    for ns, dev, ip in todo:
        if any(link in late for link in _with_peers(plan, [(ns, dev)])):  # sent now, it would be dropped
            warnings.append(f"{ns}: {ip} on {dev} not announced (gratuitous ARP): the link does not run after "
                            f"{carrier.CARRIER_WAIT:g}s")
            continue
        try:
            kernel.announce(ns, dev, ip)
        except (KernelError, OSError) as exc:
            warnings.append(f"{ns}: could not announce {ip} on {dev} (gratuitous ARP: {exc}); neighbours that knew "
                            "the address at another MAC reach it only once their entry expires")
    return warnings
