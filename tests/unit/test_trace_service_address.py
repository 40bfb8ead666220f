"""The result line of a trace to a Service names the address the packet was sent to (no root).

A pod's or a node's packet to a LoadBalancer IP or an externalIP is DNATed by its node's kube-proxy; the result
line said "svc/web-lb:80 DNATed to 10.244.1.2:8080", which reads as the ClusterIP (svc/NAME's address). The lab is
topologies/services.yaml (web-lb at 203.0.113.100:80, an externalIP added), endpoint web-2 on node-2.
"""

from __future__ import annotations

import pytest

from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_missing_rules import NFT_MODE, ROOT, NftKernel
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from

LB, EXT, CLUSTER_IP, CLIENT, WEB_2, N1_VTEP = "203.0.113.100", "198.51.100.7", "10.96.0.30", "10.244.0.3", \
    "10.244.1.2", "10.244.0.0"


def _lab(nft: bool):
    text = (ROOT / "topologies/services.yaml").read_text()
    lb = f"    loadBalancerIP: {LB}\n"
    text = text.replace(lb, f"{lb}    externalIPs: [{EXT}]\n")
    if nft:
        text = text.replace("\nnodes:\n", f"\n{NFT_MODE}nodes:\n", 1)
    lab = lab_from(text)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), (NftKernel if nft else FakeKernel)(lab, plan)


def _result(nft: bool, to: str) -> TraceResult:
    lab, m, k = _lab(nft)
    flow = Flow("tcp", CLIENT, to, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_2, N1_VTEP, 8080, 50000), "SYN_SENT")]
    w = walk(k, m, "svc-client", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2", w.hops
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    r = TraceResult(lab="svc", src={"name": "client", "ip": CLIENT}, dst={"name": "svc/web-lb", "ip": to},
                    proto="tcp", port=80, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=True)
    number(r)
    return r


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
@pytest.mark.parametrize(("to", "said", "via"), [(LB, "LoadBalancer IP", "LoadBalancer"),
                                                 (EXT, "externalIP", "ExternalIP")])
def test_the_result_names_the_address_the_packet_was_sent_to(nft, to, said, via):
    r = _result(nft, to)
    text = render_text(r)
    assert (f"result: delivered to web-2, endpoint of Service default/web-lb:http (svc/web-lb's {said} {to}:80 "
            f"DNATed to {WEB_2}:8080)") in text, text
    assert r.to_json()["endpoint"]["via"] == via  # probe's word for the address dialed


def test_the_cluster_ip_is_svc_name_alone():
    """svc/NAME is the ClusterIP: the line stays as it was."""
    lab, m, k = _lab(False)
    ip = next(s.ip for s in m.services if s.name == "default/web-lb:http")
    r = _result(False, ip)
    assert "(svc/web-lb:80 DNATed to 10.244.1.2:8080)" in render_text(r)
    assert r.to_json()["endpoint"]["via"] == "ClusterIP"
