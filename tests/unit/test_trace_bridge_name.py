"""trace names the nodes' bridge of pods as the lab has it: cni0 (netlab's own, the reference list's) or a
conflist's bridge plugin's own (qnbr0), in the reset note of a REJECT and in the name of the pods' gateway; a lab
whose pods share no bridge (ptp) gets no such note, and its gateway is named on the pods' veths."""

from __future__ import annotations

import pytest

from helpers import CONFLIST, resolved, write_conflist
from netlab.plan.build import build_plan
from netlab.trace.labmap import LabMap
from netlab.trace.policy import unanswered_reset
from netlab.trace.targets import Endpoint

QNBR = {"type": "bridge", "bridge": "qnbr0", "isGateway": True, "capabilities": {"ipRanges": True},
        "ipam": {"type": "host-local"}}


def lab_with(tmp_path, cni: str, plugins: list | None = None):
    if plugins is not None:
        write_conflist(tmp_path, plugins)
    return resolved(tmp_path, f"""name: tb
network: {{cni: {cni}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: c1, node: n1}}]
""")


NO_GW = {k: v for k, v in QNBR.items() if k != "isGateway"}  # the pods' gateway is not on the bridge
# a range of its own, without the ipRanges capability (host-local refuses an own range overlapping the runtime's)
OWN = {k: v for k, v in QNBR.items() if k != "capabilities"}
OWN_RANGE = {**OWN, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]]}}  # another range's


@pytest.mark.parametrize("cni, plugins, bridge, gateway", [
    ("builtin", None, "cni0", "n1 cni0"), ("reference", None, "cni0", "n1 cni0"),
    (CONFLIST, [QNBR], "qnbr0", "n1 qnbr0"), (CONFLIST, [NO_GW], "qnbr0", None),
    (CONFLIST, [OWN_RANGE], "qnbr0", None)])
def test_the_reset_note_and_the_gateways_name_name_the_labs_bridge(tmp_path, cni, plugins, bridge, gateway):
    lab = lab_with(tmp_path, cni, plugins)
    c1 = Endpoint("c1", "pod", str(lab.pod("c1").ip))
    note = unanswered_reset(lab, c1, "n1", "n1", "10.96.0.11:80", "10.244.0.5", 8080)
    assert note is not None and f"the packet came in through {bridge}'s bridge port, so the REJECT" in note
    assert ("cni0" in note) == (bridge == "cni0")
    names = LabMap.from_lab(lab, build_plan(lab)).ip_names
    assert names.get("10.244.0.1") == gateway


PTP = {"type": "ptp", "ipam": {"type": "host-local"}}


@pytest.mark.parametrize("plugins, gateway", [
    ([PTP], "n1 pod veths"),  # ptp puts the node's range's gateway on each pod's host-side veth
    ([{**PTP, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]]}}], None),  # another range's
    ([{"type": "macvlan", "master": "eth0", "ipam": {"type": "host-local"}}], None)])  # no gateway of the node's
def test_a_labs_without_a_bridge_gets_no_reset_note_and_its_gateway_is_named_where_it_is(tmp_path, plugins, gateway):
    """No bridge (ptp): a REJECTed Service client on its endpoint's node is refused as any other (its packet came
    in by no bridge port), so trace adds no note; the pods' gateway is on the node's end of each pod's veth."""
    lab = lab_with(tmp_path, CONFLIST, plugins)
    note = unanswered_reset(lab, Endpoint("c1", "pod", str(lab.pod("c1").ip)), "n1", "n1", "10.96.0.11:80",
                            None, None)
    assert note is None
    assert LabMap.from_lab(lab, build_plan(lab)).ip_names.get("10.244.0.1") == gateway


def test_a_pod_gateway_the_plugins_results_put_elsewhere_is_the_nodes_own_address(tmp_path):
    """A conflist whose IPAM has its own range and gateway: the node's pod CIDR's first address is not the pods'
    gateway; the one the plugins' results gave them is, on the bridge (isGateway). node_of (who holds a balancer's
    DNAT address, a hop's source) and the hops' names say so; the result's gateway is kept in the lab's state."""
    from ipaddress import IPv4Address

    from netlab.cni.conf import attachment
    from netlab.model.lab import CniAttachment
    from netlab.realize.attachments import attachment_json
    from netlab.trace.policy import node_of

    own = {**OWN, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.254"}]]}}
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.244.0.2/24", "gateway": "10.244.0.254", "interface": 2}],
              "interfaces": [{"name": "qnbr0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/x"}]}
    att = attachment(result)
    assert att is not None and att.gateway == IPv4Address("10.244.0.254")
    assert attachment_json(att)["gateway"] == "10.244.0.254"
    lab = lab_with(tmp_path, CONFLIST, [own])
    lab = lab.with_attachments({"c1": CniAttachment(ip=lab.pod("c1").ip, host_veth="veth1",
                                                    host_ifaces=("qnbr0", "veth1"), gateway=att.gateway)})
    assert node_of(lab, IPv4Address("10.244.0.254")) == "n1"
    assert node_of(lab, IPv4Address("10.244.0.1")) is None  # the pod CIDR's first address: nobody's here
    names = LabMap.from_lab(lab, build_plan(lab)).ip_names
    assert names.get("10.244.0.254") == "n1 qnbr0" and "10.244.0.1" not in names


BASH_BRIDGE = {"type": "bash-bridge", "bridge": "bashbr0", "capabilities": {"ipRanges": True}}


def test_a_plugin_netlab_does_not_know_has_its_bridge_named_as_the_gateway_from_its_results(tmp_path):
    """examples/cni/bash-bridge: its own plugin makes bashbr0 and gives it the pods' gateway. Its type says nothing;
    the running lab's results do: the bridge beside each pod's veth, and the gateway they route by. Before the
    plugin ran (no results), nothing is named."""
    from ipaddress import IPv4Address

    from netlab.model.lab import CniAttachment
    from netlab.trace.policy import node_of

    lab = lab_with(tmp_path, CONFLIST, [BASH_BRIDGE])
    assert LabMap.from_lab(lab, build_plan(lab)).ip_names.get("10.244.0.1") is None
    assert node_of(lab, IPv4Address("10.244.0.1")) is None
    lab = lab.with_attachments({"c1": CniAttachment(ip=lab.pod("c1").ip, host_veth="veth1",
                                                    host_ifaces=("bashbr0", "veth1"),
                                                    gateway=IPv4Address("10.244.0.1"))})
    assert LabMap.from_lab(lab, build_plan(lab)).ip_names.get("10.244.0.1") == "n1 bashbr0"
    assert node_of(lab, IPv4Address("10.244.0.1")) == "n1"
    alone = lab.with_attachments({"c1": CniAttachment(ip=lab.pod("c1").ip, host_veth="veth1", host_ifaces=("veth1",),
                                                      gateway=IPv4Address("10.244.0.1"))})
    assert LabMap.from_lab(alone, build_plan(alone)).ip_names.get("10.244.0.1") is None  # no bridge: not said
