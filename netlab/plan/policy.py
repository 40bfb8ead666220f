"""NetworkPolicy enforcement in each node's filter table, the way kube-router's
iptables policy controller (and Calico's iptables mode) does it.

Every packet a node forwards to or from one of its pods passes FORWARD once:
routed packets (to or from flannel.1 or eth0) and, with br_netfilter
(``bridge-nf-call-iptables=1``, set by plan/services.py), packets one pod
sends to another across ``cni0``, hairpins included. Service traffic is
already DNATed there (nat PREROUTING runs first), so policies see the endpoint
pod, as in Kubernetes::

    FORWARD ─► NETPOL-FORWARD (first, before kube-proxy's and Flannel's accepts)
                 ├─ ctstate RELATED,ESTABLISHED ─► RETURN  (stateful: only new flows are judged)
                 ├─ -s <local pod> -d <the same pod> ─► RETURN  (a pod reaching itself through a Service)
                 ├─ -s <local pod> ─► NETPOL-OUT-<pod>    (its egress, if a policy isolates it)
                 └─ -d <local pod> ─► NETPOL-IN-<pod>     (its ingress, likewise)
    NETPOL-IN-<pod>:  -j NETPOL-ING-<policy>   (one per policy selecting the pod: marks 0x10000 if a rule allows)
                      ! mark 0x10000 ─► REJECT (no rule of any of them allows it; TCP with a reset)
                      clear the mark, RETURN to judge the other direction / the rest of FORWARD
    NETPOL-ING-<policy>: one rule per (rule, peer, port): -s <peer pod>/32 | <ipBlock>, -p/--dport ─► MARK
                         an ipBlock with except: ─► NETPOL-EXC-<hash>: RETURN for each except, else MARK
                         an IPv6 ipBlock: nothing (the lab is IPv4: it matches no packet)

A pod's packet to its own Service's ClusterIP (or to a nodePort of its node) that
kube-proxy DNATs back to the pod itself (hairpin) passes FORWARD with the pod's
address on both sides, before POSTROUTING masquerades it to cni0's. A pod cannot
block access to itself (model/netpol.py says why, and what Cilium and the
iptables agents do), so that packet returns before either of the pod's chains.

A packet from a pod to one of its own node's addresses (eth0's node IP, cni0's
gateway address, flannel.1's) is not forwarded: it goes up to the node through
INPUT. The "traffic from the pod's node is always allowed" exception of
Kubernetes is for the pod's *ingress* (the kubelet's probes), not its egress,
so kube-router (and Calico, Cilium) judge that packet by the pod's egress
policies too: kube-router jumps to the pod's chain from INPUT (and OUTPUT) as
from FORWARD. netlab does the same, from INPUT, for the pods whose egress a
policy isolates::

    INPUT ─► NETPOL-INPUT (first)
               ├─ ctstate RELATED,ESTABLISHED ─► RETURN  (replies to the node's own connections to the pod)
               └─ -s <local pod> ─► NETPOL-OUT-<pod>     (the same chain, the same allow rules: an ipBlock
                                                          holding the node's address lets it through)

A pod's Service traffic never takes that path: its ClusterIP (or a node port
of its own node) is DNATed in PREROUTING to an endpoint pod, so the packet is
forwarded, judged in FORWARD against the endpoint (DNS to the cluster DNS
included). kube-router's INPUT chain also lets through packets to the Service
CIDR and to node ports before any pod's chain: that is for IPVS mode, where
ClusterIPs are local addresses; with kube-proxy's iptables and nftables modes
no such packet reaches INPUT, so netlab writes no such rule. Nor does it jump
from OUTPUT: the node's own packets to its pods are always allowed (ingress
exception) and none leaves the node with a pod's address (no IPVS, no
userspace proxy).

Peers are expanded to pod addresses (kube-router keeps them in ipsets;
plain rules are enough for a lab's dozens of pods and show in iptables-save as
they are). Named ports are resolved per pod: in an ingress rule against each
selected pod (``-d <pod> --dport <its port>``), in an egress rule against each
destination pod. A rule whose peers select no pod writes nothing, so it allows
nothing. An SCTP port is a rule as a TCP or UDP one is (``-p sctp -m sctp
--dport N[:M]``, as kube-router and Calico write it): a pod may speak SCTP (a
raw socket, or a kernel with the sctp module), and a port left unwritten would
be REJECTed by the pod's default deny. ``netlab doctor`` (its "kernel SCTP
match" line) and ``up`` check that the kernel takes such a rule.

Chains are per pod and per policy, named ``NETPOL-<KIND>-`` + 16 characters of
a hash, so ``up`` after editing one policy rewrites only that policy's chains
(netlink.realize.netfilter writes only chains whose rules differ), and every
connection conntrack already knows survives.

:mod:`netlab.model.netpol` decides the same question from the policies'
meaning alone; ``netlab probe`` compares the two.
"""

