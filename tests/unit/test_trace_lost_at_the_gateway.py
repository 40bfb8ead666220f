"""Where a packet that leaves its node by the default route is lost, and a ping to a ClusterIP (no root).

- host-gw (QA q13 1): a node without its route to another node's pod CIDR sends the packet out of eth0 to the
  underlay's gateway, which does not forward (ip_forward 0, as planned) and drops it. The trace stopped at the
  node's eth0 row ("-", nothing a capture can show), though the capture saw the packet leave there and reach the
  gateway: the row is now an observed route row that names the missing route, the walk goes on to the gateway,
  and the packet is lost there, with the missing route as the reason and its `ip route add` as the fix.
- A node's ping to a ClusterIP: kube-proxy DNATs only the Service's ports. iptables mode: it dies at the
  underlay's gateway, which is no fault (no `sysctl -w ip_forward=1` there): a ClusterIP answers no ping.
  nftables mode: cluster-ips-check's `ip daddr @cluster-ips reject` refuses it (ICMP port unreachable), not
  "no ARP entry".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from netlab.plan.build import build_plan
from netlab.trace import picture, refusal
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_missing_rules import NftKernel, services_lab
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from

ROOT = Path(__file__).resolve().parents[2]
WEB_IP = "10.96.0.20"
REJECT = 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'


class Forwarding:
    """ip_forward as the plan sets it: 0 in the underlay (a switch) and hosts, 1 in nodes and pods; a default
    route's lookup as `ip route get` words it."""

    def sysctl(self, netns, key):
        if key != "net.ipv4.ip_forward":
            return None
        return "0" if netns in self.no_forward else "1"

    def route_get(self, netns, dst, src=None, iif=None):
        ans = super().route_get(netns, dst, src, iif)
        if ans.matched and ans.matched.startswith("0.0.0.0/0 "):
            return replace(ans, matched=f"default via {ans.gateway} dev {ans.oif}")
        return ans


class HostGwKernel(Forwarding, FakeKernel):
    pass


def host_gw():
    lab = lab_from((ROOT / "topologies/host-gw-3node.yaml").read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), HostGwKernel(lab, plan)
    k.no_forward = m.no_forward
    return lab, m, k


def test_the_plan_says_which_namespaces_do_not_forward():
    lab, m, _ = host_gw()
    assert m.no_forward == {lab.underlay_netns}


def test_a_missing_host_gw_route_is_seen_leaving_eth0_and_lost_at_the_underlays_gateway():
    lab, m, k = host_gw()
    a, b = lab.node("node-a"), lab.node("node-b")
    k.no_route.add((a.netns, str(b.pod_cidr)))  # netlab break pod-cidr-route-missing
    fix = f"ip -n {a.netns} route add {b.pod_cidr} via {b.ip} dev eth0"
    w = walk(k, m, lab.pod("web-1").netns, Flow.icmp(None, str(lab.pod("web-2").ip), 7))
    [row] = [h for h in w.hops if h.problem and h.netns == a.netns]
    assert (row.kind, row.device, row.facts["missing_route"]) == ("route", "eth0", True), row
    assert (row.observe.netns, row.observe.ifname, row.observe.direction) == (a.netns, "eth0", "out")
    assert "host-gw's route via that node's address is missing" in row.problem and row.fix == fix
    last = w.hops[-1]
    assert w.outcome == "stopped" and (last.netns, last.device) == (lab.underlay_netns, "br0"), last
    assert last.problem.startswith(f"net.ipv4.ip_forward = 0 in {lab.underlay_netns}: the underlay does not "
                                   f"forward, so a packet in on br0"), last.problem
    assert "as the lab plans it: it is no router; it came here because no route to " \
           f"{b.pod_cidr} (node-b's pod CIDR) in {a.netns}" in last.problem, last.problem
    assert last.fix == fix and "sysctl" not in last.fix
    # the row keeps its own words and the node's fault that sent the packet here apart (verdict.explain)
    assert last.came_here is not None and last.came_here.own.startswith("net.ipv4.ip_forward = 0 in "), last
    assert last.came_here.because == row.problem, last  # the node's missing route, its row's words
    assert last.problem == f"{last.came_here.own}; it came here because {last.came_here.because}"
    assert "came_here" not in last.to_json()
    # every row the capture can watch was seen (the pcap holds the frame leaving eth0 and in the underlay)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    v = explain(w)
    assert not v.delivered and v.lost_at == len(w.hops) - 1 and v.fix == fix, v
    assert row.seen is True and any(h.seen for h in w.hops if h.netns == lab.underlay_netns)


