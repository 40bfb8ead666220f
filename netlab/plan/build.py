"""Build the plan of a lab: every namespace, link, address, route, neighbour,
FDB entry and sysctl, in the order the kernel needs them.

    <lab>-underlay:  br0 ── veth<h> ═══ eth0  <lab>-<node>   (one per node)
    <lab>-<node>:    cni0 ── veth<h> ═══ eth0  <lab>-<pod>    (one per pod)
                     flannel.1 (vxlan mode) over eth0

Order: namespaces, their sysctls (IPv6 off before any link exists, so no
link-local addresses or router solicitations clutter captures), bridges, veths
(born with each end in place and the bridge end already a port), VTEPs,
addresses, then per node ARP, FDB and routes (routes last, see overlay.py),
then the pods' default routes and their eth0's own sysctl (arp_notify, once
eth0 exists), the rule tables, and last kube-proxy's conntrack sysctls (their
files exist once nf_conntrack is loaded, which the tables' rules make sure of).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Callable

from netlab.model import naming
from netlab.model.addressing import underlay_gateway
from netlab.model.lab import Lab, PodInfo
from netlab.plan import impair, internet, kubeproxy, overlay
from netlab.plan.iptables import BUILTIN_CHAINS
from netlab.plan.resources import (FORWARDING, Bridge, NatRules, Netns, Resource, Route, Sysctl, Veth,
                                   address_with_brd)
from netlab.plan.sysctls import (COMMON_SYSCTLS, FORWARD_SYSCTL, HOST_SYSCTLS, POD_IF_DEVCONF, ROUTER_SYSCTLS,
                                 copied_by_new_netns, interface_sysctls, restore_sysctls, when_written)

# The CNI bridge plugin makes the pair with txqueuelen 0 on both ends (its netlink
# library sends the zero of an unset field), where the kernel would give 1000.
CNI_VETH_TXQLEN = 0

DEFAULT = IPv4Network("0.0.0.0/0")

ORDER = ("netns", "sysctl", "bridge", "veth", "vxlan", "address", "neigh", "fdb", "route", "nat", "nft")

# Features that add resources of their own: the simulated internet, the
# Service rules and impairments' loss rules. Each has ``resources(lab) -> list[Resource]``; the merged
# list is sorted by ORDER (stable, so each builder's own order within a kind
# holds).
EXTENSIONS = (internet, kubeproxy, impair)


@dataclass(frozen=True)
class Plan:
    """Everything a lab needs in the kernel, in apply order."""

    lab: str
    resources: tuple[Resource, ...] = field(default_factory=tuple)
    # The namespaces of the terminal pods whose sandbox was stopped (its CNI DEL ran: :func:`stopped_sandboxes`):
    # released, as containerd removes a stopped sandbox's network namespace; none of the plan's resources is there.
    stopped: frozenset[str] = frozenset()

    def of_kind(self, *kinds: str) -> list[Resource]:
        return [r for r in self.resources if r.kind in kinds]

    @cached_property
    def netns(self) -> list[str]:
        """The lab's namespaces, in creation order (computed once: a plan never changes)."""
        return [r.netns for r in self.resources if r.kind == "netns"]

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "resources": [r.to_json() for r in self.resources]}


# The plans already built, by lab object: ``up`` asks for its lab's plan
# several times (the doctor's checks read which kinds of objects it holds, up
# and status the whole plan); a Lab is never changed once made, so its plan is
# built once. Weak keys: a plan goes with its lab.
_BUILT: "weakref.WeakKeyDictionary[Lab, Plan]" = weakref.WeakKeyDictionary()


def build_plan(lab: Lab) -> Plan:
    """The whole plan of a lab, deterministic for a given topology (built once per Lab object)."""
    plan = _BUILT.get(lab)
    if plan is None:
        plan = _BUILT[lab] = _build_plan(lab)
    return plan


