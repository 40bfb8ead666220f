"""kube-proxy's nftables mode: the table ``ip kube-proxy`` every node gets, as kube-proxy writes it.

One table holds everything (kubernetes ``pkg/proxy/nftables/proxier.go``, the layout of its proxier_test.go golden
outputs in tests/unit/golden/kube_proxy: ``filter-*-pre-dnat`` base chains, which older releases named otherwise)::

    nat-prerouting / nat-output (dstnat) ─► services
        ip daddr . meta l4proto . th dport vmap @service-ips        ClusterIP, LB IP
        ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
    service-ips:        <ClusterIP> . tcp . 80 : goto service-<hash>-<ns>/<svc>/tcp/<port>
                        <LB IP> . tcp . 80     : goto external-<hash>-...     (marks for masquerade first)
    external-<hash>-... (externalTrafficPolicy Local, per node):
                        ip saddr <podCIDR> goto service-...      "short-circuit pod traffic"
                        fib saddr type local jump mark-for-masquerade, goto service-...  (the node itself)
                        goto local-<hash>-...    this node's endpoints, the client's address kept; without
                                                 one, no-endpoint-nodeports / -services say ": drop"
    service-<hash>-...: ip daddr <ClusterIP> ip saddr != <podCIDR> jump mark-for-masquerade
                        [ip saddr @affinity-<hash>-... goto endpoint-...]    (sessionAffinity: ClientIP)
                        numgen random mod N vmap { 0 : goto endpoint-A , 1 : goto endpoint-B ... }
    endpoint-<hash>-...__<ip>/<port>: ip saddr <ip> jump mark-for-masquerade   (hairpin)
                        [update @affinity-... { ip saddr }]
                        meta l4proto tcp dnat to <ip>:<port>
    nat-postrouting (srcnat) ─► masquerading: masquerade what mark-for-masquerade marked 0x4000
    filter-input/forward/output ─► service-endpoints-check: vmap @no-endpoint-services (reject-chain)
                                   nodeport-endpoints-check: vmap @no-endpoint-nodeports
                                   cluster-ips-check: reject other ports of a ClusterIP, drop unallocated ones

Names: ``service-`` + the first 8 characters of base32(sha256(name)) + ``-`` +
``<ns>/<svc>/<proto>/<port name>``; endpoints the same over
``...__<ip>/<port>`` (kube-proxy's ``hashAndTruncate``: past 240 characters
the name is cut and ends in ``...``, so every chain and set name stays under
nf_tables' 256 bytes, NUL included; a 63-character namespace and name and a
15-character port name make 188 at most, uncut). Element comments name the Service port
(``<ns>/<svc>:<port>``, up to 143 characters) and are cut to 128 bytes, the
most nft takes ("comment too long, 128 characters maximum allowed": the whole
transaction refused), as kube-proxy cuts them (kubernetes#139515, fixed by
#139516; knftables.CommentLengthMax). nodePorts answer on
the node's own address only (``nodeport-ips``: kube-proxy's default
``--nodeport-addresses primary`` in this mode).

The payload is one ``nft -f`` transaction that replaces the table (``add``,
``delete``, then the whole table: the kernel sees all of it or none).
:attr:`NftRules.listing` is the same table in the words :mod:`netlab.kernel.nft`
prints the kernel's ``nft -j list table`` in, so status compares like with
like (the table's objects, and how the kernel lists them: :mod:`netlab.plan.nft_table`).
Flannel's rules stay iptables (plan/flannel.py), as on a real node.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from netlab.model.lab import Lab, NodeInfo
from netlab.plan import flannel, policy, portmap_rules
from netlab.plan.iptables import Ruleset
from netlab.plan.nft_table import FAMILY as FAMILY
from netlab.plan.nft_table import TABLE as TABLE
from netlab.plan.nft_table import Chain, Set
from netlab.plan.nft_table import Table as Table
from netlab.plan.resources import NftRules, Resource, Sysctl
from netlab.plan.services import MASQ_MARK, ServicePortInfo, service_ports
from netlab.plan.sysctls import BRIDGE_NF_SYSCTL, CONNTRACK_SYSCTLS, ROUTE_LOCALNET_SYSCTL

NAME_MAX = 256  # knftables.NameLengthMax (NFT_NAME_MAXLEN, its NUL included: 255 characters at most)
PREFIX_MAX = 16  # chainNamePrefixLengthMax
COMMENT_MAX = 128  # knftables.CommentLengthMax (libnftnl's NFTNL_UDATA_COMMENT_MAXLEN)

MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"
SERVICES = "services"
REJECT_CHAIN = "reject-chain"

# Base chains: (name, type, hook, priority), as the table holds them.
BASE_CHAINS = (
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-forward", "filter", "forward", 0),
    ("filter-input", "filter", "input", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
    ("nat-prerouting", "nat", "prerouting", -100),
)
# Jumps from the base chains, in kube-proxy's order (nftablesJumpChains).
JUMPS = (
    ("filter-input", "ct state new", "nodeport-endpoints-check"),
    ("filter-input", "ct state new", "service-endpoints-check"),
    ("filter-forward", "ct state new", "service-endpoints-check"),
    ("filter-output", "ct state new", "service-endpoints-check"),
    ("filter-prerouting-pre-dnat", "ct state new", "firewall-check"),
    ("filter-output-pre-dnat", "ct state new", "firewall-check"),
    ("nat-output", "", SERVICES),
    ("nat-prerouting", "", SERVICES),
    ("nat-postrouting", "", MASQUERADING),
    ("filter-forward", "ct state new", "cluster-ips-check"),
    ("filter-output", "ct state new", "cluster-ips-check"),
)
SERVICE_KEY = "ipv4_addr . inet_proto . inet_service"
PORT_KEY = "inet_proto . inet_service"


# --- names ---------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 16)
def hash_and_truncate(name: str) -> str:
    """kube-proxy's hashAndTruncate: base32(sha256(name))[:8] + "-" + name, cut to fit.

    Base32 writes 5 bytes as 8 characters, so the first 8 characters are the first 5 bytes' (a 30th of the
    work); every node's table names the same chains, so each name is worked out once (1,000 Services x 3
    endpoints on 3 nodes: 18,024 calls, 4,008 names)."""
    encoded = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    out = encoded[:8] + "-" + name
    limit = NAME_MAX - PREFIX_MAX
    return out[:limit - 3] + "..." if len(out) > limit else out


def comment_text(text: str) -> str:
    """``text`` as an nft comment holds it: its first 128 bytes. nft refuses a longer comment, and with it the whole
    transaction (every Service of the node); kube-proxy cuts its element comments (``svcInfo.nameString``) to
    ``knftables.CommentLengthMax`` plainly, no mark, no hash (a comment needs not be unique). Names are ASCII."""
    return text.encode()[:COMMENT_MAX].decode(errors="ignore")


def port_base(sp: ServicePortInfo) -> str:
    """``<hash>-ns/svc/proto/portname`` (servicePortChainNameBase)."""
    return hash_and_truncate(f"{sp.svc.namespace}/{sp.svc.name}/{sp.protocol}/{sp.port.name or ''}")


def endpoint_base(sp: ServicePortInfo, ip: object, port: int) -> str:
    """``<hash>-ns/svc/proto/portname__ip/port`` (servicePortEndpointChainNameBase)."""
    return hash_and_truncate(f"{sp.svc.namespace}/{sp.svc.name}/{sp.protocol}/{sp.port.name or ''}__{ip}/{port}")


def service_chain(sp: ServicePortInfo) -> str:
    return "service-" + port_base(sp)


def external_chain(sp: ServicePortInfo) -> str:
    return "external-" + port_base(sp)


def local_chain(sp: ServicePortInfo) -> str:
    """The node's own endpoints (kube-proxy's localPolicyChainName), for externalTrafficPolicy Local."""
    return "local-" + port_base(sp)


def firewall_chain(sp: ServicePortInfo) -> str:
    """loadBalancerSourceRanges' check of the balancer's IP (kube-proxy's firewallChainName)."""
    return "firewall-" + port_base(sp)


def endpoint_chain(sp: ServicePortInfo, ip: object, port: int) -> str:
    return "endpoint-" + endpoint_base(sp, ip, port)


def affinity_set(sp: ServicePortInfo, ip: object, port: int) -> str:
    return "affinity-" + endpoint_base(sp, ip, port)


# --- what kube-proxy writes -------------------------------------------------------

def base_table(lab: Lab, node: NodeInfo, mark: str) -> Table:
    """setupNFTables: the base chains, the jumps, masquerading, and the empty sets and maps."""
    t = Table()
    t.set(Set("cluster-ips", "ipv4_addr", "Active ClusterIPs"))
    t.set(Set("nodeport-ips", "ipv4_addr", "IPs that accept NodePort traffic"))
    t.set(Set("firewall-ips", SERVICE_KEY, "destinations that are subject to LoadBalancerSourceRanges", is_map=True))
    t.set(Set("no-endpoint-nodeports", PORT_KEY,
              "vmap to drop or reject packets to service nodeports with no endpoints", is_map=True))
    t.set(Set("no-endpoint-services", SERVICE_KEY,
              "vmap to drop or reject packets to services with no endpoints", is_map=True))
    t.set(Set("service-ips", SERVICE_KEY, "ClusterIP, ExternalIP and LoadBalancer IP traffic", is_map=True))
    t.set(Set("service-nodeports", PORT_KEY, "NodePort traffic", is_map=True))
    for name, kind, hook, prio in BASE_CHAINS:
        t.chain(Chain(name, kind, hook, prio))
    for src, extra, dst in JUMPS:
        t.chain(dst)
        t.rule(src, " ".join(filter(None, (extra, "jump", dst))))
    for name in (SERVICES, "cluster-ips-check", MASQUERADING, MARK_MASQ):
        t.chain(name)
    t.rule(MARK_MASQ, f"mark set mark or {mark}")
    t.rule(MASQUERADING, f"mark and {mark} == 0 return")
    t.rule(MASQUERADING, f"mark set mark xor {mark}")
    t.rule(MASQUERADING, "masquerade fully-random")
    t.rule("cluster-ips-check", 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"')
    t.rule("cluster-ips-check", f"ip daddr {{ {lab.topo.cluster.service_cidr} }} drop comment "
                                '"Drop traffic to unallocated ClusterIPs"')
    t.element("nodeport-ips", str(node.ip))
    t.chain(Chain(REJECT_CHAIN, comment="helper for @no-endpoint-services / @no-endpoint-nodeports"))
    t.rule(REJECT_CHAIN, "reject")
    t.rule("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    t.rule("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports")
    t.rule("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips")
    t.rule(SERVICES, "ip daddr . meta l4proto . th dport vmap @service-ips")
    t.rule(SERVICES, "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
    return t


def add_service_port(t: Table, lab: Lab, sp: ServicePortInfo, node: str = "") -> None:
    """syncProxyRules for one Service port on ``node``: its ClusterIP to every endpoint, or with
    internalTrafficPolicy Local to the node's own (the local- chain; none here: dropped); its node port and
    balancer IP through the external- chain."""
    proto, port, cip = sp.protocol, sp.port.port, str(sp.cluster_ip)  # addresses as text once (str() is slow)
    svc, ext = service_chain(sp), external_chain(sp)
    external = sp.external
    t.element("cluster-ips", cip)
    if sp.uses_firewall:  # whether it has endpoints or not, as kube-proxy's nftables mode does
        fw = firewall_chain(sp)
        t.chain(fw)
        t.element("firewall-ips", f"{sp.lb_ip} . {proto} . {port} : goto {fw}")
        sources = ", ".join(sp.firewall_sources(lab.node(node).ip if node else None))
        t.rule(fw, f"ip saddr != {{ {sources} }} drop")
    if not sp.endpoints:
        reject = f'comment "{comment_text(sp.name)}" : goto {REJECT_CHAIN}'
        t.element("no-endpoint-services", f"{cip} . {proto} . {port} {reject}")
        for ip in sp.external_ips:
            t.element("no-endpoint-services", f"{ip} . {proto} . {port} {reject}")
        if sp.lb_ip is not None:
            t.element("no-endpoint-services", f"{sp.lb_ip} . {proto} . {port} {reject}")
        if sp.node_port is not None:
            t.element("no-endpoint-nodeports", f"{proto} . {sp.node_port} {reject}")
        return
    uses_cluster = not sp.internal_local or external  # UsesClusterEndpoints (a node port's pods short-circuit)
    local = sp.local_endpoints(node) if sp.internal_local or sp.external_local else ()
    lcl = local_chain(sp)
    internal = lcl if sp.internal_local else svc
    has_internal = bool(local) or not sp.internal_local
    texts = [(str(ip), p) for ip, p in sp.endpoints]
    every = [(ip, p, endpoint_chain(sp, ip, p)) for ip, p in texts]
    mine = [e for e, (ip, p) in zip(every, sp.endpoints) if (ip, p) in local]
    eps = every if uses_cluster else mine  # allLocallyReachableEndpoints
    for _, _, chain in eps:
        t.chain(chain)
    if uses_cluster:
        t.chain(svc)
    if external:
        t.chain(ext)
    if local:
        t.chain(lcl)
    drop = f'comment "{comment_text(sp.name)}" : drop'
    if has_internal:
        t.element("service-ips", f"{cip} . {proto} . {port} : goto {internal}")
    else:  # internalTrafficPolicy Local and none on this node: the ClusterIP is dropped
        t.element("no-endpoint-services", f"{cip} . {proto} . {port} {drop}")
    for ip in sp.external_ips:
        t.element("service-ips", f"{ip} . {proto} . {port} : goto {ext}")
    if sp.lb_ip is not None:
        t.element("service-ips", f"{sp.lb_ip} . {proto} . {port} : goto {ext}")
    if sp.node_port is not None:
        t.element("service-nodeports", f"{proto} . {sp.node_port} : goto {ext}")
    if external and sp.external_local and not local:  # none on this node: outside traffic is dropped
        for ip in sp.external_ips:
            t.element("no-endpoint-services", f"{ip} . {proto} . {port} {drop}")
        if sp.node_port is not None:
            t.element("no-endpoint-nodeports", f"{proto} . {sp.node_port} {drop}")
        if sp.lb_ip is not None:
            t.element("no-endpoint-services", f"{sp.lb_ip} . {proto} . {port} {drop}")
    if has_internal:
        t.rule(internal, f"ip daddr {cip} ip saddr != {lab.topo.cluster.pod_cidr} jump {MARK_MASQ}")
    if external and not sp.external_local:
        t.rule(ext, f"jump {MARK_MASQ}")
        t.rule(ext, f"goto {svc}")
    elif external:
        t.rule(ext, f'ip saddr {lab.topo.cluster.pod_cidr} goto {svc} comment "short-circuit pod traffic"')
        t.rule(ext, f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"')
        t.rule(ext, f'fib saddr type local goto {svc} comment "short-circuit local traffic"')
        if local:
            t.rule(ext, f"goto {lcl}")
    if uses_cluster:
        _pick_endpoint(t, sp, svc, every)
    if local:
        _pick_endpoint(t, sp, lcl, mine)
    for ip, p, chain in eps:
        t.rule(chain, f"ip saddr {ip} jump {MARK_MASQ}")
        if sp.affinity:
            t.rule(chain, f"update @{affinity_set(sp, ip, p)} {{ ip saddr }}")
        t.rule(chain, f"meta l4proto {proto} dnat to {ip}:{p}")


def _pick_endpoint(t: Table, sp: ServicePortInfo, chain: str, eps: list[tuple[object, int, str]]) -> None:
    """writeServiceToEndpointRules: the client's remembered endpoint (ClientIP), else one at random."""
    if sp.affinity:
        for ip, p, ep_chain in eps:
            t.set(Set(affinity_set(sp, ip, p), "ipv4_addr", timeout=sp.affinity_seconds))
            t.rule(chain, f"ip saddr @{affinity_set(sp, ip, p)} goto {ep_chain}")
    choices = " , ".join(f"{i} : goto {ep_chain}" for i, (_, _, ep_chain) in enumerate(eps))
    t.rule(chain, f"numgen random mod {len(eps)} vmap {{ {choices} }}")


def kube_proxy_table(lab: Lab, node: NodeInfo, sps: list[ServicePortInfo], mark: str = MASQ_MARK) -> Table:
    """The whole table of one node (the same on every node but for ``nodeport-ips``)."""
    t = base_table(lab, node, mark)
    for sp in sps:
        add_service_port(t, lab, sp, node.name)
    return t


def replace_payload(t: Table, title: str = "") -> str:
    """One ``nft -f`` transaction: make the table if absent, delete it, add it again whole."""
    head = [f"# {title}"] if title else []
    pre = f"{FAMILY} {TABLE}"
    return "\n".join(head + [f"add table {pre}", f"delete table {pre}"] + t.transaction()) + "\n"


def resource(lab: Lab, node: NodeInfo, sps: list[ServicePortInfo]) -> NftRules:
    t = kube_proxy_table(lab, node, sps)
    return NftRules(netns=node.netns, family=FAMILY, table=TABLE,
                    payload=replace_payload(t, f"netlab {lab.name}: kube-proxy (nftables mode) on {node.name}"),
                    listing=t.listing())


def resources(lab: Lab) -> list[Resource]:
    """Per node: the bridge-netfilter, route_localnet and kube-proxy's conntrack timeout sysctls, Flannel's own
    chains (iptables, as on a real node: FLANNEL-POSTRTG, FLANNEL-FWD), the node's NetworkPolicy chains and
    kube-proxy's table ``ip kube-proxy``."""
    sps = service_ports(lab)
    filt = Ruleset("filter")
    flannel.forward_rules(filt, lab)
    out: list[Resource] = []
    for node in lab.nodes:
        nat = Ruleset("nat")
        flannel.masq_rules(nat, lab, node)
        portmap = portmap_rules.hostport_rules(nat, lab, node)  # iptables too: its backend is iptables either way
        out.append(Sysctl(netns=node.netns, name=BRIDGE_NF_SYSCTL[0], value=BRIDGE_NF_SYSCTL[1]))
        # No NodePort on 127.0.0.1 in this mode, so no route_localnet=1 either: the kernel's 0, said, so that a node
        # that was in iptables mode (up --reconfigure) loses the 1 it had without KUBE-FIREWALL's drop of
        # outside packets to 127/8 (CVE-2020-8558), and status sees a 1 set by hand.
        out.append(Sysctl(netns=node.netns, name=ROUTE_LOCALNET_SYSCTL[0], value="0"))
        out += [Sysctl(netns=node.netns, name=k, value=v) for k, v in CONNTRACK_SYSCTLS]  # as in iptables mode
        out += [Sysctl(netns=node.netns, name=k, value=v) for k, v in portmap_rules.localnet_sysctls(lab, node)]
        whose = "Flannel's and portmap's (its pods' hostPorts)" if portmap else "Flannel's"
        out.append(nat.resource(node.netns, f"netlab {lab.name}: {whose} nat rules for this node (kube-proxy is "
                                            "in nftables mode)"))
        # NetworkPolicies are iptables rules in both modes (as kube-router or Calico's iptables mode beside
        # kube-proxy): the filter table's FORWARD judges a Service's packet after the kube-proxy table's DNAT.
        out.append(policy.node_filter(lab, node, filt).resource(
            node.netns, policy.filter_title(lab, f"netlab {lab.name}: Flannel's filter rules")))
        out.append(resource(lab, node, sps))
    return out
