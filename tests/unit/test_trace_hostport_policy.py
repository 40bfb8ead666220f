"""The NetworkPolicy verdict of a trace to a node's hostPort: portmap DNATs it to the pod in the node's PREROUTING,
as kube-proxy does a nodePort's to a pod of that node, so the pod's ingress judges it in FORWARD, with the source
the packet had when it reached the node (portmap's masquerade of the node's own pods comes after, in POSTROUTING).
The trace judged only the client's egress to the node, so a REJECT the policy made was no policy's (QA q21 #1).
Pure: the verdict from the model, the kernel's REJECT counters given."""

from __future__ import annotations

from pathlib import Path

from netlab.model.hostports import served_by
from netlab.model.netpol import policy_set
from netlab.plan.policy import pod_chain
from netlab.trace import policy as tpolicy
from netlab.trace.targets import Endpoint
from test_hostports import WEB, lab_of, topo

POLICY = """networkPolicies:
  - name: web-from-b
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]
internet:
  cidr: 203.0.113.0/24
  gateway: {ip: 203.0.113.1}
  hosts: [{name: ext, ip: 203.0.113.10}]
"""


def lab(tmp_path: Path):
    pods = WEB.replace("    node: n1\n", "    node: n1\n    labels: {app: web}\n") + \
        "  - {name: c, node: n1}\n  - {name: b, node: n2, labels: {app: b}}\n"
    return lab_of(tmp_path, topo(tmp_path, pods) + POLICY)


def story(lab, src: Endpoint, port: int, proto: str = "tcp", counted: bool = True):
    n1 = lab.node("n1")
    chain = pod_chain("ingress", next(p for p in policy_set(lab).pods if p.name == "web"))
    after = {(n1.netns, chain): 1} if counted else {}
    dst = Endpoint("n1", "node", str(n1.ip), n1.netns, port=port)
    return tpolicy.story(lab, src, dst, proto, port, None, {}, after), chain


def pod(lab, name: str) -> Endpoint:
    p = lab.pod(name)
    return Endpoint(name, "pod", str(p.ip), p.netns)


def test_a_hostport_is_judged_by_its_pods_ingress_with_the_source_as_the_node_sees_it(tmp_path):
    lab_ = lab(tmp_path)
    ext = Endpoint("ext", "internet", "203.0.113.10", f"{lab_.name}-ext")
    n2 = lab_.node("n2")
    for src, seen in ((ext, "203.0.113.10, ext's own address"), (pod(lab_, "c"), "pod default/c itself"),
                      (pod(lab_, "b"), f"{n2.ip}, n2's eth0 address after Flannel's masquerade"),
                      (Endpoint("n2", "node", str(n2.ip), n2.netns), f"{n2.ip}, n2's eth0 address")):
        (entry,), chain = story(lab_, src, 18080)
        assert (entry["pod"], entry["allowed"], entry["node"], entry["chain"], entry["counted"]) == \
            ("default/web", False, "n1", chain, True), (src, entry)
        assert entry["text"] == (f"dropped in node n1, chain {chain}, by policy default/web-from-b (no ingress rule "
                                 f"allows it for pod default/web; it comes from {seen}); the kernel's REJECT rule "
                                 "there counted it"), entry


def test_only_a_hostport_of_that_port_protocol_and_address_is_a_pods(tmp_path):
    lab_ = lab(tmp_path)
    c = pod(lab_, "c")
    # 9000 is no hostPort: a packet for the node itself, only c's egress (none) judges it
    assert [e.get("to") for e in story(lab_, c, 9000)[0]] == ["n1"]
    assert [e.get("to") for e in story(lab_, c, 18080, "udp")[0]] == ["n1"]  # hostPort 18080 is TCP's
    # UDP 1053 is a hostPort on hostIP 192.168.122.10 only, the node's address the trace sends to: the pod's
    (entry,), _ = story(lab_, c, 1053, "udp")
    assert entry["pod"] == "default/web" and not entry["allowed"]
    assert served_by(lab_.topo, "n1", 1053, "udp", "127.0.0.1") == []
    assert served_by(lab_.topo, "n1", 18080, "tcp", "127.0.0.1") == [("web", 8080)]  # no hostIP: every address
