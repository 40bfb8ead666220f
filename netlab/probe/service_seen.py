"""The client address a Service's endpoint must see, by the path the connection takes through kube-proxy's NAT.

Which client address the endpoint's echo server must report (checked on every
reply; all verified against the kernel):

- ClusterIP from a pod: the pod's own address and port, nothing but the
  destination is translated (rule 1); except hairpin, a pod reaching itself
  through its Service: ``KUBE-SEP -s <pod> -j KUBE-MARK-MASQ`` masquerades it to
  its node's cni0 address;
- NodePort on node M: ``KUBE-EXT`` marks it, so M masquerades it with M's
  address towards the endpoint: cni0's when the endpoint is on M, else the
  address of the interface to the endpoint's node (flannel.1's with VXLAN,
  eth0's with host-gw);
- NodePort of an externalTrafficPolicy Local Service on node M from outside M:
  no masquerade, the endpoint (one of M's own) sees the client's own address;
  M without an endpoint drops it ("has no local endpoints"): unreachable. M's
  own connection is short-circuited to every endpoint, masqueraded, as above;
- LoadBalancer: the gateway routes the LoadBalancer IP to a node (plan/internet.py: no NAT), whose kube-proxy
  DNATs it (``"<svc> loadbalancer IP"``) and masquerades it (KUBE-EXT): the endpoint sees one of the nodes'
  addresses towards it, never the internet host's; with externalTrafficPolicy Local the gateway routes only to
  the nodes whose health check answers 200, which keep the source: the endpoint sees the internet host's own
  address;
- externalIP: the node that takes it (a pod's or node's own; the first node, where the gateway
  routes it, for an internet host) masquerades it to its address towards the endpoint; with
  externalTrafficPolicy Local a pod keeps its address, a node is masqueraded, and an internet host keeps its
  address at the first node's own endpoints (none: dropped);
- egress (matrix.py): the host sees the gateway's address, never a pod's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.model import naming
from netlab.probe.matrix import SeenRule

if TYPE_CHECKING:
    from netlab.model.lab import Lab, NodeInfo, PodInfo


def node_address_towards(lab: "Lab", node: "NodeInfo", pod: "PodInfo") -> str:
    """The source address MASQUERADE gives a packet from ``node`` to ``pod``: the address
    of the interface the node routes it out of (cni0 for its own pods; flannel.1's /32
    with VXLAN, eth0's with host-gw, for pods on other nodes)."""
    if pod.node == node.name:
        return str(node.gateway.ip)
    return str(node.vtep_ip) if lab.mode == "vxlan" else str(node.ip)


def bridge_words(bridge: str | None) -> str:
    """How a node's pod-side address is named: its bridge's (cni0, or a conflist's own), else the pods' gateway."""
    return f"{bridge} address" if bridge else "pod gateway address"


def clusterip_rule(lab: "Lab", client: "PodInfo", endpoint: str, server: str, bridge: str | None = naming.BRIDGE
                   ) -> SeenRule:
    if endpoint == client.name:
        node = lab.node(client.node)
        gw = str(node.gateway.ip)
        return SeenRule(endpoint, (gw,), f"hairpin: a pod reaching itself through its Service is masqueraded to "
                                         f"{node.name}'s {bridge_words(bridge)} {gw} (KUBE-SEP marks it)",
                        server=server)
    # The address, not the port: conntrack may give a flow another source port when its reply tuple
    # would clash with another flow's after DNAT (one client port to two Services with a common
    # endpoint); that keeps flows apart and is not NAT of the client (sockets.py, on Service probes).
    return SeenRule(endpoint, (str(client.ip),), "pod to Service to pod: only the destination is translated "
                                                 "(rule 1: no NAT)", server=server)


def nodeport_rule(lab: "Lab", node: "NodeInfo", endpoint: "PodInfo", server: str) -> SeenRule:
    addr = node_address_towards(lab, node, endpoint)
    return SeenRule(endpoint.name, (addr,), f"a NodePort connection is masqueraded by {node.name} (KUBE-EXT marks "
                                            f"it) to its address towards {endpoint.name}", server=server)


def lb_rule(lab: "Lab", endpoint: "PodInfo", server: str) -> SeenRule:
    addrs = tuple(dict.fromkeys(node_address_towards(lab, m, endpoint) for m in lab.nodes))
    return SeenRule(endpoint.name, addrs, "the gateway routes the LoadBalancer IP to a node, whose kube-proxy DNATs "
                                          "it and masquerades it (KUBE-EXT): never the internet host's address",
                    server=server)


def lb_local_rule(lab: "Lab", endpoint: "PodInfo", server: str, client: str) -> SeenRule:
    return SeenRule(endpoint.name, (client,), "the gateway routes the LoadBalancer IP to a node with an endpoint of "
                                              "its own (its health check answers 200), whose kube-proxy DNATs it "
                                              "and keeps the internet host's address (externalTrafficPolicy "
                                              "Local)", server=server)