from __future__ import annotations

import base64
import hashlib

from netlab.model import naming
from netlab.model.lab import Lab, NodeInfo
from netlab.model.netpol import Peer, PodView, PolicySet, policy_set
from netlab.model.policy_spec import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from netlab.plan.iptables import Ruleset

MARK = "0x10000"  # kube-router's "allowed by a policy" bit
FORWARD_CHAIN = "NETPOL-FORWARD"
INPUT_CHAIN = "NETPOL-INPUT"  # a pod's egress to its own node's addresses (kube-router's KUBE-ROUTER-INPUT)
FORWARD_COMMENT = "netlab network policies"


def _h16(text: str) -> str:
    """16 characters of base32(sha256(text)), as kube-proxy and kube-router name their chains."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def pod_chain(direction: str, pod: PodView) -> str:
    kind = "IN" if direction == "ingress" else "OUT"
    return naming.check_chain(f"NETPOL-{kind}-" + _h16(f"{direction}/{pod.namespace}/{pod.name}"))


def policy_chain(direction: str, pol: NetworkPolicy) -> str:
    kind = "ING" if direction == "ingress" else "EGR"
    return naming.check_chain(f"NETPOL-{kind}-" + _h16(f"{direction}/{pol.namespace}/{pol.name}"))


def except_chain(direction: str, pol: NetworkPolicy, rule: int, peer: int) -> str:
    return naming.check_chain("NETPOL-EXC-" + _h16(f"{direction}/{pol.namespace}/{pol.name}/{rule}/{peer}"))


# The comment match holds at most 255 bytes (XT_MAX_COMMENT_LEN 256 with its NUL); iptables-restore refuses a
# longer one ("comment may not exceed 256 characters") and with it the whole table. A policy's name may be 253.
COMMENT_MAX = 255


def comment_text(text: str) -> str:
    """``text`` as a rule's comment holds it: whole when it fits, else cut, with a hash of the whole text so two
    long comments stay told apart (names are ASCII: one byte a character)."""
    if len(text) <= COMMENT_MAX:
        return text
    return f"{text[:COMMENT_MAX - 12]}... {naming.short_hash(text)}"


def _comment(text: str) -> str:
    return f'-m comment --comment "{comment_text(text)}"'


def _proto(protocol: str, port: int | None = None, end: int | None = None) -> str:
    p = protocol.lower()
    if port is None:
        return f"-p {p}"
    return f"-p {p} -m {p} --dport {port}" + (f":{end}" if end is not None and end != port else "")


def _peer_matches(ps: PolicySet, pol: NetworkPolicy, peer: NetworkPolicyPeer) -> list[PodView]:
    return [p for p in ps.pods if ps.peer_matches(pol, peer, Peer(p.ip, p))]


def _port_specs(ps: PolicySet, port: NetworkPolicyPort, servers: list[PodView]) -> list[tuple[str | None, str]]:
    """(server address or None, protocol/port match) for one ``ports`` item; named ports per server pod."""
    if isinstance(port.port, str):
        out = []
        for pod in servers:
            number = pod.port_named(port.port, port.protocol)
            if number is not None:
                out.append((f"{pod.ip}/32", _proto(port.protocol, number)))
        return out
    return [(None, _proto(port.protocol, port.port, port.end_port))]


def policy_rules(rs: Ruleset, ps: PolicySet, pol: NetworkPolicy, direction: str) -> str:
    """One policy's chain for one direction; returns its name."""
    chain = rs.chain(policy_chain(direction, pol))
    name = f"{pol.namespace}/{pol.name}"
    rules = (pol.spec.ingress if direction == "ingress" else pol.spec.egress) or []
    here, there = ("-d", "-s") if direction == "ingress" else ("-s", "-d")
    selected = ps.selected_pods(pol)
    allow = f"-j MARK --set-xmark {MARK}/{MARK}"
    if not rules:
        rs.note(f"{name}: no {direction} rule, so nothing is allowed")
    for i, rule in enumerate(rules, 1):
        peers = (rule.from_ if direction == "ingress" else rule.to) or []
        # (peer address match or "", except chain or None, candidate server pods, description)
        peer_items: list[tuple[str, str | None, list[PodView], str]] = []
        if not peers:
            servers = selected if direction == "ingress" else ps.pods
            peer_items.append(("", None, servers, f"{name} {direction} rule {i} any peer"))
        for j, peer in enumerate(peers, 1):
            what = f"{name} {direction} rule {i} peer {j}"
            if peer.ip_block is not None and peer.ip_block.ipv6:
                # The table is IPv4 (iptables, not ip6tables): an IPv6 block has no address here to match, and
                # the CNI's controllers write no rule for a block of the other family. So no rule: it allows
                # nothing (`-s 2001:db8::/32` would not even load; `::/0` unwritten would match everything).
                rs.note(f"{what}: ipBlock {peer.ip_block.cidr} is IPv6, which matches nothing in this IPv4 lab")
                continue
            if peer.ip_block is not None:
                blk = peer.ip_block
                exc = None
                if blk.except_:
                    exc = rs.chain(except_chain(direction, pol, i, j))
                    for net in blk.except_:
                        rs.add(exc, f"{there} {net} {_comment(what + ' except')} -j RETURN")
                    rs.add(exc, f"{_comment(what)} {allow}")
                inside = [p for p in ps.pods if p.ip in blk.cidr and not any(p.ip in n for n in blk.except_)]
                servers = selected if direction == "ingress" else inside
                # 0.0.0.0/0 is every address: no match at all, as iptables-save prints a rule given
                # `-s 0.0.0.0/0` (status compared the two and found the rule missing, for ever)
                addr = f"{there} {blk.cidr}" if blk.cidr.prefixlen else ""
                peer_items.append((addr, exc, servers, what))
            else:
                pods = _peer_matches(ps, pol, peer)
                if not pods:
                    rs.note(f"{what}: selects no pod")
                for pod in pods:
                    servers = selected if direction == "ingress" else [pod]
                    peer_items.append((f"{there} {pod.ip}/32", None, servers, what))
        for addr, exc, servers, what in peer_items:
            target = f"-j {exc}" if exc else allow
            if not rule.ports:
                rs.add(chain, " ".join(filter(None, (addr, _comment(what), target))))
                continue
            for port in rule.ports:
                for server, match in _port_specs(ps, port, servers):
                    if server is None:
                        parts: tuple[str, ...] = (addr, match, _comment(what), target)
                    elif direction == "ingress":  # the named port of the selected pod it was resolved on
                        parts = (addr, f"{here} {server}", match, _comment(what), target)
                    else:  # egress: the destination pod the name was resolved on (inside the peer)
                        parts = (f"{there} {server}", match, _comment(what), allow)
                    rs.add(chain, " ".join(filter(None, parts)))
    return chain


