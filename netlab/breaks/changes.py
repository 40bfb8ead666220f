"""The kernel changes of the break scenarios, made through the project's one door to the kernel.

Each function takes the running lab, its plan and the target (a node or a
pod, resolved by :func:`netlab.breaks.catalogue.resolve_target`) and returns
the steps that break it: :class:`~netlab.kernel.base.Op` values (netlink
requests, a sysctl write, an ``iptables-restore --noflush`` payload) that
``LiveKernel.apply`` sends, or :class:`Action` values for what is not a
kernel object (stopping a pod's processes, a conntrack entry). Every change
is one ``netlab up`` takes back: the plan still says how the lab should be,
so the next ``up`` finds the drift and repairs it.

This module is pure: building the steps reads only the model and the plan;
:mod:`netlab.breaks.run` carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable

from netlab.kernel.base import Op, TableText
from netlab.kernel.iptables import command as ipt_command
from netlab.model.clusterdns import is_dns_service
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.plan.build import Plan
from netlab.plan.resources import Fdb, Neigh, Resource, Route, Sysctl, Veth, Vxlan


@dataclass(frozen=True)
class Action:
    """A change that is not a kernel object: ``kind`` says which, ``args`` what with."""

    kind: str  # "stop-pod" | "conntrack-stale"
    netns: str
    args: tuple = ()

    def describe(self) -> str:
        """The change in words, for this lab (what `netlab break` and `quiz answer` print)."""
        if self.kind == "stop-pod":
            return f"stop the containers of pod {self.args[0]} (their processes in {self.netns} are killed)"
        if self.kind == "conntrack-stale":
            src, sport, cip, port, gone = self.args
            return f"conntrack entry in {self.netns}: udp {src}:{sport} → {cip}:{port} DNATed to {gone}:{port}"
        return f"{self.kind} {' '.join(map(str, self.args))} in {self.netns}"


Step = Op | Action
Change = Callable[[Lab, Plan, Any], list[Step]]  # the target: a NodeInfo or PodInfo, as the scenario says


# --- finding the planned objects a change takes away --------------------------------


def _vxlan(plan: Plan, netns: str) -> Vxlan:
    return next(r for r in plan.resources if isinstance(r, Vxlan) and r.netns == netns)


def peer_node(lab: Lab, node: NodeInfo) -> NodeInfo:
    """The node a change on ``node`` is about: the next one in the topology (wrapping round)."""
    i = [n.name for n in lab.nodes].index(node.name)
    return lab.nodes[(i + 1) % len(lab.nodes)]


def peer_end(lab: Lab, node: NodeInfo) -> list[str] | None:
    """What a trace across the pod network from ``node`` goes to at its peer (peer_node): the peer's pods,
    else an address of the peer's own in its pod CIDR: its cni0's once a pod ran there (the bridge plugin makes it),
    else in VXLAN mode its flannel.<VNI>'s; None: none (a podless peer in host-gw mode)."""
    peer = peer_node(lab, node)
    if lab.pods_on(peer.name):
        return [p.name for p in lab.pods_on(peer.name)]
    if peer.name in lab.bridge_nodes():
        return [str(peer.gateway.ip)]
    return [str(peer.vtep_ip)] if lab.mode == "vxlan" else None


def _one(plan: Plan, test: Callable[[Resource], bool], what: str) -> Resource:
    found = [r for r in plan.resources if test(r)]
    if not found:
        raise LookupError(f"the lab's plan has no {what}")
    return found[0]


def unused_underlay_ip(lab: Lab) -> IPv4Address:
    """The highest address of the underlay no node (nor the gateway, .1) holds: a VTEP nobody answers for."""
    net = IPv4Network(str(lab.topo.network.underlay.cidr))
    taken = {n.ip for n in lab.nodes} | {net.network_address + 1}
    return next(h for h in (net.broadcast_address - k for k in range(1, 64)) if h not in taken)


# --- the changes, one per scenario --------------------------------------------------


