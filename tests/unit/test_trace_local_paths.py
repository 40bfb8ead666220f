"""The trace's missing rule when a Service keeps traffic local, with a fake kernel (no root), in both proxy modes.

An outside client's packet to a nodePort of an externalTrafficPolicy Local Service crosses only the last rule of
the Service's external chain (the first ones short-circuit pods and the node itself) and is picked in the node's
own endpoints' chain (KUBE-SVL-... / local-...), not in the Service's: a rule missing there is the reason the
node did not DNAT it, and one missing from the pods' short-circuit is not. The ClusterIP of an
internalTrafficPolicy Local Service is picked in that chain too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from test_trace_missing_rules import NftKernel, planned_rules, traced
from test_trace_walk import FakeKernel, lab_from

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE, NODE_1 = "203.0.113.10", "192.168.122.2"


def build(mode: str, policy: str = "externalTrafficPolicy", kind: str = "NodePort"):
    """topologies/services.yaml with both web pods on node-1 and web-np (``kind`` ClusterIP: web) keeping
    traffic Local by ``policy``."""
    text = (ROOT / "topologies/services.yaml").read_text()
    text = text.replace("  - name: web-2\n    node: node-2", "  - name: web-2\n    node: node-1")
    text = text.replace(f"    type: {kind}\n", f"    type: {kind}\n    {policy}: Local\n", 1)
    text = text.replace("name: svc\n", f"name: svc\ncluster: {{kubeProxyMode: {mode}}}\n")
    lab = lab_from(text)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), (NftKernel if mode == "nftables" else FakeKernel)(lab, plan)


def service(m, name):
    return next(s for s in m.services if s.name == name)


def take_away(k, mode: str, netns: str, lines: list[str]) -> None:
    """Delete planned rules from the fake kernel, as `iptables -t nat -D` / `nft delete rule` would."""
    (k.gone if mode == "nftables" else k.no_rule).update((netns, line) for line in lines)


def rules_of(m, k, mode: str, netns: str, chain: str) -> list[str]:
    if mode == "nftables":
        return planned_rules(k, netns, chain)
    return [line for line in m.planned_nat[netns].rules if line.split(None, 2)[1] == chain]


@pytest.fixture(params=["iptables", "nftables"])
def mode(request):
    return request.param


def test_an_outside_clients_packet_is_blamed_on_the_local_chain_it_is_picked_in(mode):
    _, m, k = build(mode)
    np = service(m, "default/web-np:http")
    local = rules_of(m, k, mode, "svc-node-1", np.local_chain)
    assert local, "the plan has the node's own endpoints' chain"
    take_away(k, mode, "svc-node-1", local)  # the chain flushed: nothing picks an endpoint any more
    w, v = traced(m, k, Flow("tcp", OUTSIDE, NODE_1, 40000, 30080), src="svc-example")
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-1", "dnat"), [(h.netns, h.kind) for h in w.hops]
    assert lost.facts["missing_rule"] in local, lost.facts
    assert "choice of one of the node's own endpoints" in v.reason
    assert np.svc_chain not in (lost.facts.get("missing_rule") or "")


def test_a_missing_pod_short_circuit_is_not_an_outside_clients_reason(mode):
    _, m, k = build(mode)
    np = service(m, "default/web-np:http")
    ext = rules_of(m, k, mode, "svc-node-1", np.ext_chain)
    pods = [line for line in ext if np.pod_cidr in line]
    assert len(pods) == 1, ext
    take_away(k, mode, "svc-node-1", pods + rules_of(m, k, mode, "svc-node-1", np.local_chain))
    w, v = traced(m, k, Flow("tcp", OUTSIDE, NODE_1, 40000, 30080), src="svc-example")
    lost = w.hops[v.lost_at]
    assert lost.facts["missing_rule"] != pods[0]
    assert lost.facts["missing_rule"] in rules_of(m, k, mode, "svc-node-1", np.local_chain)


def test_a_pods_packet_is_blamed_on_its_short_circuit_and_the_services_chain(mode):
    _, m, k = build(mode)
    np = service(m, "default/web-np:http")
    ext = rules_of(m, k, mode, "svc-node-1", np.ext_chain)
    (pods,) = [line for line in ext if np.pod_cidr in line]
    take_away(k, mode, "svc-node-1", [pods])
    w, v = traced(m, k, Flow("tcp", "10.244.0.3", NODE_1, 40000, 30080))
    lost = w.hops[v.lost_at]
    assert lost.facts["missing_rule"] == pods, lost.facts
    k2 = build(mode)[2]
    take_away(k2, mode, "svc-node-1", rules_of(m, k2, mode, "svc-node-1", np.svc_chain))
    w, v = traced(m, k2, Flow("tcp", "10.244.0.3", NODE_1, 40000, 30080))
    assert w.hops[v.lost_at].facts["missing_rule"] in rules_of(m, k2, mode, "svc-node-1", np.svc_chain)
    assert "choice of an endpoint" in v.reason


def test_a_clusterip_kept_local_is_blamed_on_the_local_chain(mode):
    _, m, k = build(mode, "internalTrafficPolicy", "ClusterIP")
    web = service(m, "default/web:http")
    assert web.internal_local and web.local_chain
    local = rules_of(m, k, mode, "svc-node-1", web.local_chain)
    picks = [line for line in local if "KUBE-MARK-MASQ" not in line and "mark-for-masquerade" not in line]
    take_away(k, mode, "svc-node-1", picks)
    w, v = traced(m, k, Flow("tcp", "10.244.0.3", "10.96.0.20", 40000, 80))
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-1", "dnat"), [(h.netns, h.kind) for h in w.hops]
    assert lost.facts["missing_rule"] in picks, lost.facts
    assert "choice of one of the node's own endpoints" in v.reason


def test_the_nodes_own_packet_is_short_circuited_not_dropped(mode):
    _, m, _ = build(mode)
    np = service(m, "default/web-np:http")
    node_2 = "192.168.122.3"  # no endpoint of its own
    assert np.dropped_on("node-2", OUTSIDE, node_2)
    assert not np.dropped_on("node-2", node_2, node_2, own=True)
    assert np.chain_for(node_2, node_2, own=True) == np.svc_chain
    assert np.chain_for(OUTSIDE, NODE_1) == np.local_chain
    assert np.sender("10.244.1.3", own=True) == "pod"  # the node's bridge address is in the pod CIDR


def test_a_nodeport_of_a_service_kept_local_only_inside_is_no_local_matter_for_outside_clients(mode):
    _, m, _ = build(mode, "internalTrafficPolicy")
    web_np = service(m, "default/web-np:http")
    assert web_np.internal_local and not web_np.external_local and web_np.local_chain
    assert not web_np.dropped_on("node-2", OUTSIDE, "192.168.122.3")
    assert web_np.chain_for(OUTSIDE, NODE_1) == web_np.svc_chain


def test_the_nodes_own_dnat_row_names_the_services_chain_that_picked(mode):
    """node-2 (no endpoint of its own) to its own nodePort: kube-proxy short-circuits the node's packet to every
    endpoint (``--src-type LOCAL`` / ``fib saddr type local``), so the row names the Service's chain."""
    from netlab.trace.facts import CtEntry
    from netlab.trace.walk import walk

    _, m, k = build(mode)
    np = service(m, "default/web-np:http")
    node_2 = "192.168.122.3"
    fwd = Flow("tcp", node_2, node_2, 40000, 30080)
    k.ct["svc-node-2"] = [CtEntry(fwd, Flow("tcp", "10.244.0.2", "10.244.1.0", 8080, 40000), "SYN_SENT")]
    w = walk(k, m, "svc-node-2", fwd)
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.facts["svc_chain"] == np.svc_chain, row.facts
    # the nodePort path, from the nodePort dispatch through the external chain to the chain that picked
    assert f" → {np.ext_chain} → {np.svc_chain} → " in row.decision and np.local_chain not in row.decision
