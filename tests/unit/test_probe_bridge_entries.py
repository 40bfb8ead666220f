"""The neighbour entries probe counts and deletes name the node's side of each pod as the lab has it: its bridge
(cni0, a conflist's own such as qnbr0), or, without a bridge (ptp), the node's end of the pod's veth, which
routes the pod alone: two pods of one node then resolve their gateway, not each other."""

from __future__ import annotations

import pytest

from helpers import resolved, write_conflist
from netlab.model.lab import CniAttachment
from netlab.plan.cniadd import pod_bridge
from netlab.probe import neighbours as nb
from netlab.probe import service_paths
from netlab.probe import services as svcs
from netlab.probe.job import make_job
from netlab.probe.matrix import build_matrix, endpoints

QNBR = {"type": "bridge", "bridge": "qnbr0", "isGateway": True, "capabilities": {"ipRanges": True},
        "ipam": {"type": "host-local"}}
PTP = {"type": "ptp", "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}}
BASH = {"type": "bash-bridge", "bridge": "bashbr0", "capabilities": {"ipRanges": True}}


def lab_of(tmp_path, plugins: list):
    write_conflist(tmp_path, plugins)
    return resolved(tmp_path, """name: be
network: {cni: {conflist: net.conflist, binDir: bin}}
nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]
pods:
  - {name: a, node: n1, ip: 10.244.0.2, labels: {app: web}}
  - {name: b, node: n1, ip: 10.244.0.3}
  - {name: c, node: n2, ip: 10.244.1.2, labels: {app: web}}
services:
  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
""")


def attached(lab, bridge: str | None):
    """The lab as up left it: each pod's CNI result names its veth's end (and the bridge, when there is one)."""
    return lab.with_attachments({p.name: CniAttachment(ip=p.ip, host_veth=f"veth{i:08x}", host_ifaces=(
        (bridge,) if bridge else ()) + (f"veth{i:08x}",)) for i, p in enumerate(lab.pods)})


def node_side(entries) -> set[str]:
    return {e.ifname for e in entries if e.netns in ("be-n1", "be-n2") and e.ifname != "eth0"}


def test_a_conflist_bridge_labs_entries_are_on_its_bridge(tmp_path):
    lab = lab_of(tmp_path, [QNBR])
    e = endpoints(lab)
    assert nb.path_entries(lab, e["n1"], e["a"]) == [("be-n1", "qnbr0", "10.244.0.2"), ("be-a", "eth0", "10.244.0.1")]
    assert set(nb.path_entries(lab, e["a"], e["c"])) >= {("be-n1", "qnbr0", "10.244.0.2"),
                                                         ("be-n2", "qnbr0", "10.244.1.2")}
    # one bridge: a and b resolve each other
    assert nb.path_entries(lab, e["a"], e["b"]) == [("be-a", "eth0", "10.244.0.3"), ("be-b", "eth0", "10.244.0.2")]
    plan = svcs.build(lab)
    job = make_job(lab, build_matrix(lab, ["icmp", "tcp"]) + plan.probes, 1.0, budget=400)
    assert node_side(x for u in job.units for x in u.entries) == {"qnbr0"}  # no cni0: the node has none


def test_a_ptp_labs_entries_are_on_each_pods_veth_and_its_pods_are_routed(tmp_path):
    lab = attached(lab_of(tmp_path, [PTP]), None)
    assert pod_bridge(lab) is None
    e = endpoints(lab)
    veth = {p.name: p.host_veth for p in lab.pods}
    assert nb.path_entries(lab, e["n1"], e["a"]) == [("be-n1", veth["a"], "10.244.0.2"),
                                                     ("be-a", "eth0", "10.244.0.1")]
    # two pods of one node: no L2 between them, each resolves its gateway and the node each pod on its veth
    assert set(nb.path_entries(lab, e["a"], e["b"])) == {
        ("be-a", "eth0", "10.244.0.1"), ("be-n1", veth["a"], "10.244.0.2"),
        ("be-b", "eth0", "10.244.0.1"), ("be-n1", veth["b"], "10.244.0.3")}
    probes = build_matrix(lab, ["icmp"])
    assert not [p for p in probes if p.same_bridge]
    job = make_job(lab, probes, 1.0, budget=400, arp="seeded")
    assert not [u for u in job.units if u.seed]  # nothing to seed: no pods share a segment
    # a ClusterIP endpoint on the client's node answers through its gateway too
    (cl,) = [p for p in svcs.build(lab).probes if p.svc is not None and p.svc.kind == "ClusterIP"
             and p.source.name == "a" and p.proto == "tcp" and p.svc.service.endswith("web")]
    entries = set(service_paths.path_entries(lab, cl))
    assert ("be-c", "eth0", "10.244.1.1") in entries and ("be-n1", veth["a"], "10.244.0.2") in entries
    assert node_side(entries) <= set(veth.values()) | {"eth0"}


@pytest.mark.parametrize("plugins, results, bridge", [
    ([BASH], "bashbr0", "bashbr0"),  # any plugin's bridge, named by its results
    ([QNBR], "qnbr0", "qnbr0"),
    ([QNBR], None, "qnbr0")])  # a state from before the results were read: the conflist says
def test_pod_bridge_of_a_running_lab_is_the_one_its_plugins_results_name(tmp_path, plugins, results, bridge):
    lab = lab_of(tmp_path, plugins)
    running = attached(lab, results) if results else lab
    assert pod_bridge(running) == bridge
    e = endpoints(running)
    assert nb.path_entries(running, e["n1"], e["b"])[0] == ("be-n1", bridge, "10.244.0.3")


def test_the_state_gives_back_the_interfaces_a_result_named_on_the_node():
    from ipaddress import IPv4Address

    from netlab.realize.attachments import attachment_json, attachments

    class State:
        extra = {"cni": {"pods": {"a": {"phase": "added", "attachment": attachment_json(
            CniAttachment(ip=IPv4Address("10.244.0.2"), host_veth="veth0000000a"), ["qnbr0", "veth0000000a"])}}}}

    att = attachments(State())["a"]  # type: ignore[arg-type]
    assert att.host_ifaces == ("qnbr0", "veth0000000a") and att.bridge == "qnbr0"
    assert CniAttachment(ip=att.ip, host_veth="veth0000000a", host_ifaces=("veth0000000a",)).bridge is None  # ptp


@pytest.mark.parametrize("running", [False, True])
def test_a_ptp_labs_full_mesh_is_two_entries_a_pod(tmp_path, running):
    """ptp: a pod resolves only its gateway (the node's end of its veth), its node resolves it on that veth; the
    two nodes each other on the underlay. A bridge of pods adds k*(k-1) per node, which ptp never makes (a root
    test counts the kernel's entries after all-pairs traffic: test_cni_ptp_trace)."""
    ptp = lab_of(tmp_path, [PTP])
    assert [p.name for p in ptp.pods_on("n1")] == ["a", "b", "kube-dns"] and len(ptp.pods) == 4
    assert nb.full_mesh_entries(attached(ptp, None) if running else ptp) == 2 * 4 + 2
    assert nb.full_mesh_entries(lab_of(tmp_path, [QNBR])) == 3 * 2 + 2 * 4 + 2  # n1's three resolve each other


def test_a_ptp_labs_budget_warning_names_no_bridge(tmp_path):
    write_conflist(tmp_path, [PTP])
    pods = "".join(f"  - {{name: p{i}, node: n1}}\n" for i in range(40))
    big = resolved(tmp_path, "name: big\nnetwork: {cni: {conflist: net.conflist, binDir: bin}}\n"
                             f"nodes: [{{name: n1}}]\npods:\n{pods}")
    limits = {"gc_thresh1": 8, "gc_thresh2": 32, "gc_thresh3": 64}
    assert nb.full_mesh_entries(big) == 80  # 40 * 39 + 80 on one bridge: the default table would refuse it
    assert nb.fits(80, nb.DEFAULTS)
    warning = nb.neighbour_budget_warning(big, limits)
    assert warning is not None and "(40 pods, each on its own routed veth)" in warning and "bridge" not in warning
