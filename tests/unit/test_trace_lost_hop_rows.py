"""Where a lost packet was lost: the hop the result names is the row whose problem it quotes (no root).

Several rows of a trace decide about one place: the route, then the next hop's
ARP entry, then the FDB entry, all for the packet leaving flannel.1. A capture
there misses the packet from the first of them on, although the last one
dropped it: the result names that one, the row marked ``!!``, in text and in
JSON. A problem row further on, past a place where the packet already was not
seen, is not why the packet vanished, and the result does not quote it.
"""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.l2steps import NEVER_ASKED
from netlab.trace.render import render_text
from netlab.trace.verdict import explain, mark_seen, not_arrived
from test_trace_walk import _result, _seen_everywhere, ping, world  # noqa: F401  (the fixture)


def test_the_lost_hop_is_the_row_whose_problem_dropped_the_packet(world):  # noqa: F811
    _, m, k = world
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "INCOMPLETE"  # ip neigh del 10.244.1.0 dev flannel.1
    w = ping(k, m)
    mark_seen(w.hops, [p for p in _seen_everywhere(w) if p.ifname != "flannel.1"], {h.netns for h in w.hops})
    route, arp = w.hops[4], w.hops[5]  # both about the packet leaving flannel.1: neither seen
    assert (route.kind, route.seen, route.problem) == ("route", False, None)
    assert (arp.kind, arp.seen) == ("neigh", False) and arp.problem.startswith("no ARP entry for 10.244.1.0")
    r = _result(w)
    assert r.forward.hops[r.verdict.lost_at] is arp and r.verdict.reason == arp.problem
    text = render_text(r)
    # It said "LOST at hop 5", the route, whose row has no "!!", with hop 6's reason.
    assert "result: LOST at hop 6 (demo-minikube flannel.1): no ARP entry for 10.244.1.0" in text
    assert f"  6  NOT SEEN  {'demo-minikube':<22} flannel.1" in text and f"!! {arp.problem}" in text
    lost = r.to_json()["lost"]
    assert (lost["hop"], lost["device"], lost["reason"]) == (6, "flannel.1", arp.problem)


def test_a_problem_past_where_the_packet_vanished_is_not_the_reason(world):  # noqa: F811
    """minikube drops the packet in FORWARD (an iptables rule: nothing the walk reads), so it never leaves by
    flannel.1; minikube-m02, which no packet reached, has no ARP entry for fedora-2. The walk stops there, with
    a problem, but that is not where nor why the packet vanished."""
    _, m, k = world
    k.no_neigh[("demo-minikube-m02", "cni0", "10.244.1.3")] = None
    w = ping(k, m)
    last = w.hops[-1]
    assert (last.netns, last.kind) == ("demo-minikube-m02", "neigh") and NEVER_ASKED in last.problem
    mark_seen(w.hops, [p for p in _seen_everywhere(w) if p.ts < 4], {h.netns for h in w.hops})  # up to cni0
    r = _result(w)
    lost = r.forward.hops[r.verdict.lost_at]
    assert (lost.index, lost.netns, lost.device, lost.kind) == (5, "demo-minikube", "flannel.1", "route")
    assert r.verdict.reason.startswith("seen on demo-minikube cni0, never on demo-minikube flannel.1; the kernel's "
                                       "route, ARP and FDB answers up to there look right, so look at the firewall")
    assert r.verdict.fix is None
    assert "result: LOST at hop 5 (demo-minikube flannel.1): seen on demo-minikube cni0" in render_text(r)
    # the commands it points to name the lab: typed as printed, they are this lab's whatever other lab is up
    assert explain(w, lab="demo").reason.endswith(
        f"look at the firewall: {netlab_command('inspect --lab demo minikube')} (iptables counters) or "
        f"{netlab_command('capture --lab demo minikube:flannel.1')}")


def _row(kind: str, netns: str, dev: str, direction: str | None = None, seen: bool | None = None,
         problem: str | None = None) -> Hop:
    f = Flow.icmp("10.244.0.2", "10.244.1.3", 1)
    h = Hop(netns, f"node {netns}", dev, kind, kind, problem=problem,
            observe=Observe(netns, dev, direction, f, "request") if direction else None)
    h.seen = seen
    return h


