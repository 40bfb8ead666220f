"""The simulated internet: a gateway router, internet hosts and an L4 load balancer.

::

    <lab>-underlay          <lab>-gateway                     <lab>-<host>
   br0 ── veth<h> ═══ eth0 192.168.122.1/24            eth0 203.0.113.10/24
    │                 (router, ip_forward=1,           default via 203.0.113.1
  nodes' eth0          MASQUERADE underlay -> internet)      ║
  default via         inet0 203.0.113.1/24 (bridge) ── veth<h>
  192.168.122.1                  └──────────────────── veth<h> ═══ eth0  <lab>-lb
                                                       203.0.113.x (one per LoadBalancer)

The gateway is the router of the nodes' LAN, with the internet side as a
bridge of its own (a home router with a built-in switch): internet hosts reach
node IPs through it (a client on the internet reaching a NodePort), and the
nodes' default route points at it. It masquerades connections from the
underlay to the internet, so an internet host sees the gateway's address as the
source of a pod's egress connection (the node has already masqueraded the pod,
see FLANNEL-POSTRTG in services.py). Replies to connections that came from the
internet are not rewritten: NAT rules only see a connection's first packet.

The load balancer is a one-armed L4 balancer: it holds each LoadBalancer
Service's external IP, DNATs a new connection to ``<node IP>:<nodePort>`` of a
random node (``-m statistic``, like kube-proxy spreads over endpoints; with
``externalTrafficPolicy: Local``, of the nodes whose health check answers 200,
as a cloud balancer's health checks settle), and
masquerades it with its own address. Without that SNAT the node would answer
the client directly through the gateway, bypassing the balancer, and the
client would drop a reply from an address it never called.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.model import naming
from netlab.model.addressing import underlay_gateway
from netlab.model.lab import Lab
from netlab.plan.health import health_checks
from netlab.plan.iptables import Ruleset, probability
from netlab.plan.resources import (FORWARDING, Bridge, NatRules, Netns, Resource, Route, Sysctl, Veth,
                                   address_with_brd)
from netlab.plan.services import node_ports, port_proto_hash, service_port_name
from netlab.plan.sysctls import COMMON_SYSCTLS, HOST_SYSCTLS, ROUTER_SYSCTLS

INTERNET_BRIDGE = "inet0"
GATEWAY_SNAT = "NETLAB-SNAT"
LB_SERVICES = "NETLAB-LB-SERVICES"
LB_POSTROUTING = "NETLAB-LB-POSTRTG"
LB_FIREWALL = "NETLAB-LB-FIREWALL"
DEFAULT = IPv4Network("0.0.0.0/0")


def load_balancer_ips(lab: Lab) -> dict[tuple[str, str], IPv4Address]:
    """External IP of every LoadBalancer Service, keyed (namespace, name).

    ``loadBalancerIP`` when given; otherwise the highest free host address of
    internet.cidr, in file order. Allocated (and checked) with the lab's other
    addresses, in netlab.model.addressing, so a topology that validates has one.
    """
    return dict(lab.addressing.lb_ip)


def lb_chain(service_port_name: str, protocol: str) -> str:
    return naming.check_chain("NETLAB-LB-" + port_proto_hash(service_port_name, protocol))


def resources(lab: Lab) -> list[Resource]:
    inet = lab.topo.internet
    if inet is None:
        return []
    names = dict(lab.internet_hosts)  # role/host name -> namespace
    gw_ns = names["gateway"]
    lb_ns = names.get("lb")
    hosts = [(h.name, names[h.name], h.ip) for h in inet.hosts]
    mtu = lab.underlay_mtu
    underlay = lab.topo.network.underlay.cidr
    gw_underlay = underlay_gateway(underlay)
    prefix = inet.cidr.prefixlen
    lbs = load_balancer_ips(lab)
    lab_name = lab.name

    res: list[Resource] = []
    all_ns = [gw_ns] + ([lb_ns] if lb_ns else []) + [ns for _, ns, _ in hosts]
    res += [Netns(netns=ns) for ns in all_ns]
    for ns in all_ns:
        res += [Sysctl(netns=ns, name=k, value=v) for k, v in COMMON_SYSCTLS]
    for ns in [gw_ns] + ([lb_ns] if lb_ns else []):
        res += [Sysctl(netns=ns, name=k, value=v) for k, v in ROUTER_SYSCTLS]
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
    for who, ns in ([("lb", lb_ns)] if lb_ns else []) + [(n, ns) for n, ns, _ in hosts]:
        res.append(Veth(netns=gw_ns, name=naming.veth_name(lab_name, "inet/" + who), mtu=mtu,
                        mac=naming.mac_from_hash(lab_name, "inet-port", who),
                        peer_netns=ns, peer_name=naming.NODE_IF,
                        peer_mac=naming.mac_from_hash(lab_name, "eth0", who), master=INTERNET_BRIDGE,
                        port_state=FORWARDING))

    res.append(address_with_brd(gw_ns, naming.NODE_IF, IPv4Interface(f"{gw_underlay}/{underlay.prefixlen}")))
    res.append(address_with_brd(gw_ns, INTERNET_BRIDGE, IPv4Interface(f"{inet.gateway.ip}/{prefix}")))
    for _, ns, ip in hosts:
        res.append(address_with_brd(ns, naming.NODE_IF, IPv4Interface(f"{ip}/{prefix}")))
    if lb_ns:
        for ip in sorted(set(lbs.values())):
            res.append(address_with_brd(lb_ns, naming.NODE_IF, IPv4Interface(f"{ip}/{prefix}")))

    # (Nodes' default route via the gateway's LAN address: plan/build.py, for every lab.)
    for ns in ([lb_ns] if lb_ns else []) + [ns for _, ns, _ in hosts]:
        res.append(Route(netns=ns, dst=DEFAULT, gateway=inet.gateway.ip, dev=naming.NODE_IF))

    res += external_ip_routes(lab, gw_ns)
    res.append(gateway_nat(lab, gw_ns))
    if lb_ns:
        res.append(lb_nat(lab, lb_ns, lbs))
        if any(svc.load_balancer_source_ranges for svc in lab.services if svc.type == "LoadBalancer"):
            res.append(lb_firewall(lab, lb_ns))
    return res


def external_ip_routes(lab: Lab, gw_ns: str) -> list[Resource]:
    """A Service's externalIPs are the cluster admin's to route (Kubernetes allocates nothing): the internet
    gateway sends each one to the first node, whose kube-proxy DNATs it to an endpoint."""
    first = lab.nodes[0]
    ips = sorted({ip for svc in lab.services if not svc.headless for ip in svc.external_ips})
    return [Route(netns=gw_ns, dst=IPv4Network(f"{ip}/32"), gateway=first.ip, dev=naming.NODE_IF) for ip in ips]


def lb_firewall(lab: Lab, netns: str) -> NatRules:
    """loadBalancerSourceRanges at the lab's balancer, as a cloud's balancer (its security group) applies them:
    a connection it DNATed to a nodePort of such a Service goes on only from a source in the ranges."""
    nps = node_ports(lab)
    rs = Ruleset("filter")
    rs.chain(LB_FIREWALL)
    rs.jump("FORWARD", f"-j {LB_FIREWALL}")
    for svc in lab.services:
        if svc.type != "LoadBalancer" or not svc.load_balancer_source_ranges:
            continue
        for port in svc.ports:
            proto, spn = port.protocol.lower(), service_port_name(svc, port)
            chain = rs.chain(naming.check_chain("NETLAB-LBFW-" + port_proto_hash(spn, proto)))
            node_port = nps[(svc.namespace, svc.name, port.port, port.protocol)]
            ranges = [str(r) for r in svc.load_balancer_source_ranges]
            rs.note(f"{spn}: loadBalancerSourceRanges {', '.join(ranges)}; other clients are dropped here")
            rs.add(LB_FIREWALL, f"-p {proto} -m {proto} --dport {node_port} -j {chain}")
            for r in ranges:
                rs.add(chain, f"-s {r} -j RETURN")
            rs.add(chain, "-j DROP")
    return rs.resource(netns, f"netlab {lab.name}: L4 load balancer's source ranges")


def gateway_nat(lab: Lab, netns: str) -> NatRules:
    underlay = lab.topo.network.underlay.cidr
    rs = Ruleset("nat")
    rs.chain(GATEWAY_SNAT)
    rs.jump("POSTROUTING", f"-j {GATEWAY_SNAT}")
    rs.note("Connections from the cluster's LAN to the internet leave with the gateway's address.")
    rs.add(GATEWAY_SNAT, f"-s {underlay} -o {INTERNET_BRIDGE} -j MASQUERADE")
    return rs.resource(netns, f"netlab {lab.name}: internet gateway")


def lb_nat(lab: Lab, netns: str, lbs: dict[tuple[str, str], IPv4Address]) -> NatRules:
    """DNAT each LoadBalancer IP:port to <node>:<nodePort>, spread at random over the nodes."""
    nps = node_ports(lab)
    rs = Ruleset("nat")
    rs.chain(LB_SERVICES)
    rs.chain(LB_POSTROUTING)
    rs.jump("PREROUTING", f"-j {LB_SERVICES}")
    rs.jump("OUTPUT", f"-j {LB_SERVICES}")
    rs.jump("POSTROUTING", f"-j {LB_POSTROUTING}")
    rs.note("One-armed balancer: connections it DNATed leave with its own address, so replies come back here.")
    rs.add(LB_POSTROUTING, "-m conntrack --ctstate DNAT -j MASQUERADE")
    # A Service with externalTrafficPolicy Local: a cloud balancer asks each node's kube-proxy on the Service's
    # healthCheckNodePort and sends only to the nodes that answer 200, those with an endpoint of their own
    # (plan/health.py); with none, it fails open, to every node. This balancer asks nothing: its rules are
    # where such health checks settle, made anew at each `up`.
    healthy = {(c.namespace, c.name, c.node) for c in health_checks(lab) if c.status == 200}
    for svc in lab.services:
        if svc.type != "LoadBalancer":
            continue
        ip = lbs[(svc.namespace, svc.name)]
        nodes = [n for n in lab.nodes if (svc.namespace, svc.name, n.name) in healthy] or lab.nodes
        for port in svc.ports:
            proto = port.protocol.lower()
            spn = service_port_name(svc, port)
            node_port = nps[(svc.namespace, svc.name, port.port, port.protocol)]
            chain = rs.chain(lb_chain(spn, proto))
            rs.note(f"{spn} {ip}:{port.port}/{proto} -> node port {node_port} on "
                    + ", ".join(str(n.ip) for n in nodes)
                    + (" (the nodes whose health check answers 200)" if len(nodes) < len(lab.nodes) else ""))
            rs.add(LB_SERVICES, f"-d {ip}/32 -p {proto} -m {proto} --dport {port.port} -j {chain}")
            for i, node in enumerate(nodes):
                left = len(nodes) - i
                stat = f" -m statistic --mode random --probability {probability(left)}" if left > 1 else ""
                rs.add(chain, f"-p {proto} -m {proto}{stat} -j DNAT --to-destination {node.ip}:{node_port}")
    return rs.resource(netns, f"netlab {lab.name}: L4 load balancer")
