"""The node's side of a pod attached by a chain without CHECK, compared with what its plugins reported.

The bridge plugin's ADD result lists the node's devices beside the pod's
``eth0``: its bridge (``cni0``) and the host end of the pod's veth pair, both
without a ``sandbox``. Its own CHECK holds them to that: the bridge exists, the
host veth exists and is a port of that bridge. A chain without CHECK
(cniVersion before 0.4.0, or ``disableCheck``) had only the pod's namespace
compared (cni/verify.py), so ``ip link del cni0`` on the node, or ``ip link set
vethX nomaster``, cut the pods off while status said all as planned (QA
cnihost 1). Here: each device the result lists on the node exists and is up, a
veth the result lists is a port of the bridge it lists, and the bridge holds
each gateway of the result when a bridge plugin of the chain is its pods'
gateway (``isGateway``, ``isDefaultGateway``: the plugin puts that address on
the bridge).

A pod's ``hostPort`` is portmap's DNAT in the node's nat table (cni/portmap.py):
flushed by hand, the port was refused while status was clean (QA cnihost 2).

A pod the bandwidth plugin shapes has its ``tbf`` at the rate the plugin was given, as that plugin's own CHECK
holds it: the ingress rate on the host veth the result lists, the egress rate on the ifb device it lists. Deleted
by hand, the pod ran unshaped while status said all as planned (QA cnr63 2). Only the rate is compared (the
plugin derives burst and limit itself), and only where one place gives the rates: the plugin's conflist entry or
the runtime's ``bandwidth`` (a pod's annotations), not both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from netlab.cni.conf import attachment, convert_result
from netlab.cni.node_reads import NodeReads
from netlab.cni.portmap import missing_dnats
from netlab.errors import NetnsGone
from netlab.kernel import netlink, tc
from netlab.kernel.base import KernelError, Snapshot
from netlab.model.hostlocal import FLANNEL


def node_side(result: dict[str, Any]) -> list[str]:
    """The names of the interfaces the result lists outside the pod (no ``sandbox``): the node's devices."""
    ifaces = convert_result(result, "1.0.0").get("interfaces") or []
    return [i["name"] for i in ifaces
            if isinstance(i, dict) and not i.get("sandbox") and isinstance(i.get("name"), str)]


def gateways(result: dict[str, Any]) -> list[str]:
    """Each IPv4 gateway the result's ``ips`` give."""
    out = []
    for ip in convert_result(result, "1.0.0").get("ips") or []:
        gw = ip.get("gateway") if isinstance(ip, dict) else None
        if isinstance(gw, str) and gw and ":" not in gw and gw not in out:
            out.append(gw)
    return out


def bridge_is_gateway(plugins: Iterable[Any]) -> bool:
    """Whether a bridge plugin of the chain (or under a wrapper's ``delegate``) puts the pods' gateway on its bridge.
    Flannel's plugin hands its ``delegate`` to ``bridge`` when it names no ``type``, with ``isGateway`` true unless
    it sets it (flannel-io/cni-plugin; kube-flannel.yml's delegate names neither)."""
    for plugin in plugins:
        if not isinstance(plugin, dict):
            continue
        delegate = plugin.get("delegate")
        if plugin.get("type") == FLANNEL and (delegate is None or isinstance(delegate, dict)):
            delegate = {"type": "bridge", **(delegate or {})}
            delegate.setdefault("isGateway", delegate["type"] == "bridge")
        for conf in (plugin, delegate):
            if isinstance(conf, dict) and conf.get("type") == "bridge" and (
                    conf.get("isGateway") is True or conf.get("isDefaultGateway") is True):
                return True
    return False


def compare_node(result: dict[str, Any], snap: Snapshot, gateway_on_bridge: bool = False) -> str | None:
    """What of the result's node side the node's namespace lacks, in words (None: all there)."""
    names = node_side(result)
    for name in names:
        link = snap.links.get(name)
        if link is None:
            return f"the node's {name} is gone"
        if not link.up:
            return f"the node's {name} is down"
    bridges = [snap.links[n] for n in names if snap.links[n].kind == "bridge"]
    if not bridges:
        return _host_routes(result, snap, names)
    if len(bridges) != 1:
        return None
    bridge, by_index = bridges[0], snap.by_index()
    for name in names:
        link = snap.links[name]
        if link.kind == "veth" and link.master != bridge.index:
            now = by_index.get(link.master) if link.master is not None else None
            return (f"the node's {name} is not a port of {bridge.name} "
                    f"({'it has no master' if now is None else f'its master is {now.name}'})")
    have = {a.address for a in snap.addrs if a.index == bridge.index}
    for gw in gateways(result) if gateway_on_bridge else ():
        if gw not in have:
            return f"the node's {bridge.name} lacks the pods' gateway {gw}"
    return None


MAIN_TABLE = 254
BANDWIDTH_KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")


