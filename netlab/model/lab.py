"""A resolved lab: the topology with every address, name and MAC filled in.

This is what the planner, the prober and the CLI work from. It is pure data
derived deterministically from a validated :class:`Topology`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.model import naming
from netlab.model.addressing import Addressing, Held, allocate, held_of
from netlab.model.hostports import port_mappings
from netlab.model.clusterdns import add_cluster_dns, fqdn, with_dns_records
from netlab.model.echo_ports import DEFAULT_ECHO_PORT as DEFAULT_ECHO_PORT  # a pod's echo server's (8080, TCP)
from netlab.model.selection import SelectorIndex
from netlab.model.topology import Container, Pod, Service, ServicePort, Topology

DEFAULT_CONTAINER = "main"
# A pod's address its CNI plugins gave outside its node's pod CIDR (Lab.outside_pod_cidrs): up's and status's warning
OUTSIDE_POD_CIDR = "(from its CNI result) is outside node"
ECHO_CONTAINER = Container(name=DEFAULT_CONTAINER)  # frozen: one for every pod that lists no container

@dataclass(frozen=True)
class NodeInfo:
    name: str
    netns: str
    ip: IPv4Address
    pod_cidr: IPv4Network
    underlay_veth: str  # the node's port on the underlay bridge
    eth0_mac: str
    bridge_mac: str
    vxlan_mac: str

    @cached_property  # asked once or twice per pod of the node by a plan (its default route) and its check
    def gateway(self) -> IPv4Interface:
        """cni0's address: the first address of the node's pod CIDR."""
        return IPv4Interface(f"{self.pod_cidr.network_address + 1}/{self.pod_cidr.prefixlen}")

    @property
    def vtep_ip(self) -> IPv4Address:
        """flannel.1's address: the network address of the pod CIDR, as a /32."""
        return self.pod_cidr.network_address


@dataclass(frozen=True)
class PodInfo:
    name: str
    netns: str
    node: str
    ip: IPv4Address
    mac: str
    host_veth: str  # the pod's port on its node's cni0
    spec: Pod

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.labels)

    @property
    def hostname(self) -> str:
        """What ``hostname`` prints in the pod: spec.hostname, else the pod's name (the kubelet's choice)."""
        return self.spec.hostname or self.name

    @property
    def containers(self) -> list[Container]:
        """The pod's containers; a pod that lists none gets one echo-server container."""
        return list(self.spec.containers) or [ECHO_CONTAINER]

    @property
    def ports(self) -> list[tuple[int, str]]:
        """(port, protocol) the pod serves: declared ports, or the echo server's 8080/TCP."""
        out: list[tuple[int, str]] = []
        for c in self.containers:
            declared = [(p.container_port, p.protocol) for p in c.ports]
            if not declared and c.command is None:
                declared = [DEFAULT_ECHO_PORT]
            out += [p for p in declared if p not in out]
        return out


@dataclass(frozen=True)
class CniAttachment:
    """What a pod's CNI plugins made, from their result (netlab.cni): the pod side as it is in the kernel.

    ``host_veth``/``host_mac``: the node's end of the pod's veth (None when the result names none).
    ``host_ifaces``: every interface the result names outside the pod (the bridge, the veth's end), as the
    lab's state keeps them; empty when not known. ``gateway``: the gateway the result gives the pod's address (the
    address its default route goes by); None when it names none, or the lab's state is older than the field.
    """

    ip: IPv4Address
    mac: str | None = None
    host_veth: str | None = None
    host_mac: str | None = None
    host_ifaces: tuple[str, ...] = ()
    gateway: IPv4Address | None = None
    prefixlen: int | None = None  # the on-link prefix of the pod's address (None: an older state's, not known)

    @property
    def bridge(self) -> str | None:
        """The node's interface beside the pod's veth end that the result names: the bridge the veth is a port of
        (the bridge plugin's [cni0, vethX, eth0]); None with the veth alone (ptp's [vethX, eth0]) or not known."""
        others = [i for i in self.host_ifaces if i != self.host_veth]
        return others[0] if self.host_veth and len(others) == 1 else None


def endpoint_order(endpoint: tuple[PodInfo, int]) -> str:
    """The key kube-proxy sorts a Service port's endpoints by (endpointslicecache.go's byEndpoint): the
    endpoint's "IP:port" string, so 10.244.0.18:8080 comes before 10.244.0.2:8080."""
    pod, port = endpoint
    return f"{pod.ip}:{port}"