def _build_plan(lab: Lab) -> Plan:
    res: list[Resource] = []
    uns = lab.underlay_netns

    # Namespaces.
    res += [Netns(netns=name) for name in lab.netns_names()]

    # Sysctls.
    for name in lab.netns_names():
        res += [Sysctl(netns=name, name=k, value=v) for k, v in COMMON_SYSCTLS]
    res += [Sysctl(netns=uns, name=k, value=v) for k, v in HOST_SYSCTLS]
    for node in lab.nodes:
        res += [Sysctl(netns=node.netns, name=k, value=v) for k, v in ROUTER_SYSCTLS]
    for pod in pod_side(lab):  # eth0's own, as the CNI bridge plugin sets it (written once eth0 exists)
        res += [Sysctl(netns=pod.netns, name=k, value=v) for k, v in interface_sysctls(naming.POD_IF, POD_IF_DEVCONF)]

    # Bridges: the underlay switch, and cni0 in every node that has (or had) a pod: the bridge plugin makes it at
    # a node's first pod's ADD and never deletes it (Lab.bridge_nodes). A user's plugins make their own, or none.
    res.append(Bridge(netns=uns, name=naming.UNDERLAY_BRIDGE, mtu=lab.underlay_mtu,
                      mac=naming.mac_from_hash(lab.name, "underlay-br0")))
    bridged = lab.bridge_nodes()
    for node in lab.nodes:
        if node.name in bridged:
            res.append(Bridge(netns=node.netns, name=naming.BRIDGE, mtu=lab.pod_mtu, mac=node.bridge_mac))

    # veths: node eth0 <-> underlay br0 port; pod eth0 <-> node cni0 port.
    for node in lab.nodes:
        res.append(Veth(netns=uns, name=node.underlay_veth, mtu=lab.underlay_mtu,
                        mac=naming.mac_from_hash(lab.name, "underlay-port", node.name),
                        peer_netns=node.netns, peer_name=naming.NODE_IF, peer_mac=node.eth0_mac,
                        master=naming.UNDERLAY_BRIDGE, port_state=FORWARDING))
    for pod in pod_side(lab):
        node = lab.node(pod.node)
        # hairpin: a pod that reaches its own Service gets the DNATed packet back
        # out of the port it came in on; a bridge only does that in hairpin mode.
        res.append(Veth(netns=node.netns, name=pod.host_veth, mtu=lab.pod_mtu,
                        mac=host_veth_mac(lab, pod),
                        peer_netns=pod.netns, peer_name=naming.POD_IF, peer_mac=pod.mac,
                        master=naming.BRIDGE, hairpin=True, port_state=FORWARDING,
                        txqlen=CNI_VETH_TXQLEN))

    # VTEPs.
    if lab.mode == "vxlan":
        for node in lab.nodes:
            res += [r for r in overlay.vtep(lab, node) if r.kind == "vxlan"]

    # Addresses.
    underlay = lab.topo.network.underlay.cidr
    if lab.topo.internet is None:
        # The underlay's router: without an internet: section, the host side of the
        # nodes' LAN holds it, as libvirt's virbr0 holds 192.168.122.1 on the machine
        # that runs the tutorial's minikube VMs (see underlay_router).
        res.append(address_with_brd(uns, naming.UNDERLAY_BRIDGE,
                                    IPv4Interface(f"{underlay_router(lab)}/{underlay.prefixlen}")))
    for node in lab.nodes:
        res.append(address_with_brd(node.netns, naming.NODE_IF, IPv4Interface(f"{node.ip}/{underlay.prefixlen}")))
        if node.name in bridged:
            res.append(address_with_brd(node.netns, naming.BRIDGE, node.gateway))
        if lab.mode == "vxlan":
            res += [r for r in overlay.vtep(lab, node) if r.kind == "address"]
    for pod in pod_side(lab):
        node = lab.node(pod.node)
        res.append(address_with_brd(pod.netns, naming.POD_IF, IPv4Interface(f"{pod.ip}/{node.pod_cidr.prefixlen}")))

    # Cross-node reachability: ARP, FDB, then routes (see overlay.py for why).
    if lab.mode == "vxlan":
        per_node = [overlay.vxlan_peers(lab, node) for node in lab.nodes]
        for neighs, _, _ in per_node:
            res += neighs
        for _, fdbs, _ in per_node:
            res += fdbs
        for _, _, routes in per_node:
            res += routes
    else:
        for node in lab.nodes:
            res += overlay.host_gw_routes(lab, node)

    # Nodes: the default route via the underlay's router, as a real node's DHCP
    # client sets it (the tutorial's "default via 192.168.122.1").
    router = underlay_router(lab)
    for node in lab.nodes:
        res.append(Route(netns=node.netns, dst=DEFAULT, gateway=router, dev=naming.NODE_IF))

    # Pods: the routes of Flannel's CNI delegate config, in the order the bridge
    # plugin adds them: the ipam "routes" entry (the cluster pod CIDR), then the
    # default route of isDefaultGateway, both via cni0's address.
    for pod in pod_side(lab):
        node = lab.node(pod.node)
        res.append(Route(netns=pod.netns, dst=lab.topo.cluster.pod_cidr, gateway=node.gateway.ip, dev=naming.POD_IF))
        res.append(Route(netns=pod.netns, dst=DEFAULT, gateway=node.gateway.ip, dev=naming.POD_IF))

    for module in EXTENSIONS:
        res += module.resources(lab)
    res += _inherited_sysctls(lab, res)
    res += _restored_sysctls(lab, res)
    if lab.cni != "builtin":  # CNI plugins run in the nodes: their jumps to their own CNI-* chains are theirs
        nodes = {node.netns for node in lab.nodes}
        res = [replace(r, plugin_jumps=True) if isinstance(r, NatRules) and r.netns in nodes else r for r in res]
    stopped = stopped_sandboxes(lab)
    res = [r for r in res if r.netns not in stopped]  # released with the sandbox: nothing of the plan is there
    res.sort(key=place)

    _check_unique(res)
    return Plan(lab=lab.name, resources=tuple(res), stopped=stopped)


