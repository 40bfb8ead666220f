"""The neighbour entries a Service or egress probe's packets create (probe/job.py counts and sweeps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.model import naming
from netlab.model.addressing import underlay_gateway
from netlab.probe.matrix import Endpoint, Probe, lab_bridge
from netlab.probe.neighbours import Entry, node_devices

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo


def path_entries(lab: "Lab", probe: Probe) -> list[Entry]:
    """Dynamic neighbour entries (netns, ifname, ip) a Service or egress probe and its replies create.

    Like neighbours.path_entries for pod-to-pod probes: the prober counts them
    against its budget and deletes them when no running probe needs them.
    With an internet, the run also snapshots and sweeps the gateway's and the
    hosts' namespaces.
    """
    nodes = {n.name: n for n in lab.nodes}
    pods = {p.name: p for p in lab.pods}
    inet = lab.topo.internet
    names = dict(lab.internet_hosts)
    out: list[tuple[str, str, str]] = []
    gw_ns = names.get("gateway", "")
    gw_under = str(underlay_gateway(lab.topo.network.underlay.cidr)) if inet else ""
    gw_inet = str(inet.gateway.ip) if inet else ""
    eth0, dev = naming.NODE_IF, node_devices(lab)  # dev: pod -> its node's side (bridge, or the pod's veth)
    bridged = lab_bridge(lab) is not None

    def pod_gw(pod: "PodInfo") -> Entry:
        return Entry(pod.netns, eth0, str(nodes[pod.node].gateway.ip))

    def underlay(a: str, b: str) -> None:
        if a != b:
            out.append((nodes[a].netns, eth0, str(nodes[b].ip)))
            out.append((nodes[b].netns, eth0, str(nodes[a].ip)))

    def node_to_pod(m, pod) -> None:
        if pod.node == m.name:
            out.extend([(m.netns, dev[pod.name], str(pod.ip)), pod_gw(pod)])
        else:
            underlay(m.name, pod.node)
            out.extend([(nodes[pod.node].netns, dev[pod.name], str(pod.ip)), pod_gw(pod)])

    def host_to_node(host: Endpoint, m) -> None:
        out.extend([(host.netns, eth0, gw_inet), (gw_ns, "inet0", host.addr), (gw_ns, eth0, str(m.ip)),
                    (m.netns, eth0, gw_under)])

    s, d, t = probe.source, probe.destination, probe.svc
    if t is None:
        if d.kind == "host" and s.kind == "pod" and inet is not None:  # egress
            pod = pods[s.name]
            n = nodes[pod.node]
            out.extend([pod_gw(pod), (n.netns, dev[pod.name], s.addr), (n.netns, eth0, gw_under),
                        (gw_ns, eth0, str(n.ip)), (gw_ns, "inet0", d.addr), (d.netns, eth0, gw_inet)])
        return [Entry(*e) for e in out]
    members = [pods[name] for name, _, _ in t.endpoints if name in pods]
    if t.kind == "ClusterIP" and s.kind == "pod":
        client = pods[s.name]
        n = nodes[client.node]
        out.extend([pod_gw(client), (n.netns, dev[client.name], s.addr)])
        for e in members:
            if e.name == client.name:
                continue
            node_to_pod(n, e)  # the node's ARP request for the endpoint leaves it an entry for its gateway
            if e.node == client.node and bridged:
                # on one bridge the endpoint answers the client on the wire (without one, ptp, via its gateway):
                # its ARP request for the client leaves the client an entry for it
                out.extend([(e.netns, eth0, s.addr), (client.netns, eth0, str(e.ip))])
    elif t.kind == "NodePort" and t.node in nodes:
        m = nodes[t.node]
        if s.kind == "node":
            underlay(s.name, m.name)
        elif s.kind == "host" and inet is not None:
            host_to_node(s, m)
        for e in members:
            node_to_pod(m, e)
    elif t.kind == "ExternalIP":
        # the node that DNATs it: a pod's or a node's own, the first node for an internet host (the gateway's route)
        if s.kind == "pod":
            client = pods[s.name]
            m = nodes[client.node]
            out.extend([pod_gw(client), (m.netns, dev[client.name], s.addr)])
        else:
            m = nodes[s.name] if s.kind == "node" else next(iter(nodes.values()))
            if s.kind == "host" and inet is not None:
                host_to_node(s, m)
        for e in members:
            node_to_pod(m, e)
            if s.kind == "pod" and e.node == m.name and e.name != s.name and bridged:
                # externalTrafficPolicy Local: it answers the pod on cni0, and its ARP request for the pod leaves
                # the pod an entry for it (Cluster masquerades: neither is made, counted all the same)
                out.extend([(e.netns, eth0, s.addr), (pods[s.name].netns, eth0, str(e.ip))])
    elif t.kind == "LoadBalancer" and s.kind == "host" and inet is not None:
        # The host's entry for the LoadBalancer IP (the gateway's proxy ARP answers it), the gateway's for the host
        # and each node it routes the IP to, the node's for the gateway (the reply), and the node's way in.
        from netlab.plan.internet import balanced_nodes

        routed = next((ns for ip, ns in balanced_nodes(lab).items() if str(ip) == t.address), list(nodes.values()))
        out.extend([(s.netns, eth0, t.address), (gw_ns, "inet0", s.addr)])
        for m in routed:
            out.extend([(gw_ns, eth0, str(m.ip)), (m.netns, eth0, gw_under)])
            for e in members:
                node_to_pod(m, e)
    return [Entry(*e) for e in dict.fromkeys(out)]
