"""The lab as the trace sees it, from its plan: who is where, veth peers, Services, planned entries.

The kernel knows a veth's peer only as an ifindex in a namespace *id*, which
has no name; the plan knows both ends by name, so the walker follows a frame
out of one namespace into the next with :attr:`LabMap.peers`. The plan also
puts names on addresses (``10.244.1.3 (fedora-2)``), says which namespaces
run kube-proxy/Flannel NAT rules, how kube-proxy chained every Service port
(``KUBE-SVC-...`` → ``KUBE-SEP-...`` per endpoint), and gives the command
that makes a missing route, ARP entry or FDB entry again (a lost packet's
fix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from netlab.cni.conf import kept_devices
from netlab.errors import netlab_command
from netlab.model.cniconf import ConflistError
from netlab.model.lab import Lab
from netlab.model.naming import vxlan_name
from netlab.plan.build import Plan
from netlab.plan.cniadd import POD_IF, node_gateway, user_conflist
from netlab.plan import nftables
from netlab.plan.resources import Address, Fdb, Link, NatRules, Neigh, NftRules, Route, Sysctl, Veth, Vxlan
from netlab.plan.services import KUBE_SERVICES, service_ports
from netlab.realize.attachments import plugin_node_devices, plugin_pairs
from netlab.trace.later import Later


class ServiceEndpoint(NamedTuple):
    ip: str
    port: int
    pod: str
    sep_chain: str  # kube-proxy's KUBE-SEP-... chain that DNATs to it


@dataclass(frozen=True)
class ServiceFacts:
    """One Service port as kube-proxy chains it (for naming the DNAT the kernel did)."""

    name: str
    ip: str
    port: int
    protocol: str
    svc_chain: str
    node_port: int | None = None
    endpoints: tuple[ServiceEndpoint, ...] = ()
    ext_chain: str | None = None  # KUBE-EXT-...: where a nodePort or the load balancer's address enters
    lb_ip: str | None = None
    external_ips: tuple[str, ...] = ()  # spec.externalIPs: routed to a node, DNATed there like the ClusterIP
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges: who may pass fw_chain to the balancer's IP
    fw_chain: str | None = None
    # externalTrafficPolicy Local: the nodes with an endpoint of their own (None: Cluster), and the pod CIDR,
    # whose traffic kube-proxy short-circuits to every endpoint
    local_nodes: tuple[str, ...] | None = None
    pod_cidr: str = ""
    local_chain: str | None = None  # KUBE-SVL-... / local-...: a node's own endpoints (Local)
    internal_local: bool = False  # internalTrafficPolicy Local: the ClusterIP goes to local_chain
    external_local: bool = False  # externalTrafficPolicy Local: an outside client's nodePort packet does

    @property
    def addresses(self) -> tuple[str, ...]:
        """The Service's own addresses a packet may carry to a node (not a nodePort's, which is the node's):
        its ClusterIP, the balancer's IP and its externalIPs."""
        return (self.ip, *([self.lb_ip] if self.lb_ip else []), *self.external_ips)

    def no_local_words(self, node: str, dst: str) -> str:
        """Why ``node`` drops a packet to ``dst`` (:meth:`dropped_on`), in words."""
        if dst == self.ip:
            return (f"Service {self.name} has internalTrafficPolicy Local and no endpoint on {node}: kube-proxy "
                    "sends ClusterIP traffic only to the node's own endpoints")
        return (f"Service {self.name} has externalTrafficPolicy Local and no endpoint on {node}: kube-proxy sends "
                "outside traffic only to the node's own endpoints")

    def sender(self, src: str, own: bool = False) -> str:
        """Who sends, as the external chain of an externalTrafficPolicy Local Service tells them apart, in its
        order: "pod" (a source in the pod CIDR), "node" (``own``: the node's own packet, whose source is one of
        its addresses: ``--src-type LOCAL`` / ``fib saddr type local``), else "outside"."""
        if self.pod_cidr and IPv4Address(src) in IPv4Network(self.pod_cidr):
            return "pod"
        return "node" if own else "outside"

    def chain_for(self, src: str, dst: str, own: bool = False) -> str:
        """The chain that picks the endpoint for a packet from ``src`` to ``dst`` (``own``: the node's own
        packet): with externalTrafficPolicy Local, an outside client's to a nodePort or the balancer's IP goes
        to the node's own endpoints' chain; a pod's and the node's own are short-circuited to the Service's
        chain, as is the ClusterIP's (the node's own endpoints' with internalTrafficPolicy Local)."""
        if self.local_chain is None or dst == self.ip:
            return self.local_chain if self.internal_local and self.local_chain else self.svc_chain
        if self.external_local and self.sender(src, own) == "outside":
            return self.local_chain
        return self.svc_chain

    def dropped_on(self, node: str, src: str, dst: str, own: bool = False) -> bool:
        """Whether ``node`` drops this outside packet to its nodePort or the balancer's IP ("has no local
        endpoints"); a pod's or the node's own (``own``; both short-circuited to every endpoint) it does not."""
        if self.local_nodes is None or node in self.local_nodes or not self.endpoints:
            return False
        if dst == self.ip:  # the ClusterIP: dropped for everyone with internalTrafficPolicy Local
            return self.internal_local
        return self.external_local and self.sender(src, own) == "outside"

    def endpoint(self, ip: str, port: int | None) -> ServiceEndpoint | None:
        return next((e for e in self.endpoints if e.ip == ip and e.port == port), None)