def test_a_nodes_ping_to_a_cluster_ip_dies_at_the_gateway_with_nothing_to_fix_in_iptables_mode():
    text = (ROOT / "topologies/services.yaml").read_text().split("\ninternet:")[0]  # the nodes' gateway: the underlay
    lab = lab_from(text)
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), HostGwKernel(lab, plan)
    k.no_forward = m.no_forward
    w = walk(k, m, lab.node("node-1").netns, Flow.icmp(None, WEB_IP, 7))
    last = w.hops[-1]
    assert w.outcome == "stopped" and last.netns == lab.underlay_netns, last
    assert "Service default/web's ClusterIP, a virtual address no interface holds: kube-proxy DNATs only the " \
           "Service's ports (TCP 80), not this ICMP echo" in last.problem, last.problem
    assert "A ClusterIP answers no ping in a real cluster either: nothing to fix" in last.problem
    assert last.fix is None
    v = explain(w)
    assert v.lost_at == len(w.hops) - 1 and v.fix is None


def test_a_nodes_ping_to_a_cluster_ip_is_rejected_by_cluster_ips_check_in_nftables_mode():
    lab, m, k = services_lab(nft=True)
    assert isinstance(k, NftKernel)
    node = lab.node("node-1")
    w = walk(k, m, node.netns, Flow.icmp(None, WEB_IP, 7))
    assert w.outcome == "stopped"
    row = w.hops[-1]
    assert (row.kind, row.netns, row.device) == ("dnat", node.netns, "eth0"), row
    assert row.facts["dropped_here"] and row.facts["reject_rule"] == REJECT and row.cause
    assert "filter-output jumps to cluster-ips-check" in row.problem and f"`{REJECT}`" in row.problem, row.problem
    assert f"ICMP port unreachable from node-1's own address {node.ip} (on lo)" in row.problem
    assert "kube-proxy writes no counter in nftables mode" in row.problem and row.fix is None
    assert not any(h.kind == "neigh" for h in w.hops)  # it never asked for the gateway's MAC
    v = explain(w)
    assert v.lost_at == len(w.hops) - 1 and v.fix is None and "cluster-ips-check" in v.reason
    # a pod's ping is refused by the node's filter-forward the same way
    w = walk(k, m, lab.pod("client").netns, Flow.icmp(None, WEB_IP, 7))
    row = w.hops[-1]
    assert w.outcome == "stopped" and row.netns == node.netns and "filter-forward jumps to" in row.problem, row
    # with the reject rule gone, nothing refuses it: it is routed on as it is
    k.gone.add((node.netns, next(line for line in m.planned_nft[node.netns]
                                 if line.startswith("rule cluster-ips-check ") and REJECT in line)))
    w = walk(k, m, node.netns, Flow.icmp(None, WEB_IP, 7))
    assert not any(h.facts.get("reject_rule") for h in w.hops)


def test_a_ping_cluster_ips_check_rejects_is_refused_naming_the_rule_not_lost():
    """The sender is answered at once (a pod: ICMP port unreachable; the node: its send refused, EPERM, and the
    port unreachable on lo): REFUSED at the rejecting row, as a Service without endpoints is (trace/refusal.py);
    it said LOST, JSON's refused null. iptables mode has no such rule: LOST where the packet went, as before."""
    for nft in (True, False):
        lab, m, k = services_lab(nft=nft)
        for src in (lab.node("node-1").netns, lab.pod("client").netns):
            w = walk(k, m, src, Flow.icmp(None, WEB_IP, 7))
            r = TraceResult(lab=lab.name, src={"name": "c", "ip": "10.244.0.3"}, dst={"name": WEB_IP, "ip": WEB_IP}, proto="icmp",
                            port=None, marker="m", forward=w, reply=None, verdict=explain(w), reply_verdict=None,
                            reply_received=False)
            number(r)
            r.refused = refusal.rejected(r.verdict, w.hops)
            line = next(x for x in render_text(r).splitlines() if x.startswith("result:"))
            if not nft:
                assert r.refused is None and line.startswith("result: LOST"), line
                continue
            assert r.refused == (f"{WEB_IP} is Service default/web's ClusterIP and no port of it matches this ICMP "
                                 f"echo: node node-1's kube-proxy rule `{REJECT}` (chain cluster-ips-check) rejected "
                                 "it at once with an ICMP port unreachable (the sender is answered, it does not time "
                                 "out): nothing to fix (a ClusterIP answers only its Service's ports in a real "
                                 "cluster too; trace one of them)"), r.refused
            hop = r.to_json()["lost"]["hop"]
            assert line.startswith(f"result: REFUSED at hop {hop} ({lab.node('node-1').netns} "), line
            assert not r.ok and r.to_json()["refused"] == r.refused and picture.title(r).endswith(f"REFUSED at hop {hop}")