def test_a_drop_no_capture_shows_explains_the_packet_not_leaving_by_its_device_only():
    # A DF packet bigger than the MTU of the device it leaves by: the kernel refuses it before the device, so it
    # is not seen leaving; the refusal (a row a capture cannot show) is where it was lost.
    hops = [_row("arrive", "n1", "cni0", "in", seen=True), _row("route", "n1", "eth0", "out", seen=False),
            _row("neigh", "n1", "eth0", "out", seen=False), _row("mtu", "n1", "eth0", problem="too big")]
    v = explain(Walk(hops, "stopped", reason="too big"))
    assert (v.lost_at, v.reason) == (3, "too big")
    # Not seen arriving: a route refused inside the namespace after the arrival is not why.
    hops = [_row("route", "n0", "eth0", "out", seen=True), _row("arrive", "n1", "eth0", "in", seen=False),
            _row("drop", "n1", "eth0", problem="no route")]
    v = explain(Walk(hops, "stopped", reason="no route"))
    assert v.lost_at == 1 and "never on n1 eth0" in v.reason and "no route" not in v.reason



def test_a_problem_the_packet_went_past_is_named_with_where_it_vanished():
    """A problem row that does not stop the walk (a Service packet a node did not DNAT, its rules whole): the
    packet is seen after it, then vanishes. The result names that row, as its "!!" does, and where it vanished."""
    hops = [_row("arrive", "n1", "cni0", "in", seen=True), _row("dnat", "n1", "cni0", problem="not DNATed here"),
            _row("route", "n1", "eth0", "out", seen=True), _row("arrive", "n2", "eth0", "in", seen=False)]
    v = explain(Walk(hops, "delivered"))
    assert (v.lost_at, v.reason) == (1, "not DNATed here (it went on, and was not seen on n2 eth0)")

# --- a row that drops the packet ends the walk --------------------------------------------------------------------

def test_rows_after_a_node_that_rejects_a_service_packet_do_not_follow_its_route():
    """kube-proxy rejects a packet for a Service without endpoints on the client's node: the walk stops there. It
    went on along the ClusterIP's route (the node's default route, an ARP row for the underlay's gateway with its
    own "!!"), rows of a packet that no longer existed."""
    from netlab.plan.build import build_plan
    from netlab.trace.labmap import LabMap
    from netlab.trace.walk import walk
    from test_trace_walk import FakeKernel, lab_from, two_node_topology

    lab = lab_from(two_node_topology("nd") + "services:\n  - {name: web, selector: {app: none}, ports: [{port: 80}]}\n")
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    cip = str(lab.addressing.service_ip[("default", "web")])
    w = walk(k, m, "nd-fedora-1", Flow("tcp", "10.244.0.2", cip, 40000, 80))
    last = w.hops[-1]
    assert (last.netns, last.kind) == ("nd-minikube", "dnat") and last.facts["dropped_here"] is True
    assert w.outcome == "stopped" and w.reason == last.problem and "has no endpoints" in last.problem
    assert [h for h in w.hops if h.problem] == [last]
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    v = explain(w)
    assert w.hops[v.lost_at] is last and v.reason == last.problem


def test_rows_after_a_node_whose_forward_policy_drops_a_service_packet_stop_there():
    """node-1's FORWARD policy is DROP: the client's Service packet, whose DNAT node-1's rules hold, dies there
    before conntrack keeps the entry; no row follows it to the endpoint."""
    from test_trace_service_paths import ROOT, to_web
    from netlab.plan.build import build_plan
    from netlab.trace.labmap import LabMap
    from netlab.trace.walk import walk
    from test_trace_walk import FakeKernel, lab_from

    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    k.filter_policy = lambda ns, chain: "DROP" if (ns, chain) == ("svc-node-1", "FORWARD") else "ACCEPT"
    w = walk(k, m, "svc-client", to_web(k))
    last = w.hops[-1]
    assert (last.netns, last.kind, last.facts.get("dropped_here")) == ("svc-node-1", "dnat", True)
    assert "the FORWARD chain's policy is DROP in svc-node-1" in last.problem and w.outcome == "stopped"


def test_a_request_not_seen_arriving_sent_no_reply(world):  # noqa: F811
    """The walk delivers the packet, the capture at the destination did not see it: no reply left it (run.py then
    shows no reply rows: they were the path a reply would have taken, one with a "!!" of its own)."""
    _, m, k = world
    w = ping(k, m)
    captured = {h.netns for h in w.hops}
    mark_seen(w.hops, _seen_everywhere(w), captured)
    assert not not_arrived(w)
    mark_seen(w.hops, [p for p in _seen_everywhere(w) if p.ts < 4], captured)  # a firewall in minikube
    assert w.hops[-1].kind == "deliver" and w.hops[-1].seen is False and not_arrived(w)
    mark_seen(w.hops, [], captured - {"demo-fedora-2"})  # the destination not captured: nobody can say
    assert not not_arrived(w)
    k.no_fdb.add(("demo-minikube", "flannel.1", k.lab.node("minikube-m02").vxlan_mac))
    stopped = ping(k, m)
    mark_seen(stopped.hops, [], captured)
    assert not not_arrived(stopped)  # no walk of a reply after a walk that stopped anyway
