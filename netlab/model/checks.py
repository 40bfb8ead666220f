"""Cross-field rules of a topology: what one field alone cannot say.

References (a pod's node, an expectation's ends), duplicates (names, ports,
nodePorts), overlapping or special address ranges, kernel names that would
not fit or would collide, and every address handed out (:mod:`addressing`,
then the cluster DNS add-on, which is part of the lab). Each rule returns
(location, message) pairs instead of raising, so a user sees every problem
of a file at once, each on its own line.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.model import clusterdns, naming, nodeports
from netlab.model.bandwidth import check_bandwidth
from netlab.model.hostports import check_host_ports
from netlab.model.impair import POD_INTERFACES, node_interfaces
from netlab.model.addressing import allocate
from netlab.model.location import Loc, format_path
from netlab.model.fields import NETNS_NAME_MAX, RESERVED_NAMES, VNI_RANGE
from netlab.model.topology import ECHO_DEFAULT_PORT, CniConflist, Service, Topology
from netlab.model.values import SPECIAL_RANGES

LINK_LOCAL_MULTICAST = IPv4Network("224.0.0.0/24")  # the API server refuses it with link-local unicast


def check_topology(topo: Topology) -> list[tuple[Loc, str]]:
    """Cross-field rules; returns (location, message) pairs, empty when valid. Of a user's conflist's lab, the
    interfaces its nodes' impairments name are judged where the conflist is read (model/load.resolve_cni_paths:
    :func:`check_node_interfaces` with its bridge plugin's bridge)."""
    out: list[tuple[Loc, str]] = []
    names = _check_names(topo)
    cidrs = _check_cidrs(topo)
    out += names + cidrs
    out += _check_services(topo)
    out += _check_expectations(topo)
    out += _check_kernel_names(topo)
    out += _check_impairments(topo)
    out += check_host_ports(topo) + check_bandwidth(topo)
    if not names and not cidrs:  # allocation needs sane names and CIDRs
        addressing, problems = allocate(topo)
        out += problems
        if not out:  # the cluster DNS add-on must fit too: it is part of the lab
            out += clusterdns.problems(topo, addressing)
    return out


