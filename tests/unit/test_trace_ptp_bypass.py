"""trace's NetworkPolicy verdict on a lab whose pods share no bridge (the CNI ptp plugin: each pod's veth routed
by its node alone) when bridge-nf-call-iptables is 0 in the node: two pods of one node are not switched past
iptables there, their packets pass the node's FORWARD like any other.

trace took every two pods of one node for ports of one bridge, so on such a node it blamed a flow the policies
deny and no REJECT counted on the sysctl ("its bridge switches the frame from pod to pod", fix: the sysctl),
where the node's rules were the cause (here: the pod's chain flushed); and it said a Service client refused on
its own node got no reset because its packet "came in through its node's bridge port", where a routed packet's
reset leaves as the node's own packet and is un-DNATed (the client is refused). The recorded filter table is
test_trace_policy_drift's (a real lab's node n1, counters zeroed): the policy rules are the same whatever
attaches the pods.
"""

from __future__ import annotations

import json

import pytest
import yaml

from netlab.model.lab import CniAttachment, resolve
from netlab.model.load import load_topology
from netlab.model.netpol import policy_set
from netlab.plan.policy import pod_chain
from netlab.trace import policy as tpolicy
from test_trace_policy_drift import RECORDED, REPAIR, TOPO, _pod, _without

PTP = {"type": "ptp", "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}}
QNBR = {"type": "bridge", "bridge": "qnbr0", "isGateway": True, "capabilities": {"ipRanges": True},
        "ipam": {"type": "host-local"}}


def lab_of(tmp_path, plugin: dict | None, running: bool = False):
    """TOPO attached by a conflist of ``plugin`` (None: netlab's own pods, on cni0); ``running``: as up left it,
    each pod's CNI result naming the node's end of its veth (and the bridge, when the plugin makes one)."""
    topo = dict(TOPO)
    if plugin is not None:
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [plugin]}))
        (tmp_path / "bin").mkdir(exist_ok=True)
        topo["network"] = {"cni": {"conflist": "net.conflist", "binDir": "bin"}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(topo))
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    if running:
        bridge = plugin.get("bridge") if plugin else None
        lab = lab.with_attachments({p.name: CniAttachment(ip=p.ip, host_veth=f"veth{i:08x}", host_ifaces=(
            (bridge,) if bridge else ()) + (f"veth{i:08x}",)) for i, p in enumerate(lab.pods)})
    return lab


def unstopped(lab, table: str):
    """The verdict of a-cli → a-web (denied), no REJECT counted, bridge-nf-call-iptables = 0 in n1."""
    n1 = lab.node("n1").netns
    chain = pod_chain("ingress", policy_set(lab).pod("a-web"))
    [e] = tpolicy.story(lab, _pod(lab, "a-cli"), _pod(lab, "a-web", 8080), "tcp", 8080, None, {(n1, chain): 4},
                        {(n1, chain): 4}, unfiltered={n1}, reached={n1}, tables=tpolicy.Tables({n1: table}, REPAIR))
    return e, chain


@pytest.mark.parametrize("running", [False, True])
def test_a_ptp_nodes_pods_pass_forward_whatever_bridge_nf_call_iptables_says(tmp_path, running):
    lab = lab_of(tmp_path, PTP, running)
    e, chain = unstopped(lab, _without(lambda line: not line.startswith(f"-A {chain_of(lab)} ")))
    assert "bridge-nf-call-iptables" not in e["text"] and "bridge" not in e["text"], e["text"]
    assert f"but NOT STOPPED: 5 of netlab's rules are missing from node n1's chain {chain}" in e["text"]
    assert (e["stopped"], e["fix"], len(e["missing"])) == (False, REPAIR, 5)
    # the rules whole and still nothing counted: not the sysctl either
    e, chain = unstopped(lab, RECORDED)
    assert "bridge-nf-call-iptables" not in e["text"] and "fix" not in e
    assert f"the kernel's REJECT in node n1's chain {chain} counted nothing" in e["text"]


@pytest.mark.parametrize("plugin, running", [(None, False), (QNBR, False), (QNBR, True)])
def test_pods_on_a_bridge_of_any_name_are_switched_past_it(tmp_path, plugin, running):
    lab = lab_of(tmp_path, plugin, running)
    e, _ = unstopped(lab, _without(lambda line: not line.startswith(f"-A {chain_of(lab)} ")))
    assert e["text"].endswith(f"but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0 in tpr-n1, so its bridge "
                              f"switches the frame from pod to pod without handing it to iptables, and the rules in "
                              f"node n1's chain {chain_of(lab)} never see it"), e["text"]
    assert e["fix"] == "ip netns exec tpr-n1 sysctl -w net.bridge.bridge-nf-call-iptables=1"


@pytest.mark.parametrize("plugin, note", [(None, "cni0"), (QNBR, "qnbr0"), (PTP, None)])
def test_a_refused_service_client_on_its_endpoints_node_gets_its_reset_without_a_bridge(tmp_path, plugin, note):
    lab = lab_of(tmp_path, plugin)
    said = tpolicy.unanswered_reset(lab, _pod(lab, "a-cli"), "n1", "n1", "10.96.0.11:80", "10.244.0.5", 8080)
    if note is None:
        assert said is None
    else:
        assert said is not None and f"the packet came in through {note}'s bridge port" in said


def chain_of(lab) -> str:
    return pod_chain("ingress", policy_set(lab).pod("a-web"))


def test_bridge_nf_call_off_is_refused_on_a_lab_whose_pods_share_no_bridge(tmp_path):
    """Its lesson (frames a bridge switches skip FORWARD) cannot show there: the quiz picked it and its proving
    trace looked for a NOT STOPPED that the kernel never gives."""
    from netlab.breaks import catalogue, quiz

    s = catalogue.scenario("bridge-nf-call-off")
    why = catalogue.why_not(s, lab_of(tmp_path, PTP))
    assert why is not None and why.startswith("bridge-nf-call-off needs pods on a bridge of their node; lab tpr's "
                                              "share none (ptp:") and "\n" not in why
    assert s not in quiz.candidates(lab_of(tmp_path, PTP, running=True))
    assert catalogue.why_not(s, lab_of(tmp_path, QNBR)) is None


def test_a_flushed_chain_that_held_the_labs_only_reject_is_named_too(tmp_path):
    """No REJECT left in any node's table (b, the one pod a policy isolates, had its chain flushed): the counters
    were read, and are empty. trace said "dropped in node n1 ..." of the flow it had just delivered."""
    lab = lab_of(tmp_path, PTP)
    n1, chain = lab.node("n1").netns, chain_of(lab)
    table = _without(lambda line: not line.startswith(f"-A {chain} ") and "-j REJECT" not in line)
    [e] = tpolicy.story(lab, _pod(lab, "a-cli"), _pod(lab, "a-web", 8080), "tcp", 8080, None, {}, {},
                        reached={n1}, tables=tpolicy.Tables({n1: table}, REPAIR))
    assert e["stopped"] is False and "but NOT STOPPED: " in e["text"] and chain in e["text"], e
    [e] = tpolicy.story(lab, _pod(lab, "a-cli"), _pod(lab, "a-web", 8080), "tcp", 8080, None, {}, {},
                        reached={n1})  # not read: nothing to say of the kernel's count
    assert "stopped" not in e and e["text"].startswith("dropped in node n1"), e