def node_rules(rs: Ruleset, lab: Lab, node: NodeInfo, ps: PolicySet) -> None:
    """The policy chains of one node, for the pods it runs, into its filter Ruleset."""
    local = [p for p in ps.pods if p.node == node.name]
    guarded = [(d, p, ps.isolating(p, d)) for d in ("egress", "ingress") for p in local]
    guarded = [g for g in guarded if g[2]]
    if not guarded:
        return
    rs.chain(FORWARD_CHAIN)
    rs.jump_first("FORWARD", f"{_comment(FORWARD_COMMENT)} -j {FORWARD_CHAIN}")
    rs.note("Network policies: established flows pass, and a pod's to itself through a Service; a new one is "
            "judged by its source's egress, then its destination's ingress.")
    rs.add(FORWARD_CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
    # Hairpin: only a DNATed packet (a Service of the pod's own) is forwarded from a pod to itself; its own
    # address without a Service stays in its namespace (lo). Never judged, as the model says (netpol.flow).
    for pod in dict.fromkeys(p for _, p, _ in guarded):
        who = f"{pod.namespace}/{pod.name}"
        rs.add(FORWARD_CHAIN, f"-s {pod.ip}/32 -d {pod.ip}/32 {_comment(who + ' reaches itself through a Service')} "
                              "-j RETURN")
    done: set[str] = set()
    for direction, pod, pols in guarded:
        who = f"{pod.namespace}/{pod.name}"
        chain = rs.chain(pod_chain(direction, pod))
        side = "-s" if direction == "egress" else "-d"
        rs.add(FORWARD_CHAIN, f"{side} {pod.ip}/32 {_comment(who + ' ' + direction)} -j {chain}")
        names = ", ".join(f"{p.namespace}/{p.name}" for p in pols)
        for pol in pols:
            target = policy_chain(direction, pol)
            if target not in done:
                policy_rules(rs, ps, pol, direction)
                done.add(target)
            rs.add(chain, f"{_comment(f'{who} {direction} policy {pol.namespace}/{pol.name}')} -j {target}")
        refused = _comment(f"{who} {direction}: no rule of {names} allows it")
        # TCP is refused with a reset, as a closed port refuses it: the kernel rate-limits the
        # ICMP errors a plain REJECT sends (icmp_ratelimit), a reset it does not.
        rs.add(chain, f"-p tcp -m mark ! --mark {MARK}/{MARK} {refused} -j REJECT --reject-with tcp-reset")
        rs.add(chain, f"-m mark ! --mark {MARK}/{MARK} {refused} -j REJECT")
        rs.add(chain, f"-j MARK --set-xmark 0x0/{MARK}")

    egress = [p for d, p, _ in guarded if d == "egress"]
    if egress:
        # A pod's packet to this node's own addresses goes through INPUT, not FORWARD: judge it by the pod's
        # egress chain too (the same rules), after letting the replies to the node's own connections pass.
        rs.chain(INPUT_CHAIN)
        rs.jump_first("INPUT", f"{_comment(FORWARD_COMMENT)} -j {INPUT_CHAIN}")
        rs.note("Network policies, INPUT: a pod's new flow to this node's own addresses is judged by its egress.")
        rs.add(INPUT_CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
        for pod in egress:
            rs.add(INPUT_CHAIN, f"-s {pod.ip}/32 {_comment(f'{pod.namespace}/{pod.name} egress to this node')} "
                                f"-j {pod_chain('egress', pod)}")


def node_filter(lab: Lab, node: NodeInfo, filt: Ruleset) -> Ruleset:
    """The node's filter table: ``filt`` (kube-proxy's and Flannel's, shared) plus its policy chains."""
    if not lab.topo.network_policies:
        return filt
    ps = policy_set(lab)
    rs = filt.copy()
    node_rules(rs, lab, node, ps)
    return rs


def filter_title(lab: Lab, title: str) -> str:
    """The payload's first line: what it holds (the policy chains differ per node)."""
    return title + ", then this node's NetworkPolicy chains" if lab.topo.network_policies else title
