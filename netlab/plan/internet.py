"""The simulated internet: a gateway router, internet hosts, and the routes that balance LoadBalancer IPs.

::

    <lab>-underlay          <lab>-gateway                     <lab>-<host>
   br0 ── veth<h> ═══ eth0 192.168.122.1/24            eth0 203.0.113.10/24
    │                 (router, ip_forward=1,           default via 203.0.113.1
  nodes' eth0          MASQUERADE underlay -> internet)      ║
  default via         inet0 203.0.113.1/24 (bridge) ── veth<h>
  192.168.122.1       203.0.113.x/32 (one per LoadBalancer IP)
                        nexthop via <node> dev eth0 nexthop via <node> dev eth0 ...

The gateway is the router of the nodes' LAN, with the internet side as a
bridge of its own (a home router with a built-in switch): internet hosts reach
node IPs through it (a client on the internet reaching a NodePort), and the
nodes' default route points at it. It masquerades connections from the
underlay to the internet, so an internet host sees the gateway's address as the
source of a pod's egress connection (the node has already masqueraded the pod,
see FLANNEL-POSTRTG in services.py). Replies to connections that came from the
internet are not rewritten: NAT rules only see a connection's first packet.

The load balancer is a passthrough one, as MetalLB's in BGP mode: the gateway
routes each LoadBalancer IP to the nodes, an equal-cost multipath route via
their underlay addresses (as the routes MetalLB's speakers announce to the
cluster's router), and answers ARP for it on the internet's side (proxy_arp:
the IPs are in the hosts' own subnet). No NAT: the packet reaches a node still
addressed to the LoadBalancer IP, where kube-proxy's ``"<svc> loadbalancer
IP"`` rule DNATs it (plan/services.py); with ``externalTrafficPolicy: Local``
the endpoint sees the internet host's own address, with Cluster the node's
masquerade. The gateway hashes each packet's addresses, protocol and ports
to pick the hop (fib_multipath_hash_policy 3, custom, with those five fields:
policy 1 would take the hash the sending socket put on the packet, which a
veth keeps and TCP changes on a retransmission timeout, moving the connection
to another node), so a connection stays on its node. With
``externalTrafficPolicy: Local`` the hops are the nodes whose health check
answers 200 (as a cloud balancer's checks, or MetalLB announcing only from
nodes with a ready endpoint, settle), or every node when none does (fail
open). loadBalancerSourceRanges are kube-proxy's to enforce, on the node
(KUBE-FW-<hash> and KUBE-PROXY-FIREWALL; nftables mode: firewall-ips), which
sees the client's own address.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.model import naming
from netlab.model.addressing import underlay_gateway
from netlab.model.lab import Lab, NodeInfo
from netlab.plan.health import health_checks
from netlab.plan.iptables import Ruleset
from netlab.plan.resources import FORWARDING, Bridge, NatRules, Netns, Resource, Route, Sysctl, Veth, address_with_brd
from netlab.plan.sysctls import COMMON_SYSCTLS, GATEWAY_SYSCTLS, HOST_SYSCTLS, ROUTER_SYSCTLS

INTERNET_BRIDGE = "inet0"
GATEWAY_SNAT = "NETLAB-SNAT"
DEFAULT = IPv4Network("0.0.0.0/0")


def load_balancer_ips(lab: Lab) -> dict[tuple[str, str], IPv4Address]:
    """External IP of every LoadBalancer Service, keyed (namespace, name).

    ``loadBalancerIP`` when given; otherwise the highest free host address of
    internet.cidr, in file order. Allocated (and checked) with the lab's other
    addresses, in netlab.model.addressing, so a topology that validates has one.
    """
    return dict(lab.addressing.lb_ip)


def resources(lab: Lab) -> list[Resource]:
    inet = lab.topo.internet
    if inet is None:
        return []
    names = dict(lab.internet_hosts)  # role/host name -> namespace
    gw_ns = names["gateway"]
    hosts = [(h.name, names[h.name], h.ip) for h in inet.hosts]
    mtu = lab.underlay_mtu
    underlay = lab.topo.network.underlay.cidr
    gw_underlay = underlay_gateway(underlay)
    prefix = inet.cidr.prefixlen
    lab_name = lab.name

    res: list[Resource] = []
    all_ns = [gw_ns] + [ns for _, ns, _ in hosts]
    res += [Netns(netns=ns) for ns in all_ns]
    for ns in all_ns:
        res += [Sysctl(netns=ns, name=k, value=v) for k, v in COMMON_SYSCTLS]
    res += [Sysctl(netns=gw_ns, name=k, value=v) for k, v in ROUTER_SYSCTLS]
    for _, ns, _ in hosts:
        res += [Sysctl(netns=ns, name=k, value=v) for k, v in HOST_SYSCTLS]

    # The internet's switch lives in the gateway; the gateway's LAN port is a
    # port of the underlay's br0 like every node's eth0.
    res.append(Bridge(netns=gw_ns, name=INTERNET_BRIDGE, mtu=mtu, mac=naming.mac_from_hash(lab_name, "inet-br")))
    res.append(Veth(netns=lab.underlay_netns, name=naming.veth_name(lab_name, "gateway"), mtu=mtu,
                    mac=naming.mac_from_hash(lab_name, "underlay-port", "gateway"),
                    peer_netns=gw_ns, peer_name=naming.NODE_IF,
                    peer_mac=naming.mac_from_hash(lab_name, "eth0", "gateway"), master=naming.UNDERLAY_BRIDGE,
                    port_state=FORWARDING))
    for who, ns, _ in hosts:
        res.append(Veth(netns=gw_ns, name=naming.veth_name(lab_name, "inet/" + who), mtu=mtu,
                        mac=naming.mac_from_hash(lab_name, "inet-port", who),
                        peer_netns=ns, peer_name=naming.NODE_IF,
                        peer_mac=naming.mac_from_hash(lab_name, "eth0", who), master=INTERNET_BRIDGE,
                        port_state=FORWARDING))

    res.append(address_with_brd(gw_ns, naming.NODE_IF, IPv4Interface(f"{gw_underlay}/{underlay.prefixlen}")))
    res.append(address_with_brd(gw_ns, INTERNET_BRIDGE, IPv4Interface(f"{inet.gateway.ip}/{prefix}")))
    for _, ns, ip in hosts:
        res.append(address_with_brd(ns, naming.NODE_IF, IPv4Interface(f"{ip}/{prefix}")))

    # (Nodes' default route via the gateway's LAN address: plan/build.py, for every lab.)
    for _, ns, _ in hosts:
        res.append(Route(netns=ns, dst=DEFAULT, gateway=inet.gateway.ip, dev=naming.NODE_IF))

    res += external_ip_routes(lab, gw_ns)
    res += load_balancer_routes(lab, gw_ns)
    res.append(gateway_nat(lab, gw_ns))
    return res


def balanced_nodes(lab: Lab) -> dict[IPv4Address, list[NodeInfo]]:
    """The nodes the gateway routes each LoadBalancer IP to, in the lab's node order.

    A Service with externalTrafficPolicy Local: a cloud balancer asks each node's kube-proxy on the Service's
    healthCheckNodePort and sends only to the nodes that answer 200, those with an endpoint of their own
    (plan/health.py; MetalLB announces such an IP only from nodes with a ready endpoint); with none, it fails
    open, to every node. The routes are where such checks settle, made anew at each `up`. No two Services share
    an IP (model/addressing.py refuses a loadBalancerIP taken), but should they, they would share its route.
    """
    healthy = {(c.namespace, c.name, c.node) for c in health_checks(lab) if c.status == 200}
    lbs = load_balancer_ips(lab)
    wanted: dict[IPv4Address, set[str]] = {}
    for svc in lab.services:
        if svc.type != "LoadBalancer":
            continue
        nodes = [n.name for n in lab.nodes if (svc.namespace, svc.name, n.name) in healthy] or \
            [n.name for n in lab.nodes]
        wanted.setdefault(lbs[(svc.namespace, svc.name)], set()).update(nodes)
    return {ip: [n for n in lab.nodes if n.name in names] for ip, names in sorted(wanted.items())}


def load_balancer_routes(lab: Lab, gw_ns: str) -> list[Resource]:
    """Each LoadBalancer IP routed to its nodes' underlay addresses (one node: a plain route, as the kernel keeps
    a multipath route of one hop); the gateway hashing each packet's five-tuple to pick the hop, and answering
    ARP for the IPs on the internet's side."""
    routes: list[Resource] = []
    for ip, nodes in balanced_nodes(lab).items():
        dst = IPv4Network(f"{ip}/32")
        if len(nodes) == 1:
            routes.append(Route(netns=gw_ns, dst=dst, gateway=nodes[0].ip, dev=naming.NODE_IF))
        else:
            routes.append(Route(netns=gw_ns, dst=dst, gateway=None, dev=naming.NODE_IF,
                                nexthops=tuple(n.ip for n in nodes)))
    if not routes:
        return []
    return [Sysctl(netns=gw_ns, name=k, value=v) for k, v in GATEWAY_SYSCTLS] + [
        Sysctl(netns=gw_ns, name=f"net.ipv4.conf.{INTERNET_BRIDGE}.proxy_arp", value="1")] + routes


def external_ip_routes(lab: Lab, gw_ns: str) -> list[Resource]:
    """A Service's externalIPs are the cluster admin's to route (Kubernetes allocates nothing): the internet
    gateway sends each one to the first node, whose kube-proxy DNATs it to an endpoint."""
    first = lab.nodes[0]
    ips = sorted({ip for svc in lab.services if not svc.headless for ip in svc.external_ips})
    return [Route(netns=gw_ns, dst=IPv4Network(f"{ip}/32"), gateway=first.ip, dev=naming.NODE_IF) for ip in ips]


def gateway_nat(lab: Lab, netns: str) -> NatRules:
    underlay = lab.topo.network.underlay.cidr
    rs = Ruleset("nat")
    rs.chain(GATEWAY_SNAT)
    rs.jump("POSTROUTING", f"-j {GATEWAY_SNAT}")
    rs.note("Connections from the cluster's LAN to the internet leave with the gateway's address.")
    rs.add(GATEWAY_SNAT, f"-s {underlay} -o {INTERNET_BRIDGE} -j MASQUERADE")
    return rs.resource(netns, f"netlab {lab.name}: internet gateway")
