"""Services the way kube-proxy (iptables mode) and Flannel program every node.

Per node, table ``nat``::

    PREROUTING ─┐                       (packets from pods and from the underlay)
    OUTPUT ─────┴─► KUBE-SERVICES
                     ├─ -d <ClusterIP>/32 -p tcp -m tcp --dport 80 ─► KUBE-SVC-<hash>
                     ├─ -d <LB IP>/32 ... (type LoadBalancer) ─────► KUBE-EXT-<hash>
                     └─ (last) -m addrtype --dst-type LOCAL ───────► KUBE-NODEPORTS
                                        -p tcp -m tcp --dport 30080 ► KUBE-EXT-<hash>
    KUBE-EXT-<hash>:  -j KUBE-MARK-MASQ, then -j KUBE-SVC-<hash>
                      externalTrafficPolicy Local (this node's rules differ from the next one's):
                      -s <podCIDR> -j KUBE-SVC-<hash>  (pods: all endpoints, as if out to the balancer and back)
                      -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ, then -j KUBE-SVC-<hash>  (the node)
                      -j KUBE-SVL-<hash>   (the rest: this node's endpoints only, the client's address kept;
                                            absent without one: filter's KUBE-EXTERNAL-SERVICES drops it)
    KUBE-SVC-<hash>:  ! -s <podCIDR> ... -j KUBE-MARK-MASQ (clients outside the pod network)
                      [ClientIP: -m recent --rcheck ... -j KUBE-SEP-x, one per endpoint]
                      -m statistic --mode random --probability 1/n     -j KUBE-SEP-1
                      -m statistic --mode random --probability 1/(n-1) -j KUBE-SEP-2
                      -j KUBE-SEP-n                              (random load balancing)
    KUBE-SEP-<hash>:  -s <endpoint>/32 -j KUBE-MARK-MASQ         (hairpin: a pod reaching itself)
                      -p tcp -m tcp -j DNAT --to-destination <pod IP>:<targetPort>
    POSTROUTING ─► KUBE-POSTROUTING: MASQUERADE what KUBE-MARK-MASQ marked 0x4000
                ─► FLANNEL-POSTRTG:  MASQUERADE pod traffic leaving the pod network (egress)

Table ``filter``: a Service port without endpoints REJECTs at once
(``icmp-port-unreachable``: the client gets "connection refused" instead of
a timeout), in ``KUBE-SERVICES`` (ClusterIP, from FORWARD and OUTPUT) and
``KUBE-EXTERNAL-SERVICES`` (NodePort, from INPUT and FORWARD), as kube-proxy
does. The nat table then has no rule for that port, so nothing is DNATed. A
node without an endpoint of an externalTrafficPolicy Local Service DROPs
outside traffic to its nodePort and load balancer IP there ("has no local
endpoints": the client times out, as the balancer's health check would have
kept it away), and ACCEPTs its healthCheckNodePort in ``KUBE-NODEPORTS``.

Chain names are kube-proxy's: ``KUBE-SVC-`` + the first 16 characters of
base32(sha256("<namespace>/<name>:<port name>" + "tcp")), ``KUBE-SEP-`` the same
over the service port, protocol and ``ip:port`` of the endpoint. The rules are
written in the exact form ``iptables-save`` prints them (``-p tcp -m tcp``,
``/32`` masks, ``--set-xmark``, probabilities with 11 decimals), so what status
reads back compares equal to the plan and any drift is a real difference.
The payload's form (canonical rules, ``#`` notes, jumps from built-in
chains kept out of it) is :mod:`netlab.plan.iptables`'s; the Service ports the
rules are made from (:class:`ServicePortInfo`, :func:`service_ports`) are
:mod:`netlab.plan.service_port_info`'s, and stay importable from here.
"""

from __future__ import annotations

