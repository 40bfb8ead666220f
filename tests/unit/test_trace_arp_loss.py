"""A next hop's ARP entry left INCOMPLETE by an impairment's loss is blamed on it (netlab/trace/arploss.py; no root).

netlab's loss drops ARP frames too, as a wire does: a target whose answers are dropped on their way back (its own
eth0's loss, on its veth peer's ingress; a node's cni0 answering for the gateway, on cni0's egress; a node's eth0 on
the underlay) was said to be "nothing on that link answers for" it. The chain's counter, when read, proves it.
"""

from __future__ import annotations

from helpers import two_node
from netlab.errors import netlab_command
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.plan.build import build_plan
from netlab.trace import arploss, lossblame
from netlab.trace.flow import Flow, Packet
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel


def world(impair: dict[str, dict], mode: str = "vxlan"):
    """The two-node lab with ``impair`` (a pod's or node's name -> its impair:) and the fake kernel."""
    data = two_node("demo", mode)
    for item in data["nodes"] + data["pods"]:
        if item["name"] in impair:
            item["impair"] = impair[item["name"]]
    lab = resolve(Topology.model_validate(data))
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def traced(lab, m, k, src, dst, rose=None):
    """The walk of a ping, its verdict with the impairments, and the lost row."""
    w = walk(k, m, src, Flow.icmp(None, dst, 7))
    v = lossblame.impaired(lossblame.losses(lab), explain(w, lab="demo"), w.hops, "demo",
                           arploss.ArpLoss(arploss.answerers(lab), rose))
    return v, w.hops[v.lost_at]


LOSS = {"eth0": {"loss": "100%"}}


def test_a_pods_answers_dropped_by_its_own_loss_are_why_a_pod_of_its_node_has_no_entry():
    lab, m, k = world({"fedora-3": LOSS})
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.0.3")
    peer = lab.pod("fedora-3").host_veth
    assert v.reason == (f"fedora-3:eth0 has netlab's impairment loss 100%: chain loss-fedora-3-eth0 of table netdev "
                        f"netlab-impair in demo-minikube drops every frame arriving on {peer}, fedora-3:eth0's veth peer "
                        "(loss on the wire: the sender is not told), ARP answers too: fedora-3 answers who-has "
                        "10.244.0.3, and its answers to eth0 in demo-fedora-1 are dropped there, so the entry stays "
                        "INCOMPLETE and the packet went no further"), v.reason
    assert v.fix == netlab_command('impair --lab demo fedora-3:eth0 --clear')
    assert (row.kind, row.netns, row.problem, row.fix) == ("neigh", "demo-fedora-1", v.reason, v.fix)
    assert "nothing on that link answers" not in row.problem


def test_the_chains_counter_proves_it_or_clears_it():
    """Risen during the trace: said. Read and not risen: the loss dropped no answer, the target does not answer."""
    lab, m, k = world({"fedora-3": LOSS})
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    v, _ = traced(lab, m, k, "demo-fedora-1", "10.244.0.3", {("demo-minikube", "loss-fedora-3-eth0"): 3})
    assert "are dropped there (the chain's counter rose by 3 during the trace), so the entry" in v.reason, v.reason
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.0.3", {("demo-minikube", "loss-fedora-3-eth0"): 0})
    assert v.fix is None and "nothing on that link answers for 10.244.0.3 (fedora-3)" in v.reason == row.problem


def test_a_loss_off_the_answers_way_is_not_blamed():
    """fedora-2's loss drops what fedora-2 sends, not fedora-3's answers to fedora-1."""
    lab, m, k = world({"fedora-2": LOSS, "minikube": {"cni0": {"loss": "100%"}}})
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    v, _ = traced(lab, m, k, "demo-fedora-1", "10.244.0.3")
    assert v.fix is None and "nothing on that link answers for 10.244.0.3" in v.reason  # cni0 switched, not sent


