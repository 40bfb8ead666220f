"""QA q39 3: netlab's own impairments on the path of probe's failed flows. Under `impair client:eth0 --loss 100%`
probe failed 28 flows "no reply in 1 s" with no hint (trace named it); under a 1 Mbit rate its Service spread
check failed ("49-81 of 200 connections failed (timeout)") though one flow gets through; under 100kbit the
connections whose echo line came late were said to be "not an echo reply". No root: judged observations."""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.probe import impaired
from netlab.probe.distribution import judge_distribution
from netlab.probe.judge import Result, judge
from netlab.probe.matrix import build_matrix
from netlab.probe.services import build as build_services
from netlab.probe.tasks import NO_LINE_IN_TIME, Observation

from test_probe_services import SVC, dist_obs, svc_lab


def _lab(pod_impair: dict[str, dict], node_impair: dict[str, dict] | None = None):
    data = dict(SVC, pods=[dict(p, impair=pod_impair.get(p["name"], {})) for p in SVC["pods"]],
                nodes=[dict(n, impair=(node_impair or {}).get(n["name"], {})) for n in SVC["nodes"]])
    return svc_lab(**{k: v for k, v in data.items() if k != "name"})


def _failed(lab, pairs: set[tuple[str, str]]) -> list[Result]:
    """Every pod-to-pod tcp/8080 flow of the lab's matrix; those of ``pairs`` got no reply (the rest answered)."""
    out = []
    for p in build_matrix(lab, protos=["tcp"]):
        if p.source.kind != "pod" or p.destination.kind != "pod" or not p.expected:
            continue
        if (p.source.name, p.destination.name) in pairs:
            obs = Observation(outcome="timeout")
            out.append(Result(p, obs, 1.0, judge(p, obs, 1.0, None)))
        else:
            out.append(Result(p, Observation(outcome="reply", answered_by=p.destination.name), 1.0, []))
    return out


def test_a_loss_on_a_pods_eth0_is_named_for_the_flows_that_failed_across_it():
    lab = _lab({"client": {"eth0": {"loss": "100%"}}})
    results = _failed(lab, {("client", "web-1"), ("client", "web-2"), ("web-1", "client"), ("web-2", "client")})
    assert sum(1 for r in results if r.problems) == 4
    hints = impaired.hints(lab, results, [], 1.0)
    assert len(hints) == 1, hints
    assert hints[0].startswith("client:eth0 has netlab's impairment loss 100% (it drops every frame it sends), "
                               "on the path of 4 flows that failed: "), hints
    assert hints[0].count("client -> web-") + hints[0].count("web-1 -> client") + hints[0].count("web-2 -> client") == 3
    assert hints[0].endswith("and 1 more; `netlab impair --lab svc` lists it, "
                             f"`{netlab_command('impair --lab svc client:eth0 --clear')}` removes it"), hints[0]


def test_an_impairment_off_the_failed_flows_path_is_not_named():
    """web-2's eth0 is on none of the client <-> web-1 flows (both on node-1): no hint; node-1's cni0 is."""
    lab = _lab({"web-2": {"eth0": {"loss": "50%"}}}, {"node-1": {"cni0": {"rate": "1mbit"}}})
    hints = impaired.hints(lab, _failed(lab, {("client", "web-1")}), [], 1.0)
    assert len(hints) == 1 and hints[0].startswith("node-1:cni0 has netlab's impairment rate 1mbit (it sends at most "
                                                    "1mbit, queues the excess for at most 50 ms and drops the rest)"), hints
    assert impaired.hints(lab, _failed(lab, set()), [], 1.0) == []  # nothing failed: nothing to explain
    # node-2's flannel device or eth0 is on the path only of what goes to or from node-2
    lab = _lab({}, {"node-2": {"eth0": {"loss": "5%"}}})
    assert impaired.hints(lab, _failed(lab, {("client", "web-1")}), [], 1.0) == []
    assert "on the path of a flow that failed: web-1 -> web-2" in impaired.hints(
        lab, _failed(lab, {("web-1", "web-2")}), [], 1.0)[0]


def test_a_spread_check_that_failed_across_a_rate_limit_says_its_burst_overflows_the_queue():
    lab = _lab({"client": {"eth0": {"rate": "1mbit"}}})
    d = {x.target.service: x for x in build_services(lab).distributions}["web"]
    res = judge_distribution(d, dist_obs({"web-1": 60, "web-2": 59}, failed=81), 1.0)
    hints = impaired.hints(lab, [], [res], 1.0)
    assert hints[0].startswith("client:eth0 has netlab's impairment rate 1mbit (it sends at most 1mbit, queues the "
                               "excess for at most 50 ms and drops the rest), on the path of a flow that failed: svc/web tcp/80 (10.96.0.20);"), hints
    assert hints[1] == ("svc/web tcp/80: 81 of 200 connections failed (81 timeout), across client:eth0, limited to "
                        "1mbit: this check opens its 200 connections at once, and their packets overflow the "
                        "limiter's queue (50 ms of 1mbit), which drops them or holds them past the timeout; a flow "
                        "alone gets through (`netlab trace` shows one)")
    # Accepted, their echo lines held past the timeout: said in the same words as the check's own problem
    late = [Observation(outcome="reply", rtt=0.01, local="10.244.0.3:1", detail=NO_LINE_IN_TIME)] * 49
    res = judge_distribution(d, dist_obs({"web-1": 76, "web-2": 75}) + late, 1.0)
    assert impaired.hints(lab, [], [res], 1.0)[1].startswith(
        "svc/web tcp/80: 49 of 200 connections were accepted, but their echo line did not come back within 1 s "
        "(late, or lost on the way), across client:eth0, limited to 1mbit: this check opens")