def bandwidth_rates(plugins: Iterable[Any], caps: Any) -> tuple[int, int]:
    """(ingress, egress) bits a second the chain's bandwidth plugin shapes the pod to, each 0 for none (a rate
    without its burst shapes nothing); (0, 0) without that plugin, or when both its conflist entry and the
    runtime's ``bandwidth`` (``caps``: the pod's capabilityArgs) give rates."""
    for plugin in plugins:
        if not isinstance(plugin, dict) or plugin.get("type") != "bandwidth":
            continue
        own = {k: plugin[k] for k in BANDWIDTH_KEYS if k in plugin}
        given = caps.get("bandwidth") if isinstance(caps, dict) and isinstance(plugin.get("capabilities"), dict) \
            and plugin["capabilities"].get("bandwidth") is True else None
        if own and given:
            return 0, 0
        entry = own or given
        if not isinstance(entry, dict):
            return 0, 0
        rates: list[int] = []
        for rate, burst in (("ingressRate", "ingressBurst"), ("egressRate", "egressBurst")):
            r, b = entry.get(rate), entry.get(burst)
            if isinstance(r, int) and isinstance(b, int) and not isinstance(r, bool) and not isinstance(b, bool) \
                    and r > 0 and b > 0:
                rates.append(r)
            else:
                rates.append(0)
        return rates[0], rates[1]
    return 0, 0


def compare_shaping(result: dict[str, Any], snap: Snapshot, ingress: int, egress: int) -> str | None:
    """Bandwidth's tbf at its rate on the host veth (``ingress``) and on the ifb (``egress``) the result lists on
    the node, in words when one is not (None: both are, or there is no single such device to hold to it)."""
    names = node_side(result)
    for kind, rate, what in (("veth", ingress, "ingress"), ("ifb", egress, "egress")):
        devs = [snap.links[n] for n in names if n in snap.links and snap.links[n].kind == kind]
        if not rate or len(devs) != 1:
            continue
        dev, want = devs[0], rate // 8 * 8  # the plugin gives the kernel bytes a second
        body = snap.root_qdiscs.get(dev.index)
        q = tc.parse_qdisc(netlink.Msg(tc.RTM_NEWQDISC, 0, 0, body)) if body is not None else None
        if q is None or q.kind != "tbf":
            return (f"bandwidth's shaping of its {what} is gone: the node's {dev.name} has "
                    f"{'no tbf' if q is None else f'a {q.kind}, not a tbf'} (the plugin gave it {want}bit)")
        if q.rate_bits != want:
            return f"bandwidth's tbf on the node's {dev.name} shapes its {what} to {q.rate_bits}bit, not {want}bit"
    return None


def _host_routes(result: dict[str, Any], snap: Snapshot, names: list[str]) -> str | None:
    """A pod on a veth of no bridge (the ptp plugin's): the node reaches each of its IPv4 addresses by a route of
    its own through that veth (``ip route add 10.244.0.2/32 dev vethX``); deleted, the pod was cut off while status
    said all as planned (qa55)."""
    veths = [snap.links[n] for n in names if snap.links[n].kind == "veth"]
    if len(veths) != 1:
        return None
    veth = veths[0]
    for ip in convert_result(result, "1.0.0").get("ips") or []:
        address = ip.get("address") if isinstance(ip, dict) else None
        if not isinstance(address, str) or ":" in address:
            continue
        addr = address.split("/")[0]
        if not any(r.dst == addr and r.dst_len == 32 and r.oif == veth.index and r.table == MAIN_TABLE
                   for r in snap.routes):
            return f"the node has no route to the pod's {addr} through {veth.name}"
    return None


@dataclass(frozen=True)
class NodeSide:
    """What of a pod's node to hold to its chain's cached ADD result: the node's namespace, whether the chain's
    bridge is its pods' gateway, and the host ports portmap was given (``portMappings``: none when the chain has no
    portmap of iptables rules)."""

    netns: str
    gateway_on_bridge: bool = False
    port_mappings: tuple[dict[str, Any], ...] = ()
    bandwidth: tuple[int, int] = (0, 0)  # bandwidth_rates: (ingress, egress) bits a second, 0 for none

    def compare(self, reads: NodeReads, result: dict[str, Any], ifname: str) -> str | None:
        """The node's devices, bandwidth's tbf, then its hostPort DNATs, compared with the result (None: all there);
        ``reads``: the node's namespace and nat table, read once for all its pods (cni/node_reads.py). A node whose
        namespace is gone is netlab's own drift, said for the node."""
        try:
            snap = reads.node(self.netns)
        except NetnsGone:
            return None
        why = compare_node(result, snap, self.gateway_on_bridge)
        if why is None and any(self.bandwidth):
            why = compare_shaping(result, snap, *self.bandwidth)
        att = attachment(result, ifname)
        if why or not self.port_mappings or att is None:
            return why
        try:
            text = reads.nat(self.netns)
        except KernelError:  # status's own read of the node's tables says it
            return None
        return missing_dnats(text.splitlines(), list(self.port_mappings), str(att.ip))