# What a displaced holder gets (Lab.displaced), and what its held value is, by the Addressing field it was in
_DISPLACED_NEW = {"node_pod_cidr": "a new block, and its pods new addresses in it", "node_port": "a new port",
                  "health_check_port": "a new port"}
_DISPLACED_HELD = {"node_port": "nodePort ", "health_check_port": "healthCheckNodePort "}


class Lab:
    """A validated topology with its addressing resolved."""

    def __init__(self, topo: Topology, addressing: Addressing, attached: dict[str, CniAttachment] | None = None,
                 restored: tuple[str, ...] = (), terminal: frozenset[str] = frozenset()):
        self.topo = topo
        self.addressing = addressing
        self.name = topo.name
        self.attached: dict[str, CniAttachment] = dict(attached or {})
        # IPv4 all/default settings this machine gives new namespaces otherwise than the kernel does, which
        # every lab namespace sets back (plan/sysctls.py, KERNEL_DEVCONF); known from the host, not the topology
        self.restored = restored
        # The pods whose containers have all exited for good (phase Succeeded or Failed: restartPolicy Never, or
        # OnFailure after exit 0), known from the running lab's records (workload/terminal.py): no endpoint of any
        # Service, as the EndpointSlice controller's ShouldPodBeInEndpoints leaves them out
        self.terminal = terminal
        # The topology as it was resolved from (before netlab's add-ons), and what the running lab held then
        # (resolve): up resolves it again when the lab changed meanwhile.
        self.written: Topology = topo
        self.held_before: Held | None = None

    def held(self) -> Held:
        """What this lab's pods and Services hold once it runs: the next up's ``held``."""
        return held_of(self.addressing, {p.name: (p.namespace, p.node) for p in self.topo.pods},
                       {(s.namespace, s.name, p.port, p.protocol): p.name or "" for s in self.topo.services
                        for p in s.ports}, self.portmap_nodes(), self.bridge_nodes())

    def portmap_nodes(self) -> frozenset[str]:
        """The nodes of a builtin lab that hold portmap's shared chains (plan/portmap_rules.py): those with a pod with
        a hostPort, and those that had them while the lab ran (``held_before``), as portmap's DEL leaves them."""
        if self.cni != "builtin":
            return frozenset()
        had = self.held_before.portmap_nodes if self.held_before is not None else frozenset()
        mapped = {p.node for p in self.topo.pods if port_mappings(p)}
        return frozenset(n.name for n in self.topo.nodes if n.name in had or n.name in mapped)

    def bridge_nodes(self, pod_side: bool = False) -> frozenset[str]:
        """The nodes with cni0 (none with a user's conflist; for ``pod_side`` its plugins' side): those with a pod,
        and those that had cni0 while the lab ran (``held_before``; a conflist's: a device its plugins keep, as
        realize/state.LabState.held reads them). The bridge plugin makes it at a node's first pod's ADD and never
        deletes it: a real node without a pod yet has none, one whose last pod went keeps it."""
        if self.cni == "conflist" and not pod_side:
            return frozenset()
        had = self.held_before.bridge_nodes if self.held_before is not None else frozenset()
        with_pods = {p.node for p in self.topo.pods}
        return frozenset(n.name for n in self.topo.nodes if n.name in had or n.name in with_pods)

    def displaced(self) -> list[str]:
        """The running lab's nodes, pods and Services that give up the address (or block, or port) they hold to
        another's explicit one (``ip:``, ``podCIDR:``, ``clusterIP:``, ``loadBalancerIP:``, an internet host's
        ``ip:``, ``nodePort:``, ``healthCheckNodePort:``), and the Services that lose a held nodePort or
        healthCheckNodePort otherwise (the lab's VXLAN port now, a type or traffic policy that has none, a port name
        gone: model/nodeports.py), each in a line: a fresh lab's, or a kept one, go unsaid."""
        out = []
        for d in self.addressing.displaced:
            now = getattr(self.addressing, d.what).get(d.key)
            new = f"it gets {now}, {_DISPLACED_NEW.get(d.what, 'a new address')}" if now is not None \
                else "the port is freed"  # a nodePort or healthCheckNodePort it has no more
            out.append(f"{d.who} held {_DISPLACED_HELD.get(d.what, '')}{d.held}, which {d.taker}: {new}")
        return out

    def plugin_addresses(self) -> list[str]:
        """The pods whose explicit ``ip:`` their CNI plugins did not give them (an IPAM that picks its own: the
        lab follows the address the plugins gave, as kube-proxy follows the one the kubelet reports), each in a
        line naming both addresses. A builtin lab's pods get theirs: none."""
        return [f"pod {p.name}: its CNI plugins gave it {p.ip}, not the ip: {p.spec.ip} of the topology (netlab "
                f"follows the plugins' address)" for p in self.pods
                if p.spec.ip is not None and p.name in self.attached and p.ip != p.spec.ip]

    def outside_pod_cidrs(self) -> dict[str, str]:
        """The pods whose CNI plugins gave them an address outside their node's pod CIDR (an IPAM range of its own:
        a conflist's host-local ``ranges`` that are not the node's), each with a line naming the pod, the address,
        the node and its pod CIDR. The address is the plugins' (containerd runs them whatever the podCIDR), which
        the lab follows: up and status warn, no drift. Flannel routes only the nodes' pod CIDRs: another node sends
        such an address by its default route to the underlay, which forwards nothing, so it is cut off from every
        other node's pods and from Services that DNAT to it there (a real cluster too). A builtin lab's: none."""
        cidrs = {n.name: n.pod_cidr for n in self.nodes}
        others = ("other nodes send it by their default route", "for them") if len(self.nodes) > 1 else \
            ("a node added to the lab would send it by its default route", "for another node")
        return {p.name: f"pod {p.name}'s address {p.ip} {OUTSIDE_POD_CIDR} {p.node}'s podCIDR {cidrs[p.node]}: the "
                        f"address is its plugins' (the lab follows it), but Flannel routes only the pod CIDRs, so "
                        f"{others[0]} to the underlay, which drops it ({others[1]} to reach it, the plugins' IPAM must "
                        f"give the node's podCIDR, as the ipRanges capability passes it, with no subnet or ranges of "
                        f"its own)" for p in self.pods if p.name in self.attached and p.ip not in cidrs[p.node]}

    def wide_prefix(self, pod: str, prefixlen: int, onlink_route: bool = True) -> str | None:
        """Why pod ``pod``, its eth0 given ``prefixlen`` by its CNI plugins (a conflist's host-local range
        10.244.0.0/16 on every node, addresses in the node's /24), reaches none of what that on-link prefix covers
        besides its own node's pods: the pods of the other nodes whose podCIDRs it covers (and, in VXLAN mode, those
        nodes' own packets: see :meth:`wide_words`), and the ClusterIPs of the Service CIDR when it covers them
        (10.0.0.0/8 over 10.96.0.0/12). None for a prefix no wider than its node's podCIDR, one that covers
        neither, or a pod netlab attached (builtin).

        That holds only where eth0 is on-link for the prefix (its connected route; ``onlink_route``: the kernel
        shows it, as status reads it) and its link is a node-local bridge (the bridge plugin's: the result names
        the bridge beside the veth, :attr:`CniAttachment.bridge`). ptp deletes the connected route and routes the
        prefix via its gateway (the node's end of the veth answers), and macvlan's eth0 is on the underlay's L2,
        where the other nodes' pods are: a /16 works there, and nothing is said."""
        p = self.pod(pod)
        cidr = self.node(p.node).pod_cidr
        att = self.attached.get(pod)
        if att is None or att.bridge is None or not onlink_route or prefixlen >= cidr.prefixlen:
            return None
        onlink = IPv4Interface(f"{p.ip}/{prefixlen}").network
        words = self.wide_words(onlink, p.node)
        if words is None:
            return None
        return (f"pod {pod}'s eth0 {p.ip}/{prefixlen} (from its CNI plugins) is on-link wider than node {p.node}'s "
                f"podCIDR {cidr}: it ARPs on eth0 for {words[0]} in {onlink} and nobody answers ({words[1]}), so it "
                f"reaches {words[2]} (the plugins' IPAM must give the node's podCIDR's prefix, /{cidr.prefixlen})")

    def wide_prefixes(self) -> list[str]:
        """:meth:`wide_prefix`'s line for each pod whose CNI result gave its eth0 a prefix (up's warnings)."""
        return [line for p in self.pods if (att := self.attached.get(p.name)) is not None and att.prefixlen
                for line in [self.wide_prefix(p.name, att.prefixlen)] if line]

    def wide_words(self, onlink: IPv4Network, node: str | None = None) -> tuple[str, str, str] | None:
        """(what a pod whose eth0 is on-link in ``onlink`` ARPs for in vain, why nobody answers, what it cannot
        reach), for a pod of ``node`` (None: a pod of any node); None when the prefix covers neither another
        node's podCIDR nor the Service CIDR. In VXLAN mode a node's own packets to a pod on another node leave
        from its flannel.1 address, the first address of its podCIDR (the route's source), and so does its traffic
        to a Service whose endpoint is there (kube-proxy masquerades it to that address): the pod, its prefix
        covering that address, answers them on eth0, ARPing, instead of through its gateway, and nobody answers."""
        others = [n for n in self.nodes if n.name != node and n.pod_cidr.overlaps(onlink)]
        if node is None and len(others) < 2:
            others = []  # one node's pods alone: nothing of another's
        services = self.topo.cluster.service_cidr
        clusterips = services.overlaps(onlink)
        if not others and not clusterips:
            return None
        covered, why, lost = [], [], []
        if others:
            if node is None:  # a pod of any node: the others'
                covered.append("another node's pods (" + ", ".join(f"{n.name} {n.pod_cidr}" for n in others) + ")")
            else:
                covered.append(f"the pods of node{'s' if len(others) > 1 else ''} "
                               + ", ".join(f"{n.name} ({n.pod_cidr})" for n in others))
            why.append("its node's bridge carries only its own pods")
            gone = "no pod of theirs, nor they it"
            vxlan = [n for n in others if n.pod_cidr.network_address in onlink] if self.topo.network.mode == "vxlan" \
                else []
            if vxlan:
                gone += (", nor those nodes themselves (a node's own packets to a pod on another node, to a Service "
                         "whose endpoint is there too, leave from its flannel.1 address, "
                         + ", ".join(f"{n.pod_cidr.network_address} on {n.name}" for n in vxlan)
                         + ", inside the prefix)")
            lost.append(gone)
        if clusterips:
            covered.append(f"the Services' ClusterIPs (cluster.serviceCIDR {services})")
            why.append("a ClusterIP is no host's address: kube-proxy DNATs it on the node, which only a packet sent "
                       "to the pod's gateway reaches")
            lost.append("no Service by its ClusterIP")
        return " and ".join(covered), "; ".join(why), ", and ".join(lost)

    def _derived(self, lab: "Lab") -> "Lab":
        lab.written, lab.held_before = self.written, self.held_before
        return lab

    @property
    def cni(self) -> str:
        """How pods are attached: builtin (netlab's netlink), reference (the CNI reference plugins) or conflist."""
        cni = self.topo.network.cni
        return cni if isinstance(cni, str) else "conflist"

    def with_attachments(self, attached: dict[str, CniAttachment]) -> "Lab":
        """This lab with its pods as their CNI plugins made them (names, MACs, the real address). None attached when
        some were (the last one's sandbox DELed as terminal) is a change too: its plan follows it."""
        return (self._derived(Lab(self.topo, self.addressing, attached, self.restored, self.terminal))
                if attached != self.attached else self)

    def with_restored(self, restored: tuple[str, ...]) -> "Lab":
        """This lab on a machine whose new namespaces get these settings otherwise than the kernel's values."""
        return (self._derived(Lab(self.topo, self.addressing, self.attached, restored, self.terminal))
                if restored != self.restored else self)

    def with_terminal(self, terminal: frozenset[str]) -> "Lab":
        """This lab with these pods terminal (Succeeded or Failed): out of every Service's endpoints, so out of
        kube-proxy's rules and the cluster DNS's records (the add-on's dnsmasq command with them: its SRV)."""
        terminal = frozenset(terminal) & {p.name for p in self.topo.pods}
        if terminal == self.terminal:
            return self
        topo = with_dns_records(self.topo, self.addressing, terminal)
        return self._derived(Lab(topo, self.addressing, self.attached, self.restored, terminal))

    @cached_property
    def nodes(self) -> list[NodeInfo]:
        lab, a = self.name, self.addressing
        return [
            NodeInfo(
                name=n.name,
                netns=naming.netns_name(lab, n.name),
                ip=a.node_ip[n.name],
                pod_cidr=a.node_pod_cidr[n.name],
                underlay_veth=naming.veth_name(lab, "node/" + n.name),
                eth0_mac=naming.mac_from_hash(lab, "eth0", n.name),
                bridge_mac=naming.mac_from_hash(lab, "cni0", n.name),
                vxlan_mac=naming.mac_from_hash(lab, "vtep", n.name),
            )
            for n in self.topo.nodes
        ]

    @cached_property
    def pods(self) -> list[PodInfo]:
        lab, a = self.name, self.addressing
        out = []
        for p in self.topo.pods:
            att = self.attached.get(p.name)
            out.append(PodInfo(
                name=p.name,
                netns=naming.netns_name(lab, p.name),
                node=p.node,
                ip=att.ip if att else a.pod_ip[p.name],
                mac=(att.mac if att and att.mac else naming.mac_from_hash(lab, "pod-eth0", p.name)),
                host_veth=(att.host_veth if att and att.host_veth else naming.veth_name(lab, "pod/" + p.name)),
                spec=p,
            ))
        return out

    @property
    def services(self) -> list[Service]:
        return list(self.topo.services)

    @cached_property
    def underlay_netns(self) -> str:
        return naming.netns_name(self.name, "underlay")

    @property
    def mode(self) -> str:
        return self.topo.network.mode

    @property
    def underlay_mtu(self) -> int:
        return self.topo.network.underlay.mtu

    @property
    def pod_mtu(self) -> int:
        """VXLAN adds 50 bytes (outer Ethernet 14, IP 20, UDP 8, VXLAN 8); host-gw adds none."""
        return self.underlay_mtu - 50 if self.mode == "vxlan" else self.underlay_mtu

    @cached_property
    def internet_hosts(self) -> list[tuple[str, str]]:
        """(name, namespace) of the simulated internet's machines: gateway, hosts. (The gateway balances
        LoadBalancer IPs: plan/internet.py; no machine of its own.)"""
        if self.topo.internet is None:
            return []
        out = [("gateway", naming.netns_name(self.name, "gateway"))]
        out += [(h.name, naming.netns_name(self.name, h.name)) for h in self.topo.internet.hosts]
        return out

    def node(self, name: str) -> NodeInfo:
        return next(n for n in self.nodes if n.name == name)

    def pod(self, name: str) -> PodInfo:
        return next(p for p in self.pods if p.name == name)

    def pods_on(self, node: str) -> list[PodInfo]:
        return [p for p in self.pods if p.node == node]

    def cluster_ip(self, svc: Service) -> IPv4Address | None:
        """The Service's ClusterIP; None for a headless one (``clusterIP: None``), which has none."""
        return self.addressing.service_ip.get((svc.namespace, svc.name))

    def headless_problem(self, svc: Service) -> str:
        """Why ``svc/NAME`` of a headless Service cannot be probed or traced, and what can be, in one line."""
        pods = sorted({p.name for port in svc.ports for p, _ in self.endpoints(svc, port)} if svc.ports
                      else {p.name for p in self.serving(svc)})  # without ports: every pod it serves (DNS's A)
        them = f"its pods ({', '.join(pods[:4])}{', ...' if len(pods) > 4 else ''})" if pods else "its pods (none yet)"
        return (f"svc/{self.service_ref(svc)} is headless (clusterIP: None): it has no ClusterIP and kube-proxy "
                f"has no rule for it; probe or trace {them}, or look up "
                f"{fqdn(svc)}, which answers their IPs")

    def service_ref(self, svc: Service) -> str:
        """How people name a Service: ``web``, or ``x/web`` when another namespace has a ``web`` too."""
        twins = sum(1 for s in self.topo.services if s.name == svc.name)
        return svc.name if twins == 1 else f"{svc.namespace}/{svc.name}"

    def service_ref_from(self, svc: Service, namespace: str | None) -> str:
        """How a client of Kubernetes namespace ``namespace`` names a Service (svc/REF takes it): its own namespace's
        bare, another's as NS/NAME (a pod's DNS search path); with none (a node, the internet) :meth:`service_ref`."""
        if namespace is None:
            return self.service_ref(svc)
        return svc.name if svc.namespace == namespace else f"{svc.namespace}/{svc.name}"

    def find_service(self, ref: str, namespace: str | None = None) -> Service | None:
        """The Service ``ref`` names (``web`` or ``x/web``); a bare name from a pod of ``namespace`` is the one
        of that namespace, as its DNS search path resolves it (``web.<namespace>.svc.cluster.local``); with no
        namespace (a node's, or the lab's own reference) it is the only Service of that name, else None."""
        ns, _, name = ref.rpartition("/")
        found = [s for s in self.topo.services if s.name == name and (ns or namespace) in (None, "", s.namespace)]
        return found[0] if len(found) == 1 else None

    def service_problem(self, ref: str, namespace: str | None = None) -> str:
        """Why find_service(ref, namespace) found none, naming the namespaces that have that Service."""
        ns, _, name = ref.rpartition("/")
        where = [s.namespace for s in self.topo.services if s.name == name]
        if where and (ns or namespace):
            return f"namespace {ns or namespace} has no Service {name}; name it " + \
                " or ".join(f"svc/{w}/{name}" for w in where)
        if where:
            return f"{len(where)} namespaces have a Service {name!r}; name one: svc/NAMESPACE/{name}"
        names = ", ".join("svc/" + self.service_ref_from(s, namespace) for s in self.services) or "none"
        return f"lab {self.name} has no Service {name!r} (Services: {names})"

    def endpoints(self, svc: Service, port: ServicePort) -> list[tuple[PodInfo, int]]:
        """Pods backing one Service port: every pod of the Service's namespace whose labels match the selector,
        but for a terminal one (``serving``).

        Like the EndpointSlice controller: a numeric targetPort makes every such pod an endpoint, whether or
        not it declares the port (model/endpoints.py says when one does not); a named one only the pods that
        declare a port of that name and protocol, each at its own number (``ServicePort.target``); a Service
        with an empty selector has none. Sorted as kube-proxy sorts a Service port's endpoints (endpointslicecache.go's
        byEndpoint): by their "IP:port" strings, so 10.244.0.18:8080 comes before 10.244.0.2:8080, in the
        KUBE-SVC chain's rules and in numgen's elements alike.
        """
        # Service ports of one namespace with the same selector, targetPort and protocol have the same endpoints:
        # found once (2,000 NodePort Services over the same 4,000 pods did not validate in 60 s)
        key = (svc.namespace, frozenset(svc.selector.items()),
               port.port if port.target_port is None else port.target_port, port.protocol)
        if key not in self._endpoints:
            out = [(p, target) for p in self.serving(svc) if (target := port.target(p.spec)) is not None]
            text = self._ip_text  # endpoint_order's key, each pod's address written once, not once per Service
            self._endpoints[key] = sorted(out, key=lambda e: f"{text[e[0].name]}:{e[1]}")
        return list(self._endpoints[key])

    @cached_property
    def _endpoints(self) -> dict[tuple, list[tuple[PodInfo, int]]]:
        return {}

    @cached_property
    def _ip_text(self) -> dict[str, str]:
        return {p.name: str(p.ip) for p in self.pods}

    def serving(self, svc: Service) -> list[PodInfo]:
        """The pods a Service selects that may be its endpoints: those of its namespace its selector matches,
        but for terminal ones (``terminal``: their containers exited for good), which the EndpointSlice
        controller leaves out."""
        return [p for p in self.selection.selected(svc) if p.name not in self.terminal]

    @cached_property
    def selection(self) -> SelectorIndex[PodInfo]:
        """The lab's pods filed by label: which ones each Service selects (of its own namespace: ``selected``)."""
        return SelectorIndex(self.pods, lambda p: p.spec.labels, lambda p: p.spec.namespace)

    def netns_names(self) -> list[str]:
        """Every namespace of the lab, underlay first."""
        return [self.underlay_netns] + [n.netns for n in self.nodes] + [p.netns for p in self.pods]

    def netns_of(self, name: str) -> str | None:
        """Namespace of a node or pod by its name (None if the lab has no such thing)."""
        for item in (*self.nodes, *self.pods):
            if item.name == name:
                return item.netns
        for host, netns in self.internet_hosts:
            if host == name:
                return netns
        if name == "underlay":
            return self.underlay_netns
        return None


def resolve(topo: Topology, held: Held | None = None) -> Lab:
    """Resolve a topology that passed :func:`check_topology`.

    A lab with Services also gets cluster DNS (a ``kube-dns`` pod and Service,
    see clusterdns.py) unless the topology declares its own. ``held``: what the
    running lab of that name holds (its pods' and Services' addresses), kept
    (addressing.py); None for a lab that is not up: the same topology, the same addresses.
    """
    written = topo
    topo, addressing, problems = add_cluster_dns(topo, held=held)
    if addressing is None and not problems:
        addressing, problems = allocate(topo, held)
    if problems:  # load_topology reports these with lines; this is a programming error
        raise ValueError(f"unresolvable topology: {problems[0]}")
    lab = Lab(topo, addressing)
    lab.written, lab.held_before = written, held
    return lab