class PlannedNat(NamedTuple):
    """A namespace's nat table as the plan makes it: the lab's chains, and every rule as iptables-save prints it."""

    chains: frozenset[str]
    rules: tuple[str, ...]
    plugin_jumps: bool = False  # a node whose pods CNI plugins attach: their jumps are theirs (netfilter_drift)


@dataclass
class LabMap:
    """The lab's structure, from its plan: veth peers, names, Services, planned entries."""

    lab: str
    peers: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # netns -> "pod fedora-1"
    ip_names: dict[str, str] = field(default_factory=dict)  # "10.244.1.3" -> "fedora-2"
    services: list[ServiceFacts] = field(default_factory=list)
    nat_netns: tuple[str, ...] = ()
    planned_neigh: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (netns, dev, ip) -> command
    planned_fdb: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (netns, dev, mac) -> command
    planned_route: dict[tuple[str, str], str] = field(default_factory=dict)  # (netns, dst cidr) -> command
    # (netns, dev) -> the commands of the plan's routes out of that device, then its neighbours: what the kernel
    # removes when the device is set down and does not put back when it comes up (its connected routes, made
    # from its addresses, which stay, do come back)
    planned_on_dev: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    planned_mtu: dict[tuple[str, str], int] = field(default_factory=dict)  # (netns, dev) -> the MTU `up` sets
    planned_route_dev: dict[tuple[str, str], str] = field(default_factory=dict)  # (netns, dst cidr) -> its device
    planned_route_via: dict[tuple[str, str], str] = field(default_factory=dict)  # (netns, dst cidr) -> its gateway
    # (netns, dst cidr) -> a multipath route's next hops (the gateway's to a LoadBalancer IP)
    planned_route_hops: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    planned_fdb_dst: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (netns, dev, mac) -> remote VTEP
    planned_vni: dict[tuple[str, str], int] = field(default_factory=dict)  # (netns, VXLAN device) -> its VNI
    # (netns, cidr): the subnets of the plan's addresses, whose routes the kernel makes itself (proto kernel)
    planned_connected: set[tuple[str, str]] = field(default_factory=set)
    # (netns, cidr) -> (device, address): where that connected route goes (on the link, no gateway) and its source
    planned_connected_dev: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    planned_nat: dict[str, "PlannedNat"] = field(default_factory=dict)  # netns -> its nat table as planned
    planned_filter: dict[str, "PlannedNat"] = field(default_factory=dict)  # netns -> its filter table as planned
    # kube-proxy in nftables mode: netns -> its table ip kube-proxy as planned (the plan's listing lines)
    planned_nft: dict[str, tuple[str, ...]] = field(default_factory=dict)
    node_pod_cidrs: dict[str, tuple[str, str]] = field(default_factory=dict)  # node -> (netns, pod CIDR)
    node_ips: set[str] = field(default_factory=set)  # the nodes' underlay addresses (their VTEPs)
    # the namespaces the plan keeps from forwarding (ip_forward 0): the underlay (a switch whose br0 address is the
    # nodes' gateway, which routes nothing on) and the internet's hosts: a packet routed there for another address
    # dies there by design
    no_forward: set[str] = field(default_factory=set)
    # pod address -> why no other node reaches it: its CNI plugins gave it an address outside its node's pod CIDR,
    # which Flannel does not route (model.lab.Lab.outside_pod_cidrs, up's and status's warning)
    outside_cidr: dict[str, str] = field(default_factory=dict)
    mode: str = "vxlan"  # network.mode: vxlan (Flannel's overlay) or host-gw (routes via the nodes' addresses)
    # The `up` that repairs the lab, the fix where only all of it puts back what is missing: the words `status`
    # says it in (realize.state.repair_up: `-t FILE` for a lab as its file made it), set by trace.run from the lab's
    # state, worked out when a line names it (trace/later.py); else `up --lab NAME`, which repairs any running lab
    # from its saved topology.
    repair_later: Later | None = field(default=None, repr=False, compare=False)
    # A user's conflist (realize.attachments.plugin_made, as status and up take it): namespace -> the devices its
    # plugins made there, whose routes are theirs, not extra (None: the whole namespace is theirs, a pod's): those
    # the pods' results name, and on every node the bridge the conflist names (kept_devices), pods or none
    plugin_devs: dict[str, frozenset[str] | None] = field(default_factory=dict)
    # node namespace -> its pods' namespaces -> their chains' CNI_IFNAME (realize.attachments.plugin_pods)
    plugin_pods: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    pod_nodes: dict[str, str] = field(default_factory=dict)  # pod namespace -> its node's namespace
    # (node namespace, pod address) -> (pod, its veth's node end): a pod whose CNI result lists that veth alone on
    # the node (ptp's, on no bridge), which the node reaches by its own route through the veth
    host_routes: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # A user's conflist: its path, and whether its bridge plugin sets hairpinMode (None: it cannot be read now). The
    # pods' bridge ports are its plugins', which set their hairpin mode at each ADD: no `up` repairs it (the plan
    # holds none of those ports).
    conflist: str = ""
    hairpin_mode: bool | None = None

    @property
    def repair(self) -> str:
        return self.repair_later() if self.repair_later is not None else netlab_command(f"up --lab {self.lab}")

    @repair.setter
    def repair(self, value: str) -> None:
        self.repair_later = Later(value)

    @classmethod
    def from_lab(cls, lab: Lab, plan: Plan) -> "LabMap":
        m = cls(lab=lab.name, mode=lab.mode)
        m.names[lab.underlay_netns] = "underlay"
        for node in lab.nodes:
            m.names[node.netns] = f"node {node.name}"
            m.ip_names[str(node.ip)] = node.name
            m.node_pod_cidrs[node.name] = (node.netns, str(node.pod_cidr))
            m.node_ips.add(str(node.ip))
            # what the node's pod gateway address is on (cni0, qnbr0, ptp's pod veths, bashbr0), if known: a
            # user's plugins may put the pods' gateway where they like (or nowhere)
            gateway = node_gateway(lab, node)
            if gateway:
                m.ip_names[str(gateway[0])] = f"{node.name} {gateway[1]}"
            if lab.mode == "vxlan":
                m.ip_names[str(node.vtep_ip)] = f"{node.name} {vxlan_name(lab.topo.network.vxlan.vni)}"
        m.plugin_devs.update(_kept_devices(lab))
        if lab.cni == "conflist":
            m.conflist, m.hairpin_mode = _hairpin_mode(lab)
        if lab.cni == "conflist":  # every node: its plugins' veths to its pods are theirs too (plugins_live)
            for node in lab.nodes:
                m.plugin_devs.setdefault(node.netns, frozenset())
        m.outside_cidr = {str(lab.pod(pod).ip): line for pod, line in lab.outside_pod_cidrs().items()}
        for pod in lab.pods:
            m.names[pod.netns] = f"pod {pod.name}"
            m.pod_nodes[pod.netns] = lab.node(pod.node).netns
            m.ip_names[str(pod.ip)] = pod.name
            att = lab.attached.get(pod.name)
            if lab.cni == "conflist":
                m.plugin_devs[pod.netns] = None
                m.plugin_pods.setdefault(lab.node(pod.node).netns, {})[pod.netns] = frozenset({POD_IF})
                if att is not None:
                    node_ns = lab.node(pod.node).netns
                    devs = {*att.host_ifaces, *([att.host_veth] if att.host_veth else [])}
                    m.plugin_devs[node_ns] = frozenset(devs | (m.plugin_devs.get(node_ns) or frozenset()))
            if att is not None and att.host_veth:  # a pair a CNI plugin made (its result names the host end)
                node_ns = lab.node(pod.node).netns
                if att.host_ifaces == (att.host_veth,):  # no bridge: the node routes the pod through it
                    m.host_routes[(node_ns, str(att.ip))] = (pod.name, att.host_veth)
                m.peers[(node_ns, att.host_veth)] = (pod.netns, "eth0")
                m.peers[(pod.netns, "eth0")] = (node_ns, att.host_veth)
        # the internet's gateway by its role, a host as one ("internet example" read as a
        # place, not a machine); the last word is the machine's name
        roles = {"gateway": "internet gateway"}
        for host, netns in lab.internet_hosts:
            m.names[netns] = roles.get(host, f"internet host {host}")  # a host may not take their names
        neighs: dict[tuple[str, str], list[str]] = {}
        for r in plan.resources:
            if isinstance(r, Link):
                m.planned_mtu[(r.netns, r.name)] = r.mtu
            if isinstance(r, Veth):
                m.planned_mtu[(r.peer_netns, r.peer_name)] = r.mtu
                m.peers[(r.netns, r.name)] = (r.peer_netns, r.peer_name)
                m.peers[(r.peer_netns, r.peer_name)] = (r.netns, r.name)
            elif isinstance(r, Neigh):
                m.planned_neigh[(r.netns, r.dev, str(r.dst))] = r.command()
                neighs.setdefault((r.netns, r.dev), []).append(r.command())
            elif isinstance(r, Vxlan):
                m.planned_vni[(r.netns, r.name)] = r.vni
            elif isinstance(r, Fdb):
                m.planned_fdb[(r.netns, r.dev, r.lladdr.lower())] = r.command()
                m.planned_fdb_dst[(r.netns, r.dev, r.lladdr.lower())] = str(r.dst)
            elif isinstance(r, Route):
                m.planned_route[(r.netns, str(IPv4Network(r.dst)))] = r.command()
                if r.gateway is not None:
                    m.planned_route_via[(r.netns, str(IPv4Network(r.dst)))] = str(r.gateway)
                if r.nexthops:
                    m.planned_route_hops[(r.netns, str(IPv4Network(r.dst)))] = tuple(str(h) for h in r.nexthops)
                if r.dev:
                    m.planned_on_dev.setdefault((r.netns, r.dev), []).append(r.command())
                    m.planned_route_dev[(r.netns, str(IPv4Network(r.dst)))] = r.dev
            elif isinstance(r, NatRules) and r.table == "nat":
                m.planned_nat[r.netns] = PlannedNat(frozenset(r.chains), r.rules)
            elif isinstance(r, NatRules) and r.table == "filter":
                m.planned_filter[r.netns] = PlannedNat(frozenset(r.chains), r.rules, r.plugin_jumps)
            elif isinstance(r, NftRules) and (r.family, r.table) == (nftables.FAMILY, nftables.TABLE):
                m.planned_nft[r.netns] = r.listing
            elif isinstance(r, Sysctl) and (r.name, r.value) == ("net.ipv4.ip_forward", "0"):
                m.no_forward.add(r.netns)
            elif isinstance(r, Address):
                m.planned_connected.add((r.netns, str(r.address.network)))
                if r.address.network.prefixlen < 32:  # a /32 makes no route to a subnet
                    m.planned_connected_dev.setdefault((r.netns, str(r.address.network)), (r.dev, str(r.address.ip)))
            if isinstance(r, Address) and r.netns in m.names and not m.names[r.netns].startswith(("pod", "node")):
                # the internet's machines (gateway, lb, hosts) are named after their netns
                m.ip_names.setdefault(str(r.address.ip), m.names[r.netns].split()[-1])
        for key, commands in neighs.items():  # after the routes: a learner adds the route, then its next hop's MAC
            m.planned_on_dev.setdefault(key, []).extend(commands)
        m.nat_netns = tuple(sorted({r.netns for r in plan.resources if isinstance(r, NatRules)}))
        m.services = services(lab)
        for s in m.services:
            m.ip_names.setdefault(s.ip, f"Service {s.name}")
        return m

    def plugins_live(self, links_of: Callable[[str], Iterable[Any] | None],
                     nsids: Callable[[str, Sequence[str]], dict[str, int]]) -> None:
        """Each node's devices its CNI plugins made as they are now, as status takes them (one rule:
        realize.attachments.plugin_node_devices): beside those the conflist and results name, a veth whose peer is
        the eth0 of one of the node's pods, the bridge it is a port of and that bridge's ports that are no veth.
        Such a veth and the pod's eth0 are each other's peers (:attr:`peers`) though no result names the veth (a
        0.2.0 one, or one without ``interfaces``; QA q38 #1): the kernel's pairing, by ifindex and namespace id,
        over the result's. ``links_of(ns)``: a namespace's links (None: gone); ``nsids(node, pods)``: the ids the
        node gives the pods' namespaces (kernel/nsid.py)."""
        for ns, devs in list(self.plugin_devs.items()):
            found = links_of(ns) if devs is not None else None
            if found is None:
                continue
            links = list(found)
            pods = {p: (ifs, list(plinks)) for p, ifs in self.plugin_pods.get(ns, {}).items()
                    if (plinks := links_of(p)) is not None}
            ids = nsids(ns, sorted(pods)) if pods else {}
            self.plugin_devs[ns] = frozenset(plugin_node_devices(links, pods, ids, devs or ()))
            for veth, pod_end in plugin_pairs(links, pods, ids).items():
                self.peers[(ns, veth)] = pod_end
                self.peers[pod_end] = (ns, veth)

    @property
    def kube_proxy_netns(self) -> tuple[str, ...]:
        """The namespaces where kube-proxy's rules DNAT Service traffic (the nodes)."""
        return tuple(ns for ns, nat in self.planned_nat.items() if KUBE_SERVICES in nat.chains) + self.nft_netns

    @property
    def nft_netns(self) -> tuple[str, ...]:
        """The namespaces where kube-proxy's nftables table DNATs Service traffic (nodes, in nftables mode)."""
        return tuple(sorted(self.planned_nft))

    def where(self, netns: str) -> str:
        return self.names.get(netns, netns)

    def name_ip(self, ip: str | None) -> str:
        """``10.244.1.3 (fedora-2)``."""
        if ip is None:
            return "?"
        name = self.ip_names.get(ip)
        return f"{ip} ({name})" if name else ip

    def outside_by_default(self, netns: str, dst: str, matched: str | None) -> tuple[str, None] | None:
        """A node sending a pod's address by its default route because the pod's CNI plugins gave it one outside
        its node's pod CIDR: the cause where the packet dies (the underlay, which forwards nothing); no route is
        missing, nothing of the lab's is to fix (the plugins' IPAM is)."""
        if dst not in self.outside_cidr or not (matched or "").startswith("default"):
            return None
        return (self.outside_cidr[dst], None) if self.names.get(netns, "").startswith("node ") else None

    def planned_route_for(self, netns: str, dst: str, connected: bool = False) -> str | None:
        """The destination CIDR of the plan's most specific route in ``netns`` that covers ``dst``; ``connected``:
        the routes the kernel makes for the plan's addresses too (a pod's own subnet, straight out of eth0)."""
        best: IPv4Network | None = None
        keys = list(self.planned_route) + (list(self.planned_connected_dev) if connected else [])
        for rns, cidr in keys:
            net = IPv4Network(cidr)
            if rns == netns and IPv4Address(dst) in net and (best is None or net.prefixlen > best.prefixlen):
                best = net
        return str(best) if best is not None else None

    def planned_path(self, netns: str, cidr: str) -> tuple[str | None, str | None] | None:
        """How the plan's route to ``cidr`` in ``netns`` goes: (gateway, device); a connected one on the link
        (no gateway) out of its address's device. None: the plan has no such route."""
        if (netns, cidr) in self.planned_route:
            return self.planned_route_via.get((netns, cidr)), self.planned_route_dev.get((netns, cidr))
        connected = self.planned_connected_dev.get((netns, cidr))
        return (None, connected[0]) if connected is not None else None

    def route_fix(self, netns: str, dst: str) -> str | None:
        """The plan's most specific route in ``netns`` that covers ``dst`` (the fix for a missing route)."""
        cidr = self.planned_route_for(netns, dst)
        return self.planned_route[(netns, cidr)] if cidr is not None else None

    def route_dev(self, netns: str, dst: str) -> str | None:
        """The device of that route, as planned."""
        cidr = self.planned_route_for(netns, dst)
        return self.planned_route_dev.get((netns, cidr)) if cidr is not None else None

    def link_fix(self, netns: str, dev: str) -> str:
        """The commands that repair ``dev`` of ``netns`` set down: the link up, then what went with it and does not
        come back by itself (measured on kernel 6.18): a node's eth0 loses its default route (via the underlay's
        gateway); flannel.1 its routes to the other nodes' pod CIDRs and their VTEPs' permanent ARP entries; a
        pod's eth0 its default route and the cluster's route via cni0. Their connected routes come back with the
        link (the addresses stay), so cni0 needs only to come up."""
        return " && ".join([f"ip -n {netns} link set {dev} up", *self.planned_on_dev.get((netns, dev), [])])

    def service_for(self, ip: str, port: int | None, proto: str, lb: bool = True) -> ServiceFacts | None:
        """The Service port a packet to ``ip:port`` is for: its ClusterIP or an externalIP and port, a nodePort,
        or (``lb``: in a node, whose kube-proxy catches it) its LoadBalancer IP and port; the balancer's own DNAT
        of that address is not kube-proxy's (``lb`` False there)."""
        for s in self.services:
            if s.protocol == proto and (((s.ip == ip or ip in s.external_ips) and s.port == port)
                                        or (s.node_port == port and port)
                                        or (lb and s.lb_ip == ip and s.port == port)):
                return s
        return None


