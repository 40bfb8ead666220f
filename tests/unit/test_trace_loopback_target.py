"""trace to 127.0.0.1 is the sender's own loopback (no root; qa58k #3).

A node's 127.0.0.1 and a nodePort is that Service (kube-proxy's iptables mode serves localhost nodePorts, with
route_localnet=1); a pod's or an internet host's 127.0.0.1 is its own loopback. trace refused every such
destination: "127.0.0.1 is not an address of lab L".
"""

from __future__ import annotations

from netlab.trace.flow import Flow
from netlab.trace.targets import resolve_source, resolve_target
from test_trace_walk import lab_from

TOPOLOGY = """name: lo
nodes: [{name: n1}]
internet:
  hosts: [{name: ext, ip: 203.0.113.50}]
pods:
  - {name: web, node: n1, labels: {app: web}}
  - {name: client, node: n1}
services:
  - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
"""


def test_a_nodes_loopback_on_a_node_port_is_that_service():
    lab = lab_from(TOPOLOGY)
    dst = resolve_target(lab, "127.0.0.1", None, 30080, resolve_source(lab, "n1"))
    assert (dst.name, dst.kind, dst.ip, dst.netns) == ("the node's own loopback", "node", "127.0.0.1", "lo-n1")
    assert (dst.service, dst.port, dst.proto) == ("web", 30080, "tcp")


def test_a_pods_and_a_hosts_loopback_are_their_own():
    lab = lab_from(TOPOLOGY)
    for src, words, ns in (("client", "the pod's own loopback", "lo-client"), ("ext", "the host's own loopback",
                                                                               "lo-ext")):
        dst = resolve_target(lab, "127.0.0.1", None, 30080, resolve_source(lab, src))
        assert (dst.name, dst.kind, dst.netns, dst.service) == (words, "ip", ns, None), dst


def test_nftables_modes_words_say_it_serves_no_localhost_node_port():
    from netlab.trace.kubeproxy_nft import no_localhost_nodeport

    said = no_localhost_nodeport("default/web:http", Flow("tcp", "127.0.0.1", "127.0.0.1", 40000, 30080))
    assert "kube-proxy in nftables mode serves no nodePort on 127.0.0.1" in said, said