def test_a_down_cni0_sends_its_pods_packets_to_the_gateway_where_they_are_lost_as_a_missing_route_does():
    """cni0 set down on the destination node: the kernel takes its connected route with it and forwards the packet
    out of eth0 by the default route to the underlay's gateway (a real lab's `ip -j route get` and capture say so),
    as for a missing pod-CIDR route. trace said LOST at the cni0 row ('-': nothing a capture shows) though the
    capture saw the packet leave eth0 and reach br0; it is lost at the gateway, cni0 down named as why, its fix."""
    lab, m, k = host_gw()
    b = lab.node("node-b")
    k.down.add((b.netns, "cni0"))  # ip -n NODE-B link set cni0 down
    fix = f"ip -n {b.netns} link set cni0 up"
    w = walk(k, m, lab.pod("web-1").netns, Flow.icmp(None, str(lab.pod("web-2").ip), 7))
    link = next(h for h in w.hops if h.kind == "link")
    assert (link.netns, link.device, link.cause) == (b.netns, "cni0", False), link
    out = w.hops[w.hops.index(link) + 1]
    assert (out.netns, out.device, out.kind, out.problem) == (b.netns, "eth0", "route", None), out
    last = w.hops[-1]
    assert w.outcome == "stopped" and (last.netns, last.device) == (lab.underlay_netns, "br0"), last
    assert "as the lab plans it: it is no router; it came here because cni0 in " \
           f"{b.netns} is down, and a link set down loses its routes" in last.problem, last.problem
    assert last.fix == fix
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    v = explain(w)
    assert not v.delivered and v.lost_at == len(w.hops) - 1 and v.fix == fix, v
    assert v.reason == last.problem and out.seen is True


def test_a_cluster_ip_ping_dies_at_the_internet_gateway_which_answers_net_unreachable():
    """A lab with an `internet:` section: the nodes' gateway is the internet's (it forwards), not the underlay's
    (a switch there). It has no route to a ClusterIP, drops the echo and answers an ICMP net unreachable from its
    eth0 address (a real ping: "From 192.168.122.1 icmp_seq=1 Destination Net Unreachable"). trace said only "no
    route to ... in GATEWAY: Network is unreachable", not that a ClusterIP answers no ping."""
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), HostGwKernel(lab, plan)
    k.no_forward = m.no_forward
    gateway = dict(lab.internet_hosts)["gateway"]
    assert gateway not in m.no_forward
    for src in (lab.node("node-1").netns, lab.pod("client").netns):
        w = walk(k, m, src, Flow.icmp(None, WEB_IP, 7))
        last = w.hops[-1]
        assert w.outcome == "stopped" and (last.netns, last.device) == (gateway, "eth0"), last
        assert last.problem.startswith(f"no route to {WEB_IP} in {gateway}: Network is unreachable: "), last.problem
        assert "Service default/web's ClusterIP, a virtual address no interface holds: kube-proxy DNATs only " \
               "the Service's ports (TCP 80), not this ICMP echo" in last.problem, last.problem
        assert "to a gateway with no route to it, which answers an ICMP net unreachable from its address " \
               "192.168.122.1 on eth0 (ping: Destination Net Unreachable; at most one a second to a sender" in last.problem, last.problem
        assert "A ClusterIP answers no ping in a real cluster either: nothing to fix" in last.problem
        assert last.fix is None
        v = explain(w)
        assert v.lost_at == len(w.hops) - 1 and v.fix is None