def services(lab: Lab) -> list[ServiceFacts]:
    """Every Service port of the lab with kube-proxy's chain names and its endpoints' pods."""
    names = {str(p.ip): p.name for p in lab.pods}
    nft = lab.topo.cluster.kube_proxy_mode == "nftables"  # kube-proxy's chains have other names there
    out = []
    for sp in service_ports(lab):
        eps = tuple(ServiceEndpoint(str(ip), port, names.get(str(ip), "?"),
                                    nftables.endpoint_chain(sp, ip, port) if nft else sp.sep_chain(ip, port))
                    for ip, port in sp.endpoints)
        ext = nftables.external_chain(sp) if nft else sp.ext_chain
        local = sp.external_local or sp.internal_local
        out.append(ServiceFacts(name=sp.name, ip=str(sp.cluster_ip), port=sp.port.port, protocol=sp.protocol,
                                svc_chain=nftables.service_chain(sp) if nft else sp.svc_chain,
                                node_port=sp.node_port, endpoints=eps,
                                ext_chain=ext if sp.external else None,
                                external_ips=tuple(str(ip) for ip in sp.external_ips),
                                source_ranges=tuple(str(r) for r in sp.source_ranges) if sp.uses_firewall else (),
                                fw_chain=(nftables.firewall_chain(sp) if nft else sp.fw_chain)
                                if sp.uses_firewall else None,
                                lb_ip=str(sp.lb_ip) if sp.lb_ip is not None else None,
                                local_nodes=tuple(sorted(set(sp.nodes))) if local else None,
                                local_chain=(nftables.local_chain(sp) if nft else sp.svl_chain) if local else None,
                                internal_local=sp.internal_local, external_local=sp.external_local,
                                pod_cidr=str(lab.topo.cluster.pod_cidr)))
    return out


def _kept_devices(lab: Lab) -> dict[str, frozenset[str] | None]:
    """Node namespace -> the devices a user's conflist names that its plugins keep on every node (the bridge
    plugin's ``bridge``, cni0 when it names none), as ``up`` records them at a node's first ADD: made by the plugins
    whether the node has pods now or not (its last pod gone, an ADD that failed), so neither they nor their routes
    are extra. Empty for netlab's own pods, or a conflist that cannot be read now."""
    if lab.cni != "conflist":
        return {}
    try:
        devs = frozenset(kept_devices(user_conflist(lab)))
    except ConflistError:
        return {}
    return {node.netns: devs for node in lab.nodes} if devs else {}


def _hairpin_mode(lab: Lab) -> tuple[str, bool | None]:
    """A conflist lab's conflist path, and whether its bridge plugin sets hairpinMode (None: it cannot be read now,
    or it has no bridge plugin)."""
    cni = lab.topo.network.cni
    path = getattr(cni, "conflist", "")
    try:
        bridge = next((p for p in user_conflist(lab).plugins if p.get("type") == "bridge"), None)
    except ConflistError:
        return path, None
    return path, None if bridge is None else bridge.get("hairpinMode") is True
