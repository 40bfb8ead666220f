"""A route's preferred source and metrics are what the kernel holds too (QA fl59 1): `ip route replace
10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink mtu 1300` on a node made probe --mtu fail (fragmentation
needed) while status said all as planned and up changed nothing, and inspect's `ip route` lines dropped the
mtu. No route of the plan has a src or a metric (Flannel's and the CNI plugins' have none), so any is drift:
status names it as ip prints it, up replaces the route (a replace without them clears them)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from fake_lab import make_lab, status, up
from pyroute2.netlink.rtnl.rtmsg import rtmsg
from test_rtnl import decode, encode

from netlab.kernel import netlink as nl, rtnl, rtnl_parse
from netlab.kernel.fake import FakeKernel
from netlab.plan.build import build_plan
from netlab.plan.resources import Route
from netlab.plan.route_attrs import metric_words
from netlab.realize.diff import describe_difference

lab = pytest.fixture(make_lab, name="lab")

RTAX_LOCK, RTAX_MTU, RTAX_RTT, RTAX_ADVMSS, RTAX_FEATURES, RTAX_RTO_MIN, RTAX_CC_ALGO = 1, 2, 4, 8, 12, 13, 16


def flannel_route(**kw) -> Route:
    return Route(netns="fk-n1", dst=IPv4Network("10.244.1.0/24"), gateway=IPv4Address("10.244.1.0"),
                 dev="flannel.1", onlink=True, **kw)


def test_parse_route_reads_the_metrics_and_the_preferred_source():
    m = encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 24, "table": 254, "proto": 3, "type": 1},
               [("RTA_DST", "10.244.1.0"), ("RTA_TABLE", 254), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 4),
                ("RTA_PREFSRC", "10.244.0.1"),
                ("RTA_METRICS", {"attrs": [("RTAX_LOCK", 1 << RTAX_MTU), ("RTAX_MTU", 1300),
                                           ("RTAX_ADVMSS", 1000)]})])
    r = rtnl_parse.parse_route(m)
    assert r.prefsrc == "10.244.0.1"
    assert r.metrics == ((RTAX_LOCK, 1 << RTAX_MTU), (RTAX_MTU, 1300), (RTAX_ADVMSS, 1000))
    assert rtnl_parse.parse_route(encode(
        rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 24, "table": 254, "proto": 3, "type": 1},
        [("RTA_DST", "10.244.1.0"), ("RTA_TABLE", 254)])).metrics == ()


def test_metrics_in_ip_route_s_words():
    """iproute2's print_rta_metrics: RTAX order, `lock` after a locked one's name, rtt in ms (the kernel's
    eighths), the congestion control by name, features by name."""
    assert metric_words(((RTAX_MTU, 1300),)) == ["mtu 1300"]
    assert metric_words(((RTAX_LOCK, 1 << RTAX_MTU), (RTAX_MTU, 1300))) == ["mtu lock 1300"]
    assert metric_words(((RTAX_LOCK, 1 << RTAX_RTO_MIN), (RTAX_ADVMSS, 1000), (RTAX_RTT, 24000),
                         (RTAX_FEATURES, 1), (RTAX_RTO_MIN, 5), (RTAX_CC_ALGO, "cubic"))) == [
        "rtt 3s", "advmss 1000", "features ecn", "rto_min lock 5ms", "congctl cubic"]


def test_route_replace_carries_them():
    """What up (and a rollback putting back a hand-made route) sends: RTA_PREFSRC and RTA_METRICS, as `ip route
    replace ... src 10.244.0.1 mtu lock 1300` does."""
    data = rtnl.route_replace("10.244.1.0", 24, 4, "10.244.1.0", True, prefsrc="10.244.0.1",
                              metrics=((RTAX_LOCK, 1 << RTAX_MTU), (RTAX_MTU, 1300), (RTAX_CC_ALGO, "cubic")))
    msg, *_ = decode(rtmsg, data)
    assert msg.get_attr("RTA_PREFSRC") == "10.244.0.1"
    got = msg.get_attr("RTA_METRICS")
    assert (got.get_attr("RTAX_MTU"), got.get_attr("RTAX_LOCK")) == (1300, 1 << RTAX_MTU)
    back = rtnl_parse.parse_route(nl.Msg(rtnl.RTM_NEWROUTE, 0, 0, data[16:]))
    assert back.metrics == ((RTAX_LOCK, 1 << RTAX_MTU), (RTAX_MTU, 1300), (RTAX_CC_ALGO, "cubic"))
    assert back.prefsrc == "10.244.0.1"


def test_the_plan_s_routes_have_none():
    plan_routes = [r for r in build_plan(_default_lab()).resources
                   if isinstance(r, Route)]
    assert plan_routes and all(r.src is None and r.metrics == () for r in plan_routes)
    data = flannel_route().to_json()
    assert "src" not in data and "prefsrc" not in data and "metrics" not in data  # the plan's JSON as it was
    data = flannel_route(src=IPv4Address("10.244.0.1"), metrics=((RTAX_MTU, 1300),)).to_json()
    assert data["prefsrc"] == "10.244.0.1" and data["metrics"] == ["mtu 1300"]


def _default_lab():
    from netlab.api.topology import load
    return load(None).lab


def test_a_route_with_them_differs_in_ip_s_words():
    want = flannel_route()
    have = flannel_route(src=IPv4Address("10.244.0.1"), metrics=((RTAX_LOCK, 1 << RTAX_MTU), (RTAX_MTU, 1300)))
    assert have != want
    assert describe_difference(want, have) == "src 10.244.0.1 (want none), mtu lock 1300 (want none)"
    assert describe_difference(flannel_route(metrics=((RTAX_MTU, 1300),)), flannel_route()) == \
        "no metrics (want mtu 1300)"
    assert have.describe() == "route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink src 10.244.0.1 " \
                              "mtu lock 1300 in fk-n1"


def test_status_says_it_and_up_replaces_the_route(lab):
    k = FakeKernel()
    up(lab, k)
    ns = k.ns["fk-n1"]
    [planned] = [r for r in ns.routes if r.dev == "flannel.1"]
    ns.routes[ns.routes.index(planned)] = replace(planned, metrics=((RTAX_MTU, 1300),))
    assert status(lab, k).drift == [
        "different: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in fk-n1 (mtu 1300 (want none))"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == ["replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink "
                                               "in fk-n1"]
    assert status(lab, k).ok and planned in ns.routes


def test_inspect_shows_them_as_ip_route_does(monkeypatch):
    """`ip route`'s order: src, metric, onlink, then the metrics (measured with iproute2 6.1:
    `10.5.0.0/24 via 10.9.0.2 dev d0 src 10.9.0.1 metric 5 onlink mtu 1300 rtt 3s ...`)."""
    import test_trace_kernel as tk

    route = tk.encode(rtmsg, rtnl.RTM_NEWROUTE, tk.ONLINK,
                      [("RTA_TABLE", 254), ("RTA_DST", "10.244.1.0"), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 5),
                       ("RTA_PREFSRC", "10.244.0.1"), ("RTA_PRIORITY", 5),
                       ("RTA_METRICS", {"attrs": [("RTAX_LOCK", 1 << RTAX_MTU), ("RTAX_MTU", 1300)]})])
    monkeypatch.setattr(tk, "ROUTES", tk.ROUTES[:2] + [route])
    kernel = tk.kernel.__wrapped__(monkeypatch)
    [*_, last] = kernel.routes(tk.NS)
    assert last["text"] == "10.244.1.0/24 via 10.244.1.0 dev flannel.1 src 10.244.0.1 metric 5 onlink mtu lock 1300"
    assert last["metrics"] == ["mtu lock 1300"] and last["metric"] == 5
