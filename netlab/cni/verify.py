"""A pod attached by a chain that has no CHECK, compared with what its plugins reported.

CHECK came with CNI 0.4.0. A chain of an older cniVersion (Flannel's own
``10-flannel.conflist`` says 0.3.1) has none, so libcni and the kubelet never
look at the pod's network again: a deleted ``eth0`` goes unnoticed until a
packet fails. netlab looks, for ``status`` and ``up``: the chain's cached ADD
result names the pod-side interfaces (those with a ``sandbox``) and the
addresses it gave them, and each must still be in the pod's namespace, with
the MAC the result gives, and each IPv4 route the result lists (its ``dst``,
its ``gw`` when it gives one, its ``table``, else main) must still be in the
pod's namespace: the bridge plugin's default route deleted by hand cut the pod
off the other nodes while status said all as planned. So is a pod of a chain whose conflist sets
``disableCheck`` (the runtime then never calls CHECK). Only what the result claims is compared, IPv6 routes aside
(netlab reads a namespace's IPv4 routes); the node's side the result lists, and portmap's DNAT of the pod's host
ports, are compared by cni/verify_node.py (a deleted ``cni0`` was all as planned, QA cnihost 1).
"""

from __future__ import annotations

from ipaddress import IPv4Network, ip_network
from typing import Any

from netlab.cni.conf import POD_IF, attachment, convert_result
from netlab.cni.invoke import one_line
from netlab.cni.node_reads import NodeReads
from netlab.cni.verify_node import NodeSide
from netlab.errors import NetnsGone
from netlab.kernel.base import Snapshot


def pod_side(result: dict[str, Any], ifname: str = POD_IF) -> list[tuple[str, str | None, list[str]]]:
    """(interface, MAC, addresses as a/len) of every interface the result puts in the pod's namespace.

    An address the result ties to no interface (every one of a 0.1.0/0.2.0 result's ``ip4``, which names no
    interface) is ``ifname``'s, the interface the runtime asked the chain for (CNI_IFNAME): the runtime takes it
    as the pod's IP there (containerd reports it to the kubelet), as ADD's own check did (QA q24 #1: the pod
    whose eth0 was gone was "all as planned")."""
    result = convert_result(result, "1.0.0")
    ifaces = [i for i in result.get("interfaces") or [] if isinstance(i, dict)]
    out: dict[int | str, tuple[str, str | None, list[str]]] = {}
    for n, iface in enumerate(ifaces):
        if iface.get("sandbox") and isinstance(iface.get("name"), str):
            out[n] = (iface["name"], iface.get("mac"), [])
    for ip in result.get("ips") or []:
        n = ip.get("interface") if isinstance(ip, dict) else None
        if not isinstance(ip, dict) or not isinstance(ip.get("address"), str):
            continue
        if n is None:
            n = next((k for k, (name, _, _) in out.items() if name == ifname), ifname)
            out.setdefault(n, (ifname, None, []))
        if n in out:
            out[n][2].append(ip["address"])
    return list(out.values())


MAIN = 254  # the main routing table, where a result's route goes when it names no table (CNI 1.1.0's "table")


def pod_routes(result: dict[str, Any]) -> list[tuple[IPv4Network, str | None, int]]:
    """(destination, gateway or None, table) of every IPv4 route the result lists. A route without ``gw`` goes
    via the gateway of the interface's address (the plugins' ipam.ConfigureIface) or none: any gateway does."""
    out = []
    for route in convert_result(result, "1.0.0").get("routes") or []:
        if not isinstance(route, dict) or not isinstance(route.get("dst"), str):
            continue
        try:
            dst = ip_network(route["dst"], strict=False)
        except ValueError:
            continue
        if not isinstance(dst, IPv4Network):
            continue
        gw = route.get("gw") if isinstance(route.get("gw"), str) and route.get("gw") else None
        table = route.get("table")
        out.append((dst, gw, table if isinstance(table, int) and not isinstance(table, bool) else MAIN))
    return out


def _route_words(dst: IPv4Network, gw: str | None, table: int) -> str:
    words = "default" if dst.prefixlen == 0 else str(dst)
    return words + (f" via {gw}" if gw else "") + (f" table {table}" if table != MAIN else "")


def compare(result: dict[str, Any], snap: Snapshot, ifname: str = POD_IF) -> str | None:
    """What of the result's pod side the namespace lacks, in words (None: all there)."""
    by_index = snap.by_index()
    have = {(by_index[a.index].name, f"{a.address}/{a.prefixlen}") for a in snap.addrs if a.index in by_index}
    for name, mac, addresses in pod_side(result, ifname):
        link = snap.links.get(name)
        if link is None:
            return f"its {name} is gone"
        if mac and link.mac and link.mac.lower() != mac.lower():
            return f"its {name} has MAC {link.mac}, the plugins gave {mac}"
        for cidr in addresses:
            if (name, cidr) not in have:
                return f"its {name} lacks {cidr}"
    for dst, gw, table in pod_routes(result):
        if not any(r.table == table and r.dst_len == dst.prefixlen and r.dst == str(dst.network_address)
                   and (gw is None or r.gateway == gw or r.multipath) for r in snap.routes):
            return f"it lacks the route {_route_words(dst, gw, table)}"
    return None