def vxlan_arp_missing(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """Delete the PERMANENT ARP entry for the peer node's VTEP address on the node's flannel.N."""
    peer = peer_node(lab, node)
    neigh = _one(plan, lambda r: isinstance(r, Neigh) and r.netns == node.netns and r.dst == peer.vtep_ip,
                 f"ARP entry for {peer.vtep_ip} in {node.netns}")
    return [Op("del", neigh)]


def vxlan_fdb_wrong_vtep(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """Point the FDB entry of the peer's VTEP MAC at an underlay address where no node is."""
    peer = peer_node(lab, node)
    fdb = _one(plan, lambda r: isinstance(r, Fdb) and r.netns == node.netns and r.dst == peer.ip,
               f"FDB entry for {peer.name}'s VTEP in {node.netns}")
    assert isinstance(fdb, Fdb)
    return [Op("del", fdb), Op("add", replace(fdb, dst=unused_underlay_ip(lab)))]


def pod_mtu_too_big(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """The node's port on the underlay switch carries 50 bytes less than the lab was planned for.

    Flannel computed the pods' MTU (1450) for a 1500-byte underlay; through a
    1450-byte port the overlay only carries 1400-byte inner packets. A
    full-size pod packet still fits the pod's and flannel.N's MTU, is
    encapsulated into a 1500-byte frame, and the port drops it without a word
    (a veth or bridge port drops frames above its MTU; no ICMP comes back):
    the classic MTU black hole. Small packets pass.
    """
    port = _one(plan, lambda r: isinstance(r, Veth) and r.peer_netns == node.netns and r.peer_name == "eth0",
                f"underlay port of {node.name}")
    assert isinstance(port, Veth)
    return [Op("set", replace(port, mtu=lab.underlay_mtu - 50), old=port)]


def _sysctl(netns: str, key: str, value: str, old: str) -> Op:
    return Op("write", Sysctl(netns=netns, name=key, value=value), old=Sysctl(netns=netns, name=key, value=old))


def ip_forward_off(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    return [_sysctl(node.netns, "net.ipv4.ip_forward", "0", "1")]


def rp_filter_strict(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """Strict reverse-path filtering on the node, and an asymmetric path into it.

    The peer node routes the node's pod CIDR straight over the underlay (as
    Flannel's ``DirectRouting`` does for nodes on one subnet) while the node
    still routes back through flannel.N: packets from the peer's pods arrive
    on eth0, but the route back to them leaves by flannel.N, so strict
    rp_filter drops them.
    """
    peer = peer_node(lab, node)
    route = _one(plan, lambda r: isinstance(r, Route) and r.netns == peer.netns and r.dst == node.pod_cidr,
                 f"route to {node.pod_cidr} in {peer.netns}")
    assert isinstance(route, Route)
    direct = replace(route, gateway=node.ip, dev="eth0", onlink=False)
    return [Op("replace", direct, old=route), _sysctl(node.netns, "net.ipv4.conf.all.rp_filter", "1", "0")]


def pod_cidr_route_missing(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    peer = peer_node(lab, node)
    route = _one(plan, lambda r: isinstance(r, Route) and r.netns == node.netns and r.dst == peer.pod_cidr,
                 f"route to {peer.pod_cidr} in {node.netns}")
    return [Op("del", route)]


SERVICES_JUMP = '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
FLANNEL_FWD_JUMP = '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD'


def _rules(netns: str, table: str, lines: list[str]) -> Op:
    text = f"*{table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
    return Op("restore", TableText(netns=netns, table=table, text=text, noflush=True))


def kube_services_jump_missing(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """Delete nat PREROUTING's jump to KUBE-SERVICES: the node no longer DNATs what it forwards."""
    return [_rules(node.netns, "nat", ["-D" + SERVICES_JUMP[2:]])]


def forward_policy_drop(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """FORWARD policy DROP, as Docker sets it, on a node whose FORWARD has no FLANNEL-FWD jump
    (Flannel before 0.10, or Docker restarted after flanneld and rebuilt FORWARD)."""
    return [_rules(node.netns, "filter", [":FORWARD DROP [0:0]", "-D" + FLANNEL_FWD_JUMP[2:]])]


def bridge_port_down(lab: Lab, plan: Plan, pod: PodInfo) -> list[Step]:
    """Set the pod's port on its node's bridge (the host end of its veth) down."""
    veth = _one(plan, lambda r: isinstance(r, Veth) and r.peer_netns == pod.netns,
                f"bridge port of {pod.name}")
    assert isinstance(veth, Veth)
    return [Op("set", replace(veth, up=False), old=veth)]


def bridge_port_disabled(lab: Lab, plan: Plan, pod: PodInfo) -> list[Step]:
    """Hold the pod's port on its node's bridge in STP state disabled (``bridge link set ... state disabled``).

    STP is off on cni0, yet the kernel takes a state set by hand. A port enabled in the last 15 s (the bridge's
    forward_delay) has its forward delay timer armed, and when it runs out the port goes on from listening or
    learning by itself; disabled (and blocking) it does not touch. A disabled port stays so until its carrier
    changes (br_port_carrier_check enables it again): the link stays up, the bridge forwards nothing through it.
    """
    veth = _one(plan, lambda r: isinstance(r, Veth) and r.peer_netns == pod.netns and r.port_state is not None,
                f"bridge port of {pod.name}")
    assert isinstance(veth, Veth)
    return [Op("set", replace(veth, port_state="disabled"), old=veth)]


def bridge_nf_call_off(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    return [_sysctl(node.netns, "net.bridge.bridge-nf-call-iptables", "0", "1")]


def vxlan_wrong_vni(lab: Lab, plan: Plan, node: NodeInfo) -> list[Step]:
    """Make the node's flannel.N again with another VNI, and put back what hangs on it.

    The kernel cannot change a VXLAN device's VNI in place, so the device is
    deleted and made again, then its address, ARP and FDB entries and routes
    are added again from the plan: only the VNI differs.
    """
    vx = _vxlan(plan, node.netns)
    hanging = [r for r in plan.resources
               if r.netns == node.netns and getattr(r, "dev", None) == vx.name and not isinstance(r, Vxlan)]
    steps: list[Step] = [Op("del", vx), Op("add", replace(vx, vni=vx.vni + 1))]
    return steps + [Op("add", r) for r in hanging]


def stop_pod(lab: Lab, plan: Plan, pod: PodInfo) -> list[Step]:
    return [Action("stop-pod", pod.netns, (pod.name,))]


STALE_SPORT = 40053  # the source port the client keeps (a resolver or a statsd client that never reopens)


def dns_udp(lab: Lab) -> tuple[str, int, str]:
    """(ClusterIP, port, the DNS pod's IP) of cluster DNS over UDP."""
    from netlab.plan.services import service_ports

    # the cluster DNS Service kube-system/kube-dns, not a user's Service that happens to serve 53/UDP
    sp = next(sp for sp in service_ports(lab) if is_dns_service(sp.svc) and sp.protocol == "udp"
              and sp.port.port == 53 and sp.endpoints)
    return str(sp.cluster_ip), sp.port.port, str(sp.endpoints[0][0])


def gone_endpoint(lab: Lab) -> IPv4Address:
    """Where the DNS pod was before an endpoint change: an address of its node's pod CIDR no pod holds."""
    _, _, ip = dns_udp(lab)
    cidr = next(n.pod_cidr for n in lab.nodes if IPv4Address(ip) in n.pod_cidr)
    taken = {p.ip for p in lab.pods}
    return next(h for h in (cidr.broadcast_address - k for k in range(2, 64)) if h not in taken)


def conntrack_stale(lab: Lab, plan: Plan, pod: PodInfo) -> list[Step]:
    """A UDP entry in the client's node: client:40053 -> DNS ClusterIP:53, DNATed to where DNS no longer is."""
    cip, port, _ = dns_udp(lab)
    node = lab.node(pod.node)
    return [Action("conntrack-stale", node.netns, (str(pod.ip), STALE_SPORT, cip, port, str(gone_endpoint(lab))))]


# Scenario name -> its change (the catalogue holds the words, this module the kernel objects).
CHANGES: dict[str, Change] = {
    "vxlan-arp-missing": vxlan_arp_missing,
    "vxlan-fdb-wrong-vtep": vxlan_fdb_wrong_vtep,
    "pod-mtu-too-big": pod_mtu_too_big,
    "ip-forward-off": ip_forward_off,
    "rp-filter-strict": rp_filter_strict,
    "pod-cidr-route-missing": pod_cidr_route_missing,
    "kube-services-jump-missing": kube_services_jump_missing,
    "endpoint-pod-down": stop_pod,
    "conntrack-stale-entry": conntrack_stale,
    "dns-pod-stopped": stop_pod,
    "bridge-port-down": bridge_port_down,
    "bridge-port-disabled": bridge_port_disabled,
    "bridge-nf-call-off": bridge_nf_call_off,
    "forward-policy-drop": forward_policy_drop,
    "vxlan-wrong-vni": vxlan_wrong_vni,
}


def command_of(step: Step) -> str:
    """The command a person would type to make the same change (what `netlab break` prints)."""
    if isinstance(step, Action):
        return step.describe()
    res = step.res
    ns = res.netns
    if isinstance(res, TableText):
        out = []
        ipt = f"iptables-{res.backend}" if res.backend else ipt_command()  # the lab's backend's own command
        for line in res.text.splitlines():
            if line.startswith("-"):
                out.append(f"ip netns exec {ns} {ipt} -t {res.table} {line}")
            elif line.startswith(":"):
                chain, policy = line[1:].split()[:2]
                out.append(f"ip netns exec {ns} {ipt} -t {res.table} -P {chain} {policy}")
        return "; ".join(out)
    if step.verb == "del":
        if isinstance(res, Neigh):
            return f"ip -n {ns} neigh del {res.dst} dev {res.dev}"
        if isinstance(res, Fdb):
            return f"bridge -n {ns} fdb del {res.lladdr} dev {res.dev} dst {res.dst} self"
        if isinstance(res, Route):
            return f"ip -n {ns} route del {res.dst}"
        if isinstance(res, Vxlan):
            return f"ip -n {ns} link del {res.name}"
    if step.verb == "set" and isinstance(step.old, Veth) and isinstance(res, Veth) and \
            res.port_state != step.old.port_state:
        return f"bridge -n {ns} link set dev {res.name} state {res.port_state}"
    if step.verb == "set" and isinstance(step.old, Veth) and isinstance(res, Veth):
        what = [("up" if res.up else "down")] if res.up != step.old.up else []
        what += [f"mtu {res.mtu}"] if res.mtu != step.old.mtu else []
        return f"ip -n {ns} link set {res.name} {' '.join(what)}"
    if step.verb == "replace" and isinstance(res, Route):
        return res.command().replace(" route add ", " route replace ", 1)
    if isinstance(res, Resource):
        return res.command()
    return step.describe()