def test_connections_whose_echo_line_came_late_are_said_late_not_another_servers():
    lab = svc_lab()
    d = {x.target.service: x for x in build_services(lab).distributions}["web"]
    late = [Observation(outcome="reply", rtt=0.01, local="10.244.0.3:1", detail=NO_LINE_IN_TIME)] * 16
    other = [Observation(outcome="reply", rtt=0.01, local="10.244.0.3:2",
                         detail="connected; the server sent no echo reply")] * 2
    res = judge_distribution(d, dist_obs({"web-1": 91, "web-2": 91}) + late + other, 1.0)
    assert "16 of 200 connections were accepted, but their echo line did not come back within 1 s (late, or lost "\
        "on the way)" in res.problems, res.problems
    assert "2 of 200 replies were not an echo reply" in res.problems


def test_a_connection_with_nothing_back_by_the_timeout_is_said_late_not_answered_otherwise():
    """The agent's own observation: connected, nothing came back on it in time (an echo line queued behind a rate
    limit): NO_LINE_IN_TIME; bytes that came but no echo line: "the server sent no echo reply", as before."""
    import socket
    import types

    from netlab.probe.tasks import Task
    from netlab.probe.transports import Tcp, TcpFlow

    seen: dict[int, Observation] = {}
    w = types.SimpleNamespace(finish=lambda tid, o: seen.__setitem__(tid, o), unwatch=lambda fd: None)
    tcp = Tcp(w)  # type: ignore[arg-type]
    for tid, reply in ((1, b""), (2, b"HTTP/1.0")):
        s = socket.socket()
        tcp.flows[s.fileno()] = TcpFlow(Task(tid, "ns", "10.0.0.1", "tcp", 80), s, "10.0.0.2:1", 0.01,
                                        bytearray(reply))
        tcp.by_task[tid] = s.fileno()
        assert tcp.expire(tid)
    assert seen[1].reached and seen[1].detail == NO_LINE_IN_TIME
    assert seen[2].reached and seen[2].detail == "connected; the server sent no echo reply"


def _node_failed(lab, pairs: set[tuple[str, str]]) -> list[Result]:
    """Every tcp/8080 flow of the lab's matrix from a node to a pod; those of ``pairs`` got no reply."""
    out = []
    for p in build_matrix(lab, protos=["tcp"]):
        if p.source.kind != "node" or p.port != 8080:
            continue
        obs = Observation(outcome="timeout") if (p.source.name, p.destination.name) in pairs else \
            Observation(outcome="reply", answered_by=p.destination.name)
        out.append(Result(p, obs, 1.0, judge(p, obs, 1.0, None) if obs.outcome == "timeout" else []))
    return out


def test_a_nodes_flow_to_its_own_pod_is_not_said_to_cross_its_eth0():
    """QA q48 1: node-1 reaches its own pods by cni0 (`ip route get` of a pod of node-1 there: dev cni0), never
    by eth0 or flannel.1; to node-2's pods by flannel.1 and the eth0 its VXLAN packets leave by, never its cni0."""
    lab = _lab({}, {"node-1": {"eth0": {"loss": "100%"}, "cni0": {"loss": "100%"}, "flannel.1": {"rate": "1mbit"}}})
    hints = impaired.hints(lab, _node_failed(lab, {("node-1", "client")}), [], 1.0)
    assert [h.split(" ")[0] for h in hints] == ["node-1:cni0"], hints
    assert "on the path of a flow that failed: node-1 -> client tcp/8080;" in hints[0], hints
    hints = impaired.hints(lab, _node_failed(lab, {("node-1", "web-2")}), [], 1.0)
    assert [h.split(" ")[0] for h in hints] == ["node-1:eth0", "node-1:flannel.1"], hints
    # the other node's flow to node-1's pod crosses node-1's cni0 (and its own way out), not node-1's eth0 alone
    hints = impaired.hints(lab, _node_failed(lab, {("node-2", "client")}), [], 1.0)
    assert [h.split(" ")[0] for h in hints] == ["node-1:cni0", "node-1:eth0", "node-1:flannel.1"], hints
    # host-gw: a node reaches another node's pods by eth0 alone
    gw = svc_lab(nodes=[dict(n, impair={"eth0": {"loss": "100%"}, "cni0": {"loss": "100%"}} if n["name"] == "node-1"
                             else {}) for n in SVC["nodes"]], network={"mode": "host-gw"})
    hints = impaired.hints(gw, _node_failed(gw, {("node-1", "web-2")}), [], 1.0)
    assert [h.split(" ")[0] for h in hints] == ["node-1:eth0"], hints
    assert impaired.hints(gw, _node_failed(gw, {("node-1", "web-1")}), [], 1.0)[0].startswith("node-1:cni0 ")


def test_routes_take_the_nodes_longest_planned_prefix():
    lab = _lab({})
    routes = impaired.Routes(lab)
    assert routes.devices("node-1", "10.244.0.3") == {"cni0"}  # its pod client
    assert routes.devices("node-1", "10.244.1.2") == {"flannel.1", "eth0"}  # web-2, on node-2
    assert routes.devices("node-1", "192.168.122.3") == {"eth0"}  # node-2, on the underlay
    assert routes.devices("node-1", "8.8.8.8") == {"eth0"}  # the default route
    assert routes.devices("node-1", "192.168.122.2") == set()  # its own address: local