def stopped_sandboxes(lab: Lab) -> frozenset[str]:
    """The namespaces of the pods of a CNI lab that are terminal (Completed or Error) and no longer attached: a
    kubelet stopped their sandbox, whose CNI DEL ran (netlab.cni.terminated), and containerd's StopPodSandbox
    removed the sandbox's network namespace after that DEL (``sandbox.NetNS.Remove()``): ``up`` removes it too
    (lab/up_converge._release_stopped), so the plan holds nothing there and ``status`` looks for no namespace.
    A pod that runs again (its command changed: not terminal then) gets a new one, and a new sandbox's ADD."""
    if lab.cni == "builtin":
        return frozenset()
    return frozenset(p.netns for p in lab.pods if p.name in lab.terminal and p.name not in lab.attached)


def place(r: Resource) -> tuple[int, int]:
    """Where ``r`` goes in the plan: its kind's place in ORDER, but a sysctl that exists only once something
    later is made comes after it (plan/sysctls.py, when_written): an interface's after the links, addresses and
    routes, nf_conntrack's after the rule tables."""
    if isinstance(r, Sysctl):
        when = when_written(r.name)
        if when == "link":
            return ORDER.index("route"), 1
        if when == "tables":
            return len(ORDER), 0
    return ORDER.index(r.kind), 0


def _inherited_sysctls(lab: Lab, res: list[Resource]) -> list[Sysctl]:
    """Each pod's IPv4 all/default settings as its node has them (ip_forward=1; kube-proxy's route_localnet in
    iptables mode): a real pod's namespace is made on its node and starts with a copy of the node's
    (plan/sysctls.py, copied_by_new_netns); netlab makes it from the machine's own, so it writes the node's.
    Not those the pod's plan sets itself (COMMON_SYSCTLS, the same as the node's)."""
    own = {(r.netns, r.name) for r in res if isinstance(r, Sysctl)}
    node_ns = {node.name: node.netns for node in lab.nodes}
    copied: dict[str, list[Sysctl]] = {}
    for r in res:
        if isinstance(r, Sysctl) and copied_by_new_netns(r.name):
            copied.setdefault(r.netns, []).append(r)
    return [Sysctl(netns=pod.netns, name=r.name, value=r.value) for pod in lab.pods
            for r in copied.get(node_ns[pod.node], []) if (pod.netns, r.name) not in own]


