"""A trace to a ClusterIP on a port its Service does not have (QA q40 1), no root.

`netlab trace client 10.96.0.30 --proto tcp --port 82` (a ClusterIP, a port its Service lacks; also UDP on the
Service's TCP port, or svc/NAME --port 82) stopped with a usage error, exit 2, "Service default/us has no port
82/tcp": resolve_target refused any such packet but a ping. The kernel handles it as it handles the ping, and the
README says trace does: no Service packet, as kube-proxy DNATs only the Service's ports; in nftables mode
cluster-ips-check rejects it at once (REFUSED at that row, naming the rule and the node), in iptables mode it
follows the node's default route to the gateway and is lost there. The svc/NAME form is traced the same way (from
a pod or a node: the ClusterIP); from the internet, or to an externalIP, it stays a usage error listing the ports.
"""

from __future__ import annotations

import pytest

from netlab.errors import UsageError
from netlab.trace import refusal
from netlab.trace.flow import Flow
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.targets import resolve_source, resolve_target
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from test_trace_missing_rules import services_lab

WEB_IP = "10.96.0.20"  # Service web: TCP 80 only
REJECT = 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
CASES = [(WEB_IP, "tcp", 82, "tcp"), (WEB_IP, "udp", 80, "udp"), ("svc/web", None, 82, "tcp"),
         ("svc/web", "udp", 80, "udp")]


@pytest.mark.parametrize(("spec", "proto", "port", "sent"), CASES)
def test_a_port_its_service_lacks_is_a_packet_to_the_cluster_ip(spec, proto, port, sent):
    lab, _, _ = services_lab(nft=False)
    for src in ("client", "node-1"):
        dst = resolve_target(lab, spec, proto, port, resolve_source(lab, src))
        assert (dst.kind, dst.name, dst.ip, dst.port, dst.service) == ("service", "svc/web", WEB_IP, port, "web")
        assert (proto or dst.proto or "tcp") == sent  # as run() takes the protocol: a port alone is TCP


def test_no_port_or_no_cluster_ip_stays_a_usage_error_that_lists_the_ports():
    lab, _, _ = services_lab(nft=False)
    client, host = resolve_source(lab, "client"), resolve_source(lab, "example")
    with pytest.raises(UsageError, match=r"Service web has no UDP port \(ports: 80/TCP\)"):
        resolve_target(lab, "svc/web", "udp", None, client)  # which port? none to choose
    with pytest.raises(UsageError, match=r"Service web-lb has no port 82/TCP \(ports: 80/TCP\)"):
        resolve_target(lab, "svc/web-lb", "tcp", 82, host)  # the internet's svc/ is the balancer, no ClusterIP


def _result(lab, w, flow):
    r = TraceResult(lab=lab.name, src={"name": "c", "ip": "10.244.0.3"}, dst={"name": WEB_IP, "ip": WEB_IP},
                    proto=flow.proto, port=flow.dport, marker="m", forward=w, reply=None, verdict=explain(w),
                    reply_verdict=None, reply_received=False)
    number(r)
    r.refused = refusal.rejected(r.verdict, w.hops)
    return r, next(x for x in render_text(r).splitlines() if x.startswith("result:"))


@pytest.mark.parametrize(("proto", "port"), [("tcp", 82), ("udp", 80)])
def test_nftables_mode_refuses_it_at_cluster_ips_check_iptables_mode_loses_it_at_the_gateway(proto, port):
    what = f"{proto.upper()} port {port}"
    for nft in (True, False):
        lab, m, k = services_lab(nft=nft)
        node = lab.node("node-1")
        for src in (node.netns, lab.pod("client").netns):
            flow = Flow(proto, None, WEB_IP, 40000, port)
            w = walk(k, m, src, flow)
            r, line = _result(lab, w, flow)
            last = w.hops[-1]
            assert w.outcome == "stopped" and last.fix is None, last
            if not nft:  # out by the default route, as it was: no one answers it
                assert r.refused is None and line.startswith("result: LOST"), line
                assert last.netns != node.netns and "kube-proxy DNATs only the Service's ports (TCP 80), not " \
                    f"{what}, so the packet followed the node's routes as it was" in last.problem, last.problem
                assert "A real cluster's ClusterIP, too, answers only its Service's ports: nothing to fix" \
                    in last.problem
                continue
            assert (last.kind, last.netns, last.facts["reject_rule"]) == ("dnat", node.netns, REJECT), last
            hook = "filter-output" if src == node.netns else "filter-forward"
            assert f"not {what}: node-1's {hook} jumps to cluster-ips-check" in last.problem, last.problem
            if src == node.netns:  # the node's own socket: what it gets back, as a real one does
                said = "its connect fails at once (Connection refused)" if proto == "tcp" else \
                    "its send fails (Operation not permitted)"
                assert f"(on lo), and {said}" in last.problem and "ping" not in last.problem, last.problem
            assert r.refused.startswith(f"{WEB_IP} is Service default/web's ClusterIP and no port of it matches "
                                        f"{what}: node node-1's kube-proxy rule `{REJECT}` (chain "
                                        "cluster-ips-check) rejected it at once"), r.refused
            assert line.startswith(f"result: REFUSED at hop {r.to_json()['lost']['hop']} ({node.netns} "), line