from netlab.model.fields import AFFINITY_TIMEOUT_DEFAULT
from netlab.model.lab import Lab, NodeInfo
from netlab.plan import flannel, policy, portmap_rules
from netlab.plan.iptables import Ruleset, kube_probability
from netlab.plan.kube_names import (ext_chain, fw_chain, port_proto_hash, sep_chain,  # noqa: F401 (re-exported)
                                    service_port_name, svc_chain, svl_chain)
from netlab.plan.resources import Resource, Sysctl
from netlab.plan.service_port_info import ServicePortInfo as ServicePortInfo
from netlab.plan.service_port_info import cluster_ip as cluster_ip
from netlab.plan.service_port_info import endpoint_index as endpoint_index
from netlab.plan.service_port_info import node_ports as node_ports
from netlab.plan.service_port_info import service_ports as service_ports
from netlab.plan.sysctls import BRIDGE_NF_SYSCTL, CONNTRACK_SYSCTLS, ROUTE_LOCALNET_SYSCTL

# kube-proxy's constants. The masquerade mark: bit 14 (--iptables-masquerade-bit),
# written like NewProxier does, fmt.Sprintf("%#08x", 1<<14): Go pads 8 digits after 0x.
MASQ_BIT = 14
MASQ_MARK = f"0x{1 << MASQ_BIT:08x}"
AFFINITY_SECONDS = AFFINITY_TIMEOUT_DEFAULT  # v1.DefaultClientIPServiceAffinitySeconds (3 h), when not set
LARGE_CLUSTER_ENDPOINTS = 1000  # largeClusterEndpointsThreshold

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's chain, which kube-proxy also writes (localhostNodePorts)


# --- the node's tables --------------------------------------------------------