def test_across_nodes_the_gateways_answers_and_the_far_pods_are_blamed():
    """fedora-1 asks for its gateway, cni0's address: cni0's loss drops the node's answer leaving by cni0. The far
    node asks on its cni0 for fedora-2: fedora-2's own loss drops the answer."""
    lab, m, k = world({"minikube": {"cni0": {"loss": "100%"}}, "fedora-2": LOSS})
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.1")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.1.3")
    assert row.netns == "demo-fedora-1" and v.reason.startswith(
        "minikube:cni0 has netlab's impairment loss 100%: chain loss-minikube-cni0 of table netdev netlab-impair in "
        "demo-minikube drops every frame leaving by cni0, ARP answers too: minikube answers who-has 10.244.0.1, and "
        "its answers to eth0 in demo-fedora-1 are dropped there"), v.reason
    del k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.1")]
    k.no_neigh[("demo-minikube-m02", "cni0", "10.244.1.3")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.1.3")
    assert (row.netns, row.device) == ("demo-minikube-m02", "cni0")
    assert v.reason.startswith("fedora-2:eth0 has netlab's impairment loss 100%") and "ARP answers too: fedora-2 " \
        "answers who-has 10.244.1.3, and its answers to cni0 in demo-minikube-m02 are dropped there" in v.reason
    assert v.fix == netlab_command('impair --lab demo fedora-2:eth0 --clear')


def test_host_gw_the_far_nodes_eth0_loss_drops_its_answers_on_the_underlay():
    lab, m, k = world({"minikube-m02": LOSS}, mode="host-gw")
    k.no_neigh[("demo-minikube", "eth0", "192.168.122.7")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.1.3")
    assert (row.netns, row.device, row.kind) == ("demo-minikube", "eth0", "neigh")
    assert v.reason.startswith("minikube-m02:eth0 has netlab's impairment loss 100%: chain loss-minikube-m02-eth0 of "
                               "table netdev netlab-impair in demo-underlay drops every frame arriving on "), v.reason
    assert "ARP answers too: minikube-m02 answers who-has 192.168.122.7" in v.reason


def test_flannels_static_entries_ask_nothing_so_a_flannel_loss_is_the_packets_loss_not_arps():
    """flannel.1's next hops are Flannel's PERMANENT entries: a missing one is that entry (its fix), whatever loss
    the far flannel.1 has; and a flannel.1 loss drops the packet leaving by it (not seen there), said as such."""
    lab, m, k = world({"minikube-m02": {"flannel.1": {"loss": "100%"}}, "minikube": {"flannel.1": {"loss": "50%"}}})
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "INCOMPLETE"
    v, row = traced(lab, m, k, "demo-fedora-1", "10.244.1.3")
    assert "nolearning VXLAN device cannot resolve it" in v.reason and "impair" not in v.fix
    del k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")]
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7))
    seen = [Packet(h.observe.netns, h.observe.ifname, h.observe.direction, float(i), h.observe.flow, "request")
            for i, h in enumerate(w.hops) if h.observe and (h.observe.netns, h.observe.ifname) != ("demo-minikube",
                                                                                                   "flannel.1")
            and h.observe.netns in ("demo-fedora-1", "demo-minikube")]
    mark_seen(w.hops, seen, {h.netns for h in w.hops})
    v = lossblame.impaired(lossblame.losses(lab), explain(w, lab="demo"), w.hops, "demo",
                           arploss.ArpLoss(arploss.answerers(lab)))
    assert v.reason.startswith("minikube:flannel.1 has netlab's impairment loss 50%: chain loss-minikube-flannel.1 "
                               "of table netdev netlab-impair in demo-minikube drops 50% of the frames, at random, "
                               "leaving by flannel.1, and the packet went no further"), v.reason


def test_a_vxlan_devices_answer_leaves_its_node_by_eth0_too():
    lab, *_ = world({})
    assert arploss.answerers(lab)["10.244.1.0"] == ("minikube-m02:flannel.1", "minikube-m02:eth0")
    assert arploss.answerers(lab)["10.244.0.1"] == ("minikube:cni0",)


def test_counters_from_nft_json():
    listing = {"nftables": [{"metainfo": {}}, {"table": {"family": "netdev", "name": "netlab-impair"}},
                            {"chain": {"name": "loss-a-eth0"}},
                            {"rule": {"chain": "loss-a-eth0", "expr": [{"counter": {"packets": 4, "bytes": 168}},
                                                                       {"drop": None}]}}]}
    assert arploss.chain_counts(listing) == {"loss-a-eth0": 4} and arploss.chain_counts(None) == {}
    assert arploss.rose({("n", "c"): 4, ("n", "d"): 1}, {("n", "c"): 7}) == {("n", "c"): 3}