def _restored_sysctls(lab: Lab, res: list[Resource]) -> list[Sysctl]:
    """The IPv4 all/default settings this machine gives new namespaces otherwise than the kernel does, set
    back in every namespace of the plan (the internet's too), to the kernel's values of a namespace that forwards
    where the plan makes it forward (all.accept_redirects=0, as writing ip_forward=1 makes it), but where the plan
    itself sets one (kube-proxy's route_localnet on a node: the node keeps kube-proxy's value)."""
    if not lab.restored:
        return []
    own = {(r.netns, r.name) for r in res if isinstance(r, Sysctl)}
    forwarding = {r.netns for r in res if isinstance(r, Sysctl) and r.name == FORWARD_SYSCTL and r.value == "1"}
    return [Sysctl(netns=r.netns, name=k, value=v) for r in res if r.kind == "netns"
            for k, v in restore_sysctls(lab.restored, r.netns in forwarding) if (r.netns, k) not in own]


def pod_side(lab: Lab) -> list[PodInfo]:
    """Pods whose veth, address and routes the plan holds.

    builtin: every pod (netlab makes them). reference: the pods the CNI bridge
    plugin has attached (netlab.cni makes them with the plugin, after the
    network; the plugin's result names the veth and MACs), so status compares
    them as it compares netlab's own. A user's conflist: none; what the
    plugins make is theirs, and their CHECK is the judge.
    """
    if lab.cni == "builtin":
        return lab.pods
    if lab.cni == "reference":
        return [p for p in lab.pods if p.name in lab.attached]
    return []


def host_veth_mac(lab: Lab, pod: PodInfo) -> str:
    att = lab.attached.get(pod.name)
    return att.host_mac if att and att.host_mac else naming.mac_from_hash(lab.name, "cni-port", pod.name)


def underlay_router(lab: Lab) -> IPv4Address:
    """The first address of the underlay: the router of the nodes' LAN, every node's default gateway.

    With an ``internet:`` section it is the lab's gateway (its eth0, plan/internet.py),
    which forwards to the internet and masquerades. Without one it is ``br0`` in
    ``<lab>-underlay``: the switch's own port, the way libvirt's default network
    puts 192.168.122.1 on virbr0 on the host of the tutorial's VMs. That host
    forwards nowhere (the lab has no outside), so a packet for an address outside
    the lab is dropped there, as on a LAN whose router has no uplink.
    """
    return underlay_gateway(lab.topo.network.underlay.cidr)


def _check_unique(res: list[Resource]) -> None:
    """Every object once, and every kernel-visible name from the safe alphabet,
    within the kernel's limits (the last line of defence: names are generated). Each name is checked once
    (a lab of 500 pods names its ~500 namespaces in ~16,000 objects)."""
    seen: set[tuple] = set()
    checked: dict[Callable[[str], str], set[str]] = {naming.check_netns: set(), naming.check_ifname: set(),
                                                      naming.check_chain: set()}

    def check(how: Callable[[str], str], name: str) -> None:
        if name not in checked[how]:
            how(name)
            checked[how].add(name)

    for r in res:
        if r.key in seen:
            raise ValueError(f"plan has two objects with key {r.key}")
        seen.add(r.key)
        check(naming.check_netns, r.netns)
        for attr in ("name", "peer_name", "dev", "master") if r.kind != "sysctl" else ():
            value = getattr(r, attr, None)
            if value is not None:
                check(naming.check_ifname, value)
        if isinstance(r, Veth):
            check(naming.check_netns, r.peer_netns)
        for chain in getattr(r, "chains", ()):
            if chain not in BUILTIN_CHAINS:
                check(naming.check_chain, chain)