# kube-proxy's jumps from the built-in chains (iptablesJumpChains), in its list order:
# (table, built-in chain, extra matches, comment, target). EnsureRule prepends each one
# that is missing, so on a fresh node each built-in chain holds them in reverse order.
JUMPS = (
    ("filter", "INPUT", "-m conntrack --ctstate NEW", "kubernetes externally-visible service portals",
     KUBE_EXTERNAL_SERVICES),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW", "kubernetes externally-visible service portals",
     KUBE_EXTERNAL_SERVICES),
    ("filter", "INPUT", "", "kubernetes health check service ports", KUBE_NODEPORTS),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW", "kubernetes service portals", KUBE_SERVICES),
    ("filter", "OUTPUT", "-m conntrack --ctstate NEW", "kubernetes service portals", KUBE_SERVICES),
    ("filter", "FORWARD", "", "kubernetes forwarding rules", KUBE_FORWARD),
    ("filter", "INPUT", "-m conntrack --ctstate NEW", "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL),
    ("filter", "OUTPUT", "-m conntrack --ctstate NEW", "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW", "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL),
    ("nat", "OUTPUT", "", "kubernetes service portals", KUBE_SERVICES),
    ("nat", "PREROUTING", "", "kubernetes service portals", KUBE_SERVICES),
    ("nat", "POSTROUTING", "", "kubernetes postrouting rules", KUBE_POSTROUTING),
)


def _jumps(rs: Ruleset) -> None:
    """kube-proxy's jumps into ``rs``'s table, in the order a fresh node ends up with them."""
    for table, builtin, extra, comment, target in reversed(JUMPS):
        if table == rs.table:
            rs.jump(builtin, " ".join(filter(None, (extra, f'-m comment --comment "{comment}"', f"-j {target}"))))


def large_cluster(sps: list[ServicePortInfo]) -> bool:
    """kube-proxy's largeClusterMode: over 1000 endpoints, the per-endpoint comments are left out."""
    return sum(len(sp.endpoints) for sp in sps) > LARGE_CLUSTER_ENDPOINTS


def kube_nat(lab: Lab, sps: list[ServicePortInfo], masq_mark: str = MASQ_MARK,
             random_fully: bool = True, node: str = "") -> Ruleset:
    """kube-proxy's nat table on ``node``, rule for rule as ``syncProxyRules`` writes it.

    The same on every node but for externalTrafficPolicy Local Services, whose
    KUBE-SVL chain holds the node's own endpoints. ``masq_mark`` and
    ``random_fully`` are what a running kube-proxy uses; its unit tests' fake
    proxier uses ``0x4000`` and an iptables without ``--random-fully``
    (tests/unit/test_kube_proxy_golden.py ports one).
    """
    rs = Ruleset("nat")
    for name in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        rs.chain(name)
    _jumps(rs)
    large = large_cluster(sps)

    rs.note("Masquerade what KUBE-MARK-MASQ marked; clear the mark so it does not leak into the VXLAN packet.")
    rs.add(KUBE_POSTROUTING, f"-m mark ! --mark {masq_mark}/{masq_mark} -j RETURN")
    rs.add(KUBE_POSTROUTING, f"-j MARK --xor-mark {masq_mark}")
    rs.add(KUBE_POSTROUTING, '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
                             + (" --random-fully" if random_fully else ""))
    rs.add(KUBE_MARK_MASQ, f"-j MARK --or-mark {masq_mark}")

    for sp in sps:
        if not sp.endpoints:
            rs.note(f"{sp.name} has no endpoints: rejected in the filter table")
            continue
        _service_port_nat(rs, lab, sp, node, large)

    rs.note("Node ports: any local address of the node; must stay the last rule of KUBE-SERVICES.")
    rs.add(KUBE_SERVICES, '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
                          f'in this chain" -m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}')
    return rs


def _service_port_nat(rs: Ruleset, lab: Lab, sp: ServicePortInfo, node: str, large: bool) -> None:
    """One Service port with endpoints somewhere in the cluster, as ``node``'s kube-proxy writes it.

    KUBE-SVC picks among every endpoint (Cluster policy), KUBE-SVL among the node's own (Local): the ClusterIP
    goes to KUBE-SVL with internalTrafficPolicy Local (nowhere, without one here: the filter table drops it),
    outside traffic to a node port with externalTrafficPolicy Local; KUBE-SVC is there whenever some traffic
    uses every endpoint (a node port's always does: pods' own is short-circuited to it)."""
    proto, port, cip, name = sp.protocol, sp.port.port, str(sp.cluster_ip), sp.name
    match = f"-m {proto} -p {proto}"
    uses_cluster = not sp.internal_local or sp.external  # UsesClusterEndpoints
    local = sp.local_endpoints(node) if sp.internal_local or sp.external_local else ()
    svc = rs.chain(sp.svc_chain) if uses_cluster else sp.svc_chain
    svl = rs.chain(sp.svl_chain) if local else sp.svl_chain
    internal = svl if sp.internal_local else svc
    has_internal = bool(local) or not sp.internal_local
    eps = ", ".join(f"{ip}:{p}" for ip, p in sp.endpoints)
    cluster_ip = f'-m comment --comment "{name} cluster IP" {match} -d {cip} --dport {port}'
    if has_internal:
        rs.note(f"{name} cluster IP {cip}:{port}/{proto} -> "
                + (f"this node's {', '.join(f'{ip}:{p}' for ip, p in local)} (internalTrafficPolicy Local)"
                   if sp.internal_local else eps))
        rs.add(KUBE_SERVICES, f"{cluster_ip} -j {internal}")
    else:
        rs.note(f"{name} cluster IP {cip}:{port}/{proto}: internalTrafficPolicy Local and no endpoint on this "
                "node: dropped in the filter table")
    for ip in sp.external_ips:
        rs.note(f"{name} external IP {ip}: routed to the nodes from outside, to the external chain")
        rs.add(KUBE_SERVICES, f'-m comment --comment "{name} external IP" {match} -d {ip} '
                              f"--dport {port} -j {sp.ext_chain}")
    if sp.lb_ip is not None and sp.node_port is not None:
        rs.note(f"{name} load balancer IP {sp.lb_ip}: in-cluster clients skip the trip to the balancer")
        rs.add(KUBE_SERVICES, f'-m comment --comment "{name} loadbalancer IP" {match} -d {sp.lb_ip} '
                              f"--dport {port} -j {sp.fw_chain if sp.uses_firewall else sp.ext_chain}")
    if sp.uses_firewall:
        fw = rs.chain(sp.fw_chain)
        rs.note(f"{name} loadBalancerSourceRanges: other sources fall through, undone, to KUBE-PROXY-FIREWALL")
        for source in sp.firewall_sources(lab.node(node).ip if node else None):
            rs.add(fw, f'-m comment --comment "{name} loadbalancer IP" -s {source} -j {sp.ext_chain}')
        rs.add(fw, f'-m comment --comment "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"')
    if sp.external:
        ext = rs.chain(sp.ext_chain)
        if sp.node_port is not None:
            rs.note(f"{name} node port {sp.node_port}/{proto}")
            rs.add(KUBE_NODEPORTS, f"-m comment --comment {name} {match} --dport {sp.node_port} -j {ext}")
        if not sp.external_local:
            rs.add(ext, f'-m comment --comment "masquerade traffic for {name} external destinations" '
                        f"-j {KUBE_MARK_MASQ}")
            rs.add(ext, f"-j {svc}")
        else:
            # Local: a pod's own traffic to a node port or the balancer is short-circuited to every endpoint
            # (as if it went out to a balancer and came back); the node's own is too, masqueraded, since its
            # source is the node's address; only the rest (from outside) keeps its source and stays here.
            rs.note(f"{name} externalTrafficPolicy Local: outside clients keep their address and reach this "
                    f"node's endpoints only ({', '.join(f'{ip}:{p}' for ip, p in local) or 'none here'})")
            rs.add(ext, f'-m comment --comment "pod traffic for {name} external destinations" '
                        f"-s {lab.topo.cluster.pod_cidr} -j {svc}")
            rs.add(ext, f'-m comment --comment "masquerade LOCAL traffic for {name} external destinations" '
                        f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}")
            rs.add(ext, f'-m comment --comment "route LOCAL traffic for {name} external destinations" '
                        f"-m addrtype --src-type LOCAL -j {svc}")
            if local:
                rs.add(ext, f"-j {svl}")
    if has_internal:
        rs.add(internal, f"{cluster_ip} ! -s {lab.topo.cluster.pod_cidr} -j {KUBE_MARK_MASQ}")
    seps = [(sp.sep_chain(ip, p), f"{ip}:{p}", str(ip)) for ip, p in sp.endpoints]
    here = {f"{ip}:{p}" for ip, p in local}
    mine = [e for e in seps if e[1] in here]
    if uses_cluster:
        _pick_endpoint(rs, svc, name, seps, sp.affinity, large, sp.affinity_seconds)
    if local:
        _pick_endpoint(rs, svl, name, mine, sp.affinity, large, sp.affinity_seconds)
    # appendServiceCommentLocked: these comments go in a large cluster.
    sep_comment = "" if large else f"-m comment --comment {name} "
    for sep, ep, ip in seps if uses_cluster else mine:  # allLocallyReachableEndpoints
        rs.chain(sep)
        rs.add(sep, f"{sep_comment}-s {ip} -j {KUBE_MARK_MASQ}")
        recent = f"-m recent --name {sep} --set " if sp.affinity else ""
        rs.add(sep, f"{sep_comment}{recent}{match} -j DNAT --to-destination {ep}")


def _pick_endpoint(rs: Ruleset, chain: str, name: str, seps: list[tuple[str, str, str]], affinity: bool,
                   large: bool, seconds: int = AFFINITY_SECONDS) -> None:
    """writeServiceToEndpointRules: the client's remembered endpoint (ClientIP), else one at random."""
    if affinity:
        for sep, ep, _ in seps:
            rs.add(chain, f"{_to_endpoint(name, ep, large)}-m recent --name {sep} --rcheck "
                          f"--seconds {seconds} --reap -j {sep}")
    n = len(seps)
    for i, (sep, ep, _) in enumerate(seps):
        stat = f"-m statistic --mode random --probability {kube_probability(n - i)} " if i < n - 1 else ""
        rs.add(chain, f"{_to_endpoint(name, ep, large)}{stat}-j {sep}")


def _to_endpoint(name: str, endpoint: str, large: bool) -> str:
    """The comment of a KUBE-SVC rule that picks an endpoint (none in a large cluster)."""
    return "" if large else f'-m comment --comment "{name} -> {endpoint}" '


def node_nat(lab: Lab, node: NodeInfo, kube: Ruleset) -> tuple[Ruleset, bool]:
    """A node's nat table: kube-proxy's chains, Flannel's FLANNEL-POSTRTG for its own lease, and portmap's
    chains for its pods' hostPorts (builtin: plan/portmap_rules.py); and whether portmap's are there."""
    rs = kube.copy()
    flannel.masq_rules(rs, lab, node)
    return rs, portmap_rules.hostport_rules(rs, lab, node)


def node_filter(lab: Lab, sps: list[ServicePortInfo], masq_mark: str = MASQ_MARK, node: str = "") -> Ruleset:
    """kube-proxy's filter chains on ``node``, then Flannel's FLANNEL-FWD (the same on every node but for
    externalTrafficPolicy Local Services without an endpoint there).

    A Service port without endpoints is refused at once (REJECT: the client gets
    "connection refused" instead of a timeout), on its ClusterIP in
    KUBE-SERVICES and on its node port and load balancer IP in
    KUBE-EXTERNAL-SERVICES. KUBE-FORWARD drops packets conntrack finds INVALID
    (the node's nf_conntrack_tcp_be_liberal is 0) and accepts what kube-proxy
    marked and the rest of its connections, whatever FORWARD's policy.
    """
    rs = Ruleset("filter")
    for name in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL,
                 KUBE_FIREWALL):
        rs.chain(name)
    _jumps(rs)
    # A NodePort answers on the node's 127.0.0.1 too (kube-proxy's localhostNodePorts, on by default): the node
    # routes 127/8 off lo (route_localnet, resources() below), so a packet from outside the node to 127.0.0.1
    # is dropped here unless it is a connection the node's own DNAT made (Kubernetes issue 90259). kubelet
    # made the chain and its jumps before kube-proxy ran, whose prepended jumps therefore come first.
    rs.jump("INPUT", f"-j {KUBE_FIREWALL}")
    rs.jump("OUTPUT", f"-j {KUBE_FIREWALL}")
    rs.add(KUBE_FIREWALL, '-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 '
                          "! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
    for sp in sps:
        match = f"-m {sp.protocol} -p {sp.protocol}"
        if not sp.endpoints:
            why, verdict = f'-m comment --comment "{sp.name} has no endpoints"', "REJECT"
            rs.note(f"{sp.name} has no endpoints: refuse at once instead of letting the client time out")
            rs.add(KUBE_SERVICES, f"{why} {match} -d {sp.cluster_ip} --dport {sp.port.port} -j REJECT")
        elif sp.internal_local and not sp.local_endpoints(node):
            # internalTrafficPolicy Local, none here: pods' (and the node's) ClusterIP traffic is dropped
            rs.note(f"{sp.name} has no endpoint on this node: drop traffic to its ClusterIP")
            rs.add(KUBE_SERVICES, f'-m comment --comment "{sp.name} has no local endpoints" {match} '
                                  f"-d {sp.cluster_ip} --dport {sp.port.port} -j DROP")
        if sp.endpoints and not sp.external_endpoints(node):
            # externalTrafficPolicy Local, none here: outside traffic is dropped (a balancer that asks the
            # healthCheckNodePort sends none here); pods' and the node's own still reach every endpoint (nat).
            why, verdict = f'-m comment --comment "{sp.name} has no local endpoints"', "DROP"
            rs.note(f"{sp.name} has no endpoint on this node: drop outside traffic to its node port")
        elif sp.endpoints:
            why, verdict = "", ""
        for ip in sp.external_ips if verdict else ():
            rs.add(KUBE_EXTERNAL_SERVICES, f"{why} {match} -d {ip} --dport {sp.port.port} -j {verdict}")
        if sp.endpoints and sp.uses_firewall:
            rs.add(KUBE_PROXY_FIREWALL, f'-m comment --comment "{sp.name} traffic not accepted by {sp.fw_chain}" '
                                        f"{match} -d {sp.lb_ip} --dport {sp.port.port} -j DROP")
        if verdict and sp.lb_ip is not None:
            rs.add(KUBE_EXTERNAL_SERVICES, f"{why} {match} -d {sp.lb_ip} --dport {sp.port.port} -j {verdict}")
        if verdict and sp.node_port is not None:
            rs.add(KUBE_EXTERNAL_SERVICES, f"{why} -m addrtype --dst-type LOCAL {match} --dport {sp.node_port} "
                                           f"-j {verdict}")
        if sp.health_check_node_port is not None:  # whether this node has an endpoint or not
            rs.add(KUBE_NODEPORTS, f'-m comment --comment "{sp.name} health check node port" -m tcp -p tcp '
                                   f"--dport {sp.health_check_node_port} -j ACCEPT")
    rs.add(KUBE_FORWARD, "-m conntrack --ctstate INVALID -j DROP")
    rs.add(KUBE_FORWARD, f'-m comment --comment "kubernetes forwarding rules" -m mark --mark {masq_mark}/{masq_mark} '
                         "-j ACCEPT")
    rs.add(KUBE_FORWARD, '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate '
                         "RELATED,ESTABLISHED -j ACCEPT")
    flannel.forward_rules(rs, lab)
    return rs


def resources(lab: Lab) -> list[Resource]:
    """Per node: the bridge-netfilter, route_localnet and conntrack timeout sysctls, and the nat and filter rules.

    No route for the Service CIDR: like a real node, a node's own connection to a
    ClusterIP is routed by its default route (plan/build.py) before OUTPUT's DNAT
    runs, and the kernel routes it again to the endpoint after the DNAT
    (``ip_route_me_harder``); a Service without endpoints is refused by the filter
    table's REJECT in OUTPUT before the packet leaves."""
    sps = service_ports(lab)
    # Built once for all nodes unless a Service's externalTrafficPolicy Local makes each node's its own.
    per_node = any(sp.external_local or sp.internal_local or sp.uses_firewall for sp in sps)
    if not per_node:
        kube, filt = kube_nat(lab, sps), node_filter(lab, sps)
    same = "" if per_node else " (the same on every node)"
    nat_title = f"netlab {lab.name}: kube-proxy's nat rules{same}, then Flannel's for this node"
    filter_title = f"netlab {lab.name}: kube-proxy and Flannel filter rules{same}"
    out: list[Resource] = []
    for node in lab.nodes:
        if per_node:
            kube, filt = kube_nat(lab, sps, node=node.name), node_filter(lab, sps, node=node.name)
        out.append(Sysctl(netns=node.netns, name=BRIDGE_NF_SYSCTL[0], value=BRIDGE_NF_SYSCTL[1]))
        out.append(Sysctl(netns=node.netns, name=ROUTE_LOCALNET_SYSCTL[0], value=ROUTE_LOCALNET_SYSCTL[1]))
        out += [Sysctl(netns=node.netns, name=k, value=v) for k, v in CONNTRACK_SYSCTLS]
        out += [Sysctl(netns=node.netns, name=k, value=v) for k, v in portmap_rules.localnet_sysctls(lab, node)]
        nat, portmap = node_nat(lab, node, kube)
        out.append(nat.resource(node.netns, nat_title + (", and portmap's for its pods' hostPorts" if portmap else "")))
        out.append(policy.node_filter(lab, node, filt).resource(node.netns, policy.filter_title(lab, filter_title)))
    return out
