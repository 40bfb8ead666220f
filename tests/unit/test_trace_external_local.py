"""The trace of an externalTrafficPolicy Local nodePort, with a fake kernel (no root): a node without an endpoint
of its own drops an outside client's packet ("has no local endpoints", named as such, not as a missing DNAT),
and the chain that picked the endpoint on a node with one is KUBE-SVL, a pod's KUBE-SVC (short-circuit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from test_trace_service_paths import traced
from test_trace_walk import FakeKernel, lab_from

ROOT = Path(__file__).resolve().parents[2]


def build(mode: str):
    """topologies/services.yaml with web-np Local and web-2 moved to node-1: node-2 has no endpoint."""
    text = (ROOT / "topologies/services.yaml").read_text()
    text = text.replace("  - name: web-2\n    node: node-2", "  - name: web-2\n    node: node-1")
    text = text.replace("    type: NodePort\n", "    type: NodePort\n    externalTrafficPolicy: Local\n")
    text = text.replace("name: svc\n", f"name: svc\ncluster: {{kubeProxyMode: {mode}}}\n")
    lab = lab_from(text)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


@pytest.fixture(params=["iptables", "nftables"])
def local(request):
    return build(request.param)


def test_a_node_without_its_own_endpoint_drops_the_outside_clients_packet():
    _, m, k = build("iptables")  # the fake kernel has iptables tables (nftables: the root test)
    w, v = traced(m, k, Flow("tcp", "203.0.113.10", "192.168.122.3", 40000, 30080), src="svc-example")
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-2", "dnat"), [(h.netns, h.kind) for h in w.hops]
    assert "default/web-np:http has no local endpoints" in lost.decision
    assert "externalTrafficPolicy Local and no endpoint on node-2" in v.reason
    assert lost.facts.get("no_local_endpoints") is True


def test_the_facts_name_the_chain_that_picks_and_where_it_drops(local):
    lab, m, _ = local
    (np,) = [s for s in m.services if s.name == "default/web-np:http"]
    assert np.local_nodes == ("node-1",)
    assert np.dropped_on("node-2", "203.0.113.10", "192.168.122.3")
    assert not np.dropped_on("node-1", "203.0.113.10", "192.168.122.2")
    assert not np.dropped_on("node-2", "10.244.1.5", "192.168.122.3")  # a pod's: short-circuited, not dropped
    assert np.chain_for("203.0.113.10", "192.168.122.2") == np.local_chain
    assert np.local_chain.startswith("KUBE-SVL-" if lab.topo.cluster.kube_proxy_mode == "iptables" else "local-")
    assert np.chain_for("10.244.0.4", "192.168.122.2") == np.svc_chain
    (web,) = [s for s in m.services if s.name == "default/web:http"]
    assert web.local_chain is None and not web.dropped_on("node-2", "203.0.113.10", "192.168.122.3")


def test_internal_local_cluster_ip_from_a_node_without_an_endpoint_is_dropped_there():
    text = (ROOT / "topologies/services.yaml").read_text()
    text = text.replace("  - name: web-2\n    node: node-2", "  - name: web-2\n    node: node-1")
    text = text.replace("  - name: client\n    node: node-1", "  - name: client\n    node: node-2")
    text = text.replace("    type: ClusterIP\n", "    type: ClusterIP\n    internalTrafficPolicy: Local\n", 1)
    lab = lab_from(text)
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    client = str(lab.pod("client").ip)
    w, v = traced(m, k, Flow("tcp", client, "10.96.0.20", 40000, 80))
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-2", "dnat"), [(h.netns, h.kind) for h in w.hops]
    assert "internalTrafficPolicy Local and no endpoint on node-2" in v.reason
    # the rule the kernel holds, named as iptables-save prints it
    assert 'the filter rule `-A KUBE-SERVICES -d 10.96.0.20/32 ' in v.reason
    assert '"default/web:http has no local endpoints" -m tcp --dport 80 -j DROP` drops the packet' in v.reason