def verify(netns: str, result: dict[str, Any] | None, no_check: str, ifname: str = POD_IF,
           node: NodeSide | None = None, reads: NodeReads | None = None) -> str | None:
    """The pod's namespace compared with the cached result, or why it cannot be (None: as reported). ``no_check``:
    why the chain is not asked to CHECK, said after a difference; ``ifname``: the chain's CNI_IFNAME; ``node``: the
    node's side to compare too (cni/verify_node.py); ``reads``: the kernel reads of a whole status, each node read
    once for all its pods (cni/node_reads.py; none: read here, for this pod alone)."""
    if result is None:
        return "no cached result to compare the pod with"
    own = reads is None
    reads = reads or NodeReads()
    try:
        why = compare(result, reads.pod(netns), ifname)
        if why is None and node is not None:
            why = node.compare(reads, result, ifname)
    except NetnsGone:
        return "its network namespace is gone"
    finally:
        if own:
            reads.close()
    return f"{why} ({no_check})" if why else None


def address_missing(netns: str, result: dict[str, Any], ifname: str) -> str | None:
    """Whether the pod's ``ifname`` has the address the chain's ADD result gives it, read right after the ADD (QA
    q20 #2): the address a runtime takes as the pod's IP (containerd reports it to the kubelet, and Services send
    to it), so a plugin that names another than its interface has is wrong, whatever the plugins after it do.
    None when it has it. A result that gives ``ifname`` no IPv4 address at all is said too (QA cnicheck 2): the
    runtime has no pod IP from it."""
    from netlab.kernel.live import LiveKernel

    att = attachment(result, ifname)
    if att is None:
        return no_address_words(result, ifname)
    kernel = LiveKernel()
    try:
        snap = kernel.snapshot(netns, (), tables=False)
    except NetnsGone:  # no pod to hold to its result (status says the namespace is gone)
        return None
    finally:
        kernel.close()
    link = snap.links.get(ifname)
    has = [f"{a.address}/{a.prefixlen}" for a in snap.addrs if link is not None and a.index == link.index
           and ":" not in a.address]
    if any(a.split("/")[0] == str(att.ip) for a in has):
        return None
    now = f"has {', '.join(has)}" if has else ("has no IPv4 address" if link is not None else "does not exist")
    named = _named(result, str(att.ip), ifname)
    says = (f"its result says {ifname} has {att.ip}, but" if named is None else
            f"its result says {named} has {att.ip}, though CNI_IFNAME (the name the runtime asked for the pod's "
            f"interface) was {ifname}, and")
    return (f"{says} the pod's {ifname} {now}: a runtime takes the result's address as the pod's IP "
            f"(containerd reports it to the kubelet), and no packet to it would reach the pod")


def no_address_words(result: dict[str, Any], ifname: str) -> str:
    """Why a result gives ``ifname`` no IPv4 address: no ips, none IPv4, or each on another interface."""
    ips = [e for e in result.get("ips") or [] if isinstance(e, dict) and isinstance(e.get("address"), str)]
    v4 = [e for e in ips if ":" not in e["address"]]
    if not ips:
        return "its result has no ips: it gives the pod no address"
    if not v4:
        return f"its result's ips give {ifname} no IPv4 address"
    ifaces = [i for i in result.get("interfaces") or [] if isinstance(i, dict)]
    pod_idx = next((n for n, i in enumerate(ifaces) if i.get("sandbox") and i.get("name") == ifname), None)
    idx = v4[0].get("interface")
    name = ifaces[idx].get("name") if isinstance(idx, int) and 0 <= idx < len(ifaces) else "no interface it lists"
    return (f"its result gives {v4[0]['address'].split('/')[0]} to interface {idx} ({name}), not to {ifname} "
            f"(interface {pod_idx})")


def _named(result: dict[str, Any], ip: str, ifname: str) -> str | None:
    """The name the result gives the pod interface it ties ``ip`` to, when that is not ``ifname`` (a plugin that
    ignores CNI_IFNAME, QA q38 #4): its ``ips`` entry's ``interface``, else the result's only pod interface."""
    ifaces = [i for i in result.get("interfaces", []) if isinstance(i, dict)]
    pod = [i.get("name") for i in ifaces if i.get("sandbox")]
    if ifname in pod:
        return None
    for entry in result.get("ips", []):
        idx = entry.get("interface")
        if str(entry.get("address", "")).split("/")[0] != ip:
            continue
        if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(ifaces) \
                and ifaces[idx].get("sandbox") and isinstance(ifaces[idx].get("name"), str):
            return one_line(ifaces[idx]["name"][:20])
    return one_line(pod[0][:20]) if len(pod) == 1 and isinstance(pod[0], str) else None
