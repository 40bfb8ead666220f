"""Which nodes a probe's flow crosses, and how: where a node's fault meets it (pure functions of the lab).

symptoms.expect judges each probe row by these paths; catalogue.target_problem asks :func:`meets_a_flow` whether
any flow the lab's probes send would meet a node scenario on a node at all (ip-forward-off on a node with no pods
and no NodePort changed nothing, yet exited 0: QA q8 2). It imports nothing of catalogue or symptoms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from netlab.breaks.changes import peer_node
from netlab.model.echo_ports import pod_echo_ports
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.probe.matrix import endpoints, probe_ports
from netlab.probe.policy import policy_judge, service_judge


# The faults of one node's pod network, as a flow's path meets them: its overlay to the peer node, its forwarding,
# its bridge, one pod's port.
NODE_PATH_SCENARIOS = ("vxlan-arp-missing", "vxlan-fdb-wrong-vtep", "vxlan-wrong-vni", "pod-cidr-route-missing",
                       "ip-forward-off", "rp-filter-strict", "forward-policy-drop", "bridge-port-down",
                       "bridge-port-disabled")


@dataclass(frozen=True)
class Path:
    """One way a probe's packets may go: from ``src`` (a pod, a node, or a host outside the cluster) to ``dst``
    (a pod, or a host outside), and back. ``entry`` is how: None (straight: bridged on one node, routed across
    two), ``ClusterIP`` (DNATed by the source's node, which routes it even to a pod on its own bridge), or the
    node of a NodePort (it DNATs what reaches its eth0 and forwards it, masqueraded as itself, to ``dst``)."""

    src: str
    dst: str
    entry: str | None = None


def paths(row: dict, lab: Lab) -> list[Path]:
    """Every way a probe row may go: one, or one per Service endpoint (kube-proxy picks one at random) and, for
    a LoadBalancer, per node (the internet's gateway routes its IP to the nodes, a connection to one by its hash)."""
    src, svc = row["source"], row.get("service")
    if svc is None:
        return [Path(src, row["destination"])]
    ends = [e["pod"] for e in svc.get("endpoints", [])]
    via = svc.get("via")
    if via == "ClusterIP":
        return [Path(src, e, "ClusterIP") for e in ends]
    if via == "NodePort":
        return [Path(src, e, svc["node"]) for e in ends]
    return [Path(src, e, n.name) for n in lab.nodes for e in ends]  # LoadBalancer


class _Where:
    """Which nodes a path uses, and how."""

    def __init__(self, lab: Lab):
        self.pods = {p.name: p.node for p in lab.pods}
        self.nodes = {n.name for n in lab.nodes}
        self.lab = lab

    def node_of(self, name: str) -> str | None:
        """The node a pod runs on, a node itself, None for a host outside the cluster."""
        return self.pods.get(name, name if name in self.nodes else None)

    def sender(self, p: Path) -> str:
        """Who puts the path's packets on the pod network: a NodePort's node, unless the source is that node."""
        return p.entry if p.entry not in (None, "ClusterIP") else p.src

    def hops(self, p: Path) -> list[tuple[str, str]]:
        """The nodes that pass the path's packets on, and how: ``bridged`` (pod to pod on one bridge: with
        bridge-nf-call-iptables, through the FORWARD chain too), ``out`` (a pod's packet routed off its bridge:
        to another node, outside, or to a ClusterIP, even one that sends it back to a pod of the same bridge),
        ``in`` (routed from another node to the node's pod), ``hairpin`` (a pod's ClusterIP connection DNATed
        back to itself) and ``nodeport`` (what reached a NodePort, DNATed and forwarded): those two are marked
        for masquerade (0x4000), which kube-proxy's KUBE-FORWARD chain accepts (iptables mode). A node's own
        packets are not forwarded by it."""
        s, d = self.node_of(p.src), self.node_of(p.dst)
        out: list[tuple[str | None, str]] = []
        if p.entry is None:
            if s == d and p.src in self.pods:
                out.append((s, "bridged"))
            else:
                out += [(s, "out")] if p.src in self.pods else []
                out += [(d, "in")] if d != s else []
        elif p.entry == "ClusterIP":
            out += [(s, "hairpin" if p.src == p.dst else "out")] if p.src in self.pods else []
            out += [(d, "in")] if d != s else []
        else:
            out += [(p.entry, "nodeport")] if p.src != p.entry else []
            out += [(d, "in")] if d != p.entry else []
        return [(n, how) for n, how in out if n is not None]

    def crosses(self, p: Path, a: str, b: str | None) -> bool:
        """The path's packets go between nodes ``a`` and ``b`` (None: any other) across the pod network (the
        overlay, or host-gw's routes): from one end's pod or the node itself (or a NodePort's node) to a pod of
        the other."""
        s, d = self.node_of(self.sender(p)), self.node_of(p.dst)
        if p.dst not in self.pods or s == d or a not in (s, d):
            return False
        return b is None or b in (s, d)


def _path_fails(name: str, p: Path, w: _Where, target: NodeInfo | PodInfo, row: dict) -> bool:
    """Whether scenario ``name`` on ``target`` breaks one path."""
    if name in ("bridge-port-down", "bridge-port-disabled"):  # the pod's every frame crosses that port
        return target.name in (p.src, p.dst)
    assert isinstance(target, NodeInfo)
    peer = peer_node(w.lab, target)
    if name in ("vxlan-arp-missing", "vxlan-fdb-wrong-vtep", "vxlan-wrong-vni", "pod-cidr-route-missing"):
        if name == "pod-cidr-route-missing" and w.lab.mode == "host-gw" and w.sender(p) == peer.name:
            # With host-gw the peer node's own packets (and what it masquerades) leave from its eth0 address,
            # which the node reaches by the underlay: the pods' replies need no route to the peer's pod CIDR.
            return False
        # A VNI of its own cuts the node off from every other node; the other faults are in what it holds
        # about its peer (an ARP or FDB entry, a route).
        return w.crosses(p, target.name, None if name == "vxlan-wrong-vni" else peer.name)
    if name == "ip-forward-off":  # every routed hop of the node
        return any(n == target.name and how != "bridged" for n, how in w.hops(p))
    if name == "forward-policy-drop":
        # Every hop through its FORWARD chain; in iptables mode, kube-proxy's KUBE-FORWARD there accepts those
        # marked for masquerade. In nftables mode its table is not iptables' filter table: its accepts cannot
        # overrule the policy of another (a packet must pass every table's forward hook), so those are dropped too.
        blocked = ("bridged", "out", "in") if w.lab.topo.cluster.kube_proxy_mode == "iptables" else \
            ("bridged", "out", "in", "hairpin", "nodeport")
        return any(n == target.name and how in blocked for n, how in w.hops(p))
    if name == "rp-filter-strict":
        if not w.crosses(p, target.name, peer.name):
            return False
        if w.sender(p) != peer.name:
            return True
        # The peer node itself reaches the node's pods straight from its eth0 address: its packets pass, but that
        # source is outside the pod network, so the peer's FLANNEL-POSTRTG masquerades it (--random-fully: a new
        # source port), and its own NodePorts' masquerade picks that address: TCP and UDP fail the no-NAT check.
        dst = w.lab.pod(p.dst)
        return row["protocol"] != "icmp" and bool(pod_echo_ports(dst))
    raise ValueError(name)


def meets_a_flow(name: str, lab: Lab, node: NodeInfo) -> bool:
    """Whether some flow ``netlab probe`` sends would meet scenario ``name`` broken on ``node`` (symptoms.expect's
    verdict of it not "pass"), for the node scenarios judged by their flows' paths and pod-mtu-too-big (True for
    the others: catalogue.target_problem says what they need). A node with no pods of its own, no NodePort it
    forwards and no pods on the peer it is about forwards and sends nothing the fault could stop (ip-forward-off
    on a node with no pods changed no flow)."""
    if name not in NODE_PATH_SCENARIOS and name != "pod-mtu-too-big":
        return True
    here = {p.name for p in lab.pods_on(node.name)}
    elsewhere = {p.name for p in lab.pods} - here
    others = {n.name for n in lab.nodes} - {node.name}
    where = _Where(lab)
    for row in _rows_at(lab, node):
        if row.get("expected") == "unreachable":  # a policy denies it: no fault changes what probe expects of it
            continue
        src, dst = row["source"], row["destination"]
        if name == "pod-mtu-too-big":  # symptoms.expect's rule: full-size echoes across the node's underlay port
            if row["protocol"] == "mtu" and ((src in here | {node.name} and dst in elsewhere) or
                                             (src in elsewhere | others and dst in here)):
                return True
        elif any(_path_fails(name, p, where, node, row) for p in paths(row, lab)):
            return True
    return False


def _rows_at(lab: Lab, node: NodeInfo) -> Iterable[dict]:
    """The probe rows (as :func:`expect` reads them) whose path may touch ``node``: from its pods and itself to
    every pod, from every pod and node to its pods (build_matrix's ICMP, full-size, and TCP and UDP to the ports it
    probes), a ClusterIP from its pods, and what reaches its NodePort from the other nodes (build_matrix and
    probe/services.py). Each with ``expected`` "unreachable" where the NetworkPolicies deny it, as probe judges
    it (probe/policy.py: policy_judge, ServiceJudge); a Service flow probe leaves out (the policies allow some of
    its endpoints only) is left out."""
    here = lab.pods_on(node.name)
    names = {p.name for p in here}
    everyone = [p.name for p in lab.pods] + [n.name for n in lab.nodes]
    pairs = [(src, dst.name) for src in [p.name for p in here] + [node.name] for dst in lab.pods] + \
        [(src, dst) for src in everyone for dst in sorted(names)]
    eps, judge, sj = endpoints(lab), policy_judge(lab), service_judge(lab)

    def expected(allowed: bool | None) -> str:
        return "reachable" if allowed is not False else "unreachable"

    for src, dst in pairs:
        if src == dst:
            continue
        flows = [("mtu", None), ("icmp", None)] + [(proto, port) for port, proto, _ in probe_ports(lab.pod(dst))]
        for proto, port in flows:
            allowed = judge(eps[src], eps[dst], "icmp" if proto == "mtu" else proto, port)[0] if judge else True
            yield {"source": src, "destination": dst, "protocol": proto, "port": port, "service": None,
                   "expected": expected(allowed)}
    for svc in lab.services:
        for port in svc.ports:
            eps_t = lab.endpoints(svc, port)
            ends = [{"pod": p.name, "node": p.node} for p, _ in eps_t]
            if not ends:
                continue
            proto, targets = port.protocol.lower(), [(p.name, n) for p, n in eps_t]
            if svc.cluster_ip != "None":
                for src in sorted(names):
                    allowed = sj.clusterip(src, targets, proto)[0] if sj else True
                    if allowed is not None:
                        yield {"source": src, "destination": svc.name, "protocol": proto, "service": {
                            "name": svc.name, "via": "ClusterIP", "endpoints": ends}, "expected": expected(allowed)}
            local = [e for e in ends if e["node"] == node.name]
            if svc.type == "ClusterIP" or (svc.external_traffic_policy == "Local" and not local):
                continue  # no NodePort, or one that drops what has no endpoint on the node (Local)
            picked = local if svc.external_traffic_policy == "Local" else ends
            for other in lab.nodes:
                if other.name != node.name:
                    allowed = sj.nodeport(eps[other.name], node, [(e["pod"], n) for e in picked for p, n in
                                                                  targets if p == e["pod"]], proto)[0] if sj else True
                    if allowed is not None:
                        yield {"source": other.name, "destination": node.name, "protocol": proto,
                               "service": {"name": svc.name, "via": "NodePort", "node": node.name,
                                           "endpoints": picked}, "expected": expected(allowed)}