def _check_names(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    seen: dict[str, Loc] = {}
    things: list[tuple[Loc, str]] = [(("nodes", i, "name"), n.name) for i, n in enumerate(topo.nodes)]
    things += [(("pods", i, "name"), p.name) for i, p in enumerate(topo.pods)]
    if topo.internet:
        things += [(("internet", "hosts", i, "name"), h.name) for i, h in enumerate(topo.internet.hosts)]
    for loc, name in things:
        if name in RESERVED_NAMES:
            out.append((loc, f"{name!r} is reserved for the lab's own {name} namespace; pick another name"))
        elif name in seen:
            out.append((loc, f"{name!r} is already used by {_fmt(seen[name])} "
                             "(nodes, pods and internet hosts share namespace names); rename one"))
        else:
            seen[name] = loc
        netns = f"{topo.name}-{name}"
        if len(netns) > NETNS_NAME_MAX:
            out.append((loc, f"namespace name {netns[:30]!r}... would be {len(netns)} characters; "
                             f"lab name + name must stay within {NETNS_NAME_MAX - 1}, shorten one"))
    node_names = {n.name for n in topo.nodes}
    for i, pod in enumerate(topo.pods):
        if pod.node not in node_names:
            known = ", ".join(sorted(node_names)[:10]) + (", ..." if len(node_names) > 10 else "")
            out.append((("pods", i, "node"), f"unknown node {pod.node!r}; use one of the nodes: {known}"))
        cnames: set[str] = set()
        twice: set[int] = set()
        for j, c in enumerate(pod.containers):
            if c.name in cnames:
                twice.add(j)
                out.append((("pods", i, "containers", j, "name"),
                            f"duplicate container name {c.name!r} in pod {pod.name!r}; rename one"))
            cnames.add(c.name)
            if c.command and not c.command[0].strip():  # what up would start: "command not found"
                out.append((("pods", i, "containers", j, "command", 0),
                            "the program to run is empty; give its name or path"))
        ports: dict[tuple[int, str], str] = {}
        port_names: dict[str, str] = {}  # a port name is the pod's, whatever its container (the API server's rule)
        for j, c in enumerate(pod.containers):  # containers share the pod's network namespace
            if j in twice:  # a second container of a name: said above; its ports are part of that mistake
                continue
            if c.command is None and not c.ports:  # netlab's echo server on its default port
                key = (ECHO_DEFAULT_PORT, "TCP")
                if key in ports:
                    out.append((("pods", i, "containers", j),
                                f"container {c.name!r} runs netlab's echo server on its default port "
                                f"{ECHO_DEFAULT_PORT}/TCP, which container {ports[key]!r} of this pod already "
                                "takes (they share one network namespace); give one of them ports: "
                                "[{containerPort: N}]"))
                else:
                    ports[key] = c.name
            for k, p in enumerate(c.ports):
                key = (p.container_port, p.protocol)
                if key in ports:
                    out.append((("pods", i, "containers", j, "ports", k),
                                f"port {p.container_port}/{p.protocol} is already declared by container "
                                f"{ports[key]!r} of this pod (they share one network namespace); remove one"))
                else:
                    ports[key] = c.name
                if p.name is not None and p.name in port_names:
                    out.append((("pods", i, "containers", j, "ports", k, "name"),
                                f"port name {p.name!r} is already given to a port of container "
                                f"{port_names[p.name]!r} of this pod; a Service or policy naming it would not know "
                                "which: rename one"))
                elif p.name is not None:
                    port_names[p.name] = c.name
    svc_names: dict[tuple[str, str], Loc] = {}
    for i, svc in enumerate(topo.services):
        # A Service is namespace/name, as in Kubernetes: web in x and web in y are two Services.
        key = (svc.namespace, svc.name)
        if key in svc_names:
            out.append((("services", i, "name"), f"service {svc.namespace}/{svc.name} is already defined by "
                                                 f"{_fmt(svc_names[key])}; rename one"))
        else:
            svc_names[key] = ("services", i)
    return out


def _check_kernel_names(topo: Topology) -> list[tuple[Loc, str]]:
    """Generated kernel names must fit and must not collide (hashes are short)."""
    out: list[tuple[Loc, str]] = []
    low, high, what = VNI_RANGE  # the VXLAN device's name, flannel.<VNI>; in every mode, as the field's own range
    if topo.network.vxlan.vni > high:
        out.append((("network", "vxlan", "vni"), f"{topo.network.vxlan.vni} is too large (limit {high}); {what} "
                                                 f"must be {low}-{high}"))
    veths: dict[str, Loc] = {}
    owners = [(("nodes", i, "name"), "node/" + n.name) for i, n in enumerate(topo.nodes)]
    owners += [(("pods", i, "name"), "pod/" + p.name) for i, p in enumerate(topo.pods)]
    named: set[str] = set()
    for loc, owner in owners:
        if owner in named:  # a name given twice has its veth name twice: _check_names says the name is taken
            continue
        named.add(owner)
        veth = naming.veth_name(topo.name, owner)
        if veth in veths:
            out.append((loc, f"its veth name {veth} collides with the one of {_fmt(veths[veth])} "
                             "(an 8-digit hash); rename one of them"))
        veths.setdefault(veth, loc)
    return out


def _check_cidrs(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    nets: list[tuple[tuple[str, ...], str, IPv4Network]] = [
        (("cluster", "podCIDR"), "cluster.podCIDR", topo.cluster.pod_cidr),
        (("cluster", "serviceCIDR"), "cluster.serviceCIDR", topo.cluster.service_cidr),
        (("network", "underlay", "cidr"), "network.underlay.cidr", topo.network.underlay.cidr),
    ]
    if topo.internet:
        nets.append((("internet", "cidr"), "internet.cidr", topo.internet.cidr))
    for i, (loc_a, name_a, a) in enumerate(nets):
        for loc_b, name_b, b in nets[:i]:
            if not a.overlaps(b):
                continue
            ends = [(loc_a, name_a, a), (loc_b, name_b, b)]  # said at the later range, unless only the earlier
            if not topo.written(*loc_a) and topo.written(*loc_b):  # one was written: a default has no line
                ends.reverse()
            (at, _, net), (other_loc, other, other_net) = ends
            default = not topo.written(*other_loc)
            out.append((at, f"{net} overlaps {'the default ' if default else ''}{other} {other_net}; the pod, "
                            "service, underlay and internet ranges must be disjoint"
                            + (f": pick another or set {other}" if default else "")))
    for loc, _, net in nets:
        special = next((s for s in SPECIAL_RANGES if net.overlaps(s[0])), None)
        if net.prefixlen == 0 or special is None and (net.is_loopback or net.is_multicast or net.is_link_local
                                                      or net.is_unspecified or net.is_reserved):
            out.append((loc, f"{net} is a loopback, link-local, multicast, reserved or unspecified range; "
                             "use a private range such as 10.0.0.0/8 or 192.168.0.0/16"))
        elif special is not None:
            out.append((loc, f"{net} overlaps {special[0]} ({special[1]}), where the kernel refuses or treats "
                             "addresses specially; use a private range such as 10.0.0.0/8 or 192.168.0.0/16"))
    if topo.cluster.pod_cidr.prefixlen > topo.cluster.node_mask:
        out.append((("cluster", "nodeMask"), f"nodeMask /{topo.cluster.node_mask} is larger than podCIDR "
                                             f"{topo.cluster.pod_cidr}; use a nodeMask of at least "
                                             f"/{topo.cluster.pod_cidr.prefixlen} or a wider podCIDR"))
    if topo.internet and topo.internet.cidr.prefixlen > 30:
        out.append((("internet", "cidr"), f"{topo.internet.cidr} is too small; the internet needs at least a /30 "
                                          "(its gateway and a host)"))
    if topo.network.underlay.cidr.prefixlen > 29:
        out.append((("network", "underlay", "cidr"), f"{topo.network.underlay.cidr} is too small; "
                                                     "the underlay needs at least a /29"))
    return out


def _check_services(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for i, svc in enumerate(topo.services):
        seen_ports: set[tuple[int, str]] = set()
        seen_names: set[str] = set()
        for j, port in enumerate(svc.ports):
            loc = ("services", i, "ports", j)
            if (port.port, port.protocol) in seen_ports:
                out.append((loc + ("port",), f"port {port.port}/{port.protocol} is listed twice in this service; "
                                             "remove one"))
            seen_ports.add((port.port, port.protocol))
            if port.name is not None:
                if port.name in seen_names:
                    out.append((loc + ("name",), f"port name {port.name!r} is used twice in this service; rename one"))
                seen_names.add(port.name)
            if port.node_port is not None and svc.type == "ClusterIP":
                out.append((loc + ("nodePort",), "nodePort needs type NodePort or LoadBalancer; "
                                                 "set the service's type or remove nodePort"))
        if not svc.ports and not svc.headless:  # the API server's rule: only a headless Service may have none
            out.append((("services", i, "ports"), "needs at least 1 entry; add ports: (only a headless Service, "
                                                  "clusterIP: None, may have none: its DNS name answers its "
                                                  "endpoints' pod IPs)"))
        unnamed = [j for j, port in enumerate(svc.ports) if port.name is None]
        if unnamed and len(svc.ports) > 1:
            # The API server's rule (spec.ports[i].name: Required value): kube-proxy tells a Service's ports apart
            # by their names (its chains are named after <namespace>/<service>:<port name>), and so do DNS SRV
            # records. Said once, at the first port without one.
            out.append((("services", i, "ports", unnamed[0], "name"),
                        f"this service has {len(svc.ports)} ports, so each needs a name, as in Kubernetes "
                        f"(kube-proxy and DNS tell them apart by it); {len(unnamed)} of them "
                        f"{'has' if len(unnamed) == 1 else 'have'} none: add name: to "
                        f"{'it' if len(unnamed) == 1 else 'each'}"))
        if svc.headless and clusterdns.is_dns_service(svc):
            out.append((("services", i, "clusterIP"), "the cluster DNS Service cannot be headless: every pod's "
                                                      "resolv.conf names its ClusterIP; remove clusterIP: None"))
        elif svc.headless and svc.type != "ClusterIP":  # the API server's rule: a node port needs a ClusterIP
            out.append((("services", i, "clusterIP"), f"clusterIP None (headless) is for type ClusterIP only, as "
                                                      f"in Kubernetes: a {svc.type} Service needs a ClusterIP for "
                                                      "kube-proxy to DNAT to; remove clusterIP or the type"))
        if svc.type == "LoadBalancer" and topo.internet is None:
            out.append((("services", i, "type"), "type LoadBalancer needs an internet: section "
                                                 "(the load balancer lives there); add one"))
        if svc.external_traffic_policy == "Local" and not svc.externally_accessible:  # the API server's validation
            out.append((("services", i, "externalTrafficPolicy"), "externalTrafficPolicy Local needs type NodePort "
                                                                  "or LoadBalancer or externalIPs (a ClusterIP "
                                                                  "Service without them takes no outside traffic); "
                                                                  "set the type or remove it"))
        out += _external_ip_problems(topo, i, svc)
        if svc.session_affinity_config is not None and svc.session_affinity != "ClientIP":  # the API server's rule
            out.append((("services", i, "sessionAffinityConfig"), "must not be set when sessionAffinity is None, "
                                                                  "as in Kubernetes; set sessionAffinity: ClientIP "
                                                                  "or remove sessionAffinityConfig"))
        if svc.load_balancer_source_ranges and svc.type != "LoadBalancer":  # the API server's rule
            out.append((("services", i, "loadBalancerSourceRanges"), "may only be used when type is LoadBalancer, "
                                                                     "as in Kubernetes; set the type or remove it"))
        if svc.load_balancer_ip is not None and svc.type != "LoadBalancer":
            out.append((("services", i, "loadBalancerIP"), "loadBalancerIP needs type LoadBalancer; "
                                                           "set the type or remove loadBalancerIP"))
    return out + nodeports.problems(topo)


def _external_ip_problems(topo: Topology, i: int, svc: Service) -> list[tuple[Loc, str]]:
    """externalIPs: the API server's ValidateNonSpecialIP, then netlab's own limit (the lab routes each address
    to a node, so it cannot be one of the lab's own networks)."""
    out: list[tuple[Loc, str]] = []
    inet = topo.internet
    own = [("cluster.podCIDR", topo.cluster.pod_cidr), ("cluster.serviceCIDR", topo.cluster.service_cidr),
           ("network.underlay.cidr", topo.network.underlay.cidr)] + ([("internet.cidr", inet.cidr)] if inet else [])
    for j, ip in enumerate(svc.external_ips):
        loc = ("services", i, "externalIPs", j)
        special = ("the unspecified address" if ip.is_unspecified else "a loopback address" if ip.is_loopback
                   else "a link-local address" if ip.is_link_local or ip in LINK_LOCAL_MULTICAST else None)
        if special:
            out.append((loc, f"{ip} is {special}, which the API server refuses for externalIPs; "
                             "give an address routed to the cluster"))
            continue
        inside = next((name for name, net in own if ip in net), None)
        if inside:
            out.append((loc, f"{ip} is in {inside}, a network of the lab itself: netlab routes an externalIP from "
                             "its internet to a node; give an address outside the lab's networks"))
    return out


def _check_expectations(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    names = {n.name for n in topo.nodes} | {p.name for p in topo.pods}
    if topo.internet:
        names |= {h.name for h in topo.internet.hosts}
    for i, exp in enumerate(topo.expect):
        for field, value in (("from", exp.source), ("to", exp.to)):
            if value not in names:
                out.append((("expect", i, field), f"unknown pod, node or internet host {value!r}; "
                                                  "use a name defined in this topology"))
        if exp.proto == "icmp" and exp.port is not None:
            out.append((("expect", i, "port"), "icmp has no port; remove port: or set proto: tcp or udp"))
        if exp.proto != "icmp" and exp.port is None:
            out.append((("expect", i, "port"), f"{exp.proto} needs a port; add port:"))
    first: dict[tuple, int] = {}  # one flow, one expectation: a later one that says otherwise was the last word
    for i, exp in enumerate(topo.expect):
        j = first.setdefault((exp.source, exp.to, exp.proto, exp.port), i)
        if topo.expect[j].reach != exp.reach:
            out.append((("expect", i, "reach"), f"contradicts expect[{j}] (the same flow, {exp.source} to {exp.to} "
                                                f"{exp.proto}{f'/{exp.port}' if exp.port else ''}, reach: "
                                                f"{str(topo.expect[j].reach).lower()}); keep one"))
    return out


def _check_impairments(topo: Topology) -> list[tuple[Loc, str]]:
    """Impairments name an interface the lab makes there, and say something that stands on its own."""
    out: list[tuple[Loc, str]] = []
    if not isinstance(topo.network.cni, CniConflist):  # else the bridge is the conflist's: judged where it is read
        out += check_node_interfaces(topo, naming.BRIDGE)
    owners = [(("nodes", i), n.impair) for i, n in enumerate(topo.nodes)]
    owners += [(("pods", i), p.impair) for i, p in enumerate(topo.pods)]
    for where, impair in owners:
        for iface, imp in impair.items():
            loc: Loc = (*where, "impair", iface)
            if where[0] == "pods" and iface not in POD_INTERFACES:
                out.append((loc, f"no interface {iface!r} here to impair; use one of {', '.join(POD_INTERFACES)}"))
            if not any(imp.spec().values()):
                out.append((loc, "an impairment needs at least one of rate, delay, jitter, loss"))
            if imp.jitter and not imp.delay:
                out.append(((*loc, "jitter"), "jitter varies a delay: add delay: too"))
            out += [((*loc, field), why) for field, why in imp.no_effect()]
    return out


def check_node_interfaces(topo: Topology, bridge: str | None) -> list[tuple[Loc, str]]:
    """Each node's impairment names an interface the lab makes there: eth0, the pods' ``bridge`` (netlab's cni0, or
    the one a user's conflist's bridge plugin names; None: it has none) on a node with a pod, flannel.<VNI>."""
    out: list[tuple[Loc, str]] = []
    allowed = node_interfaces(topo.network.mode, topo.network.vxlan.vni, bridge)
    podless = {n.name for n in topo.nodes} - {p.node for p in topo.pods}  # no bridge (but a running lab's: up)
    for i, node in enumerate(topo.nodes):
        for iface in node.impair:
            loc: Loc = ("nodes", i, "impair", iface)
            if iface not in allowed:
                out.append((loc, f"no interface {iface!r} here to impair; use one of {', '.join(allowed)}"))
            elif iface == bridge and node.name in podless:
                out.append((loc, f"node {node.name} has no pod, so no {bridge} to impair (the CNI bridge plugin "
                                 "makes it at the node's first pod; after its last, it has no port)"))
    return out


def _fmt(loc: Loc) -> str:
    return format_path(loc)
