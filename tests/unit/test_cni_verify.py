"""A pod whose chain has no CHECK, judged against the chain's cached ADD result (netlab/cni/verify.py)."""

from __future__ import annotations

from ipaddress import IPv4Network

from netlab.cni.verify import compare, pod_routes, pod_side
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg, RouteMsg

MAC = "0a:58:0a:f4:00:05"
RESULT = {"cniVersion": "0.3.1",
          "interfaces": [{"name": "cni0", "mac": "0a:58:0a:f4:00:01"},  # the node's bridge: no sandbox
                         {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:ff"},
                         {"name": "eth0", "mac": MAC, "sandbox": "/var/run/netns/lab-a"}],
          "ips": [{"version": "4", "address": "10.244.0.5/24", "gateway": "10.244.0.1", "interface": 2}]}


def _link(index: int, name: str, mac: str | None) -> LinkMsg:
    return LinkMsg(index=index, name=name, kind="veth", up=True, mtu=1500, mac=mac, master=None, peer=None,
                   peer_netnsid=None, alias=None, group=0, txqlen=1000)


def _pod(mac: str = MAC, address: str = "10.244.0.5", links: bool = True) -> Snapshot:
    snap = Snapshot(netns="lab-a")
    if links:
        snap.links = {"lo": _link(1, "lo", None), "eth0": _link(2, "eth0", mac)}
        snap.addrs = [AddrMsg(index=2, address=address, prefixlen=24, broadcast=None, scope=0, label="eth0")]
    return snap


def test_only_the_interfaces_the_result_puts_in_the_pod_are_judged():
    assert pod_side(RESULT) == [("eth0", MAC, ["10.244.0.5/24"])]
    assert compare(RESULT, _pod()) is None
    # a 0.2.0 result names no interface: its ip4 is CNI_IFNAME's, the pod's IP the runtime reports
    assert pod_side({"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.5/24"}}) == [("eth0", None, ["10.244.0.5/24"])]
    assert pod_side({"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.5/24"}}, "net1") == [("net1", None,
                                                                                         ["10.244.0.5/24"])]


V020 = {"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.5/24", "gateway": "10.244.0.1"}}


def test_a_result_without_interfaces_holds_the_pod_to_its_address_on_eth0():
    """QA q24 #1: a chain whose last plugin gave a 0.2.0 result (ip4 only, read as libcni reads it) and sets
    disableCheck: the pod cut off (no eth0) was "all as planned"; its address moved too."""
    assert compare(V020, _pod()) is None
    assert compare(V020, _pod(links=False)) == "its eth0 is gone"
    assert compare(V020, _pod(address="10.244.0.6")) == "its eth0 lacks 10.244.0.5/24"
    no_index = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": MAC, "sandbox": "/x"}],
                "ips": [{"address": "10.244.0.5/24"}]}  # 1.0.0 allows an ips entry without its interface's index
    assert pod_side(no_index) == [("eth0", MAC, ["10.244.0.5/24"])]
    assert compare(no_index, _pod(links=False)) == "its eth0 is gone"


def test_what_the_pod_lacks_is_said():
    assert compare(RESULT, _pod(links=False)) == "its eth0 is gone"
    assert compare(RESULT, _pod(address="10.244.0.6")) == "its eth0 lacks 10.244.0.5/24"
    assert compare(RESULT, _pod(mac="0a:58:0a:f4:00:99")) == f"its eth0 has MAC 0a:58:0a:f4:00:99, the plugins gave {MAC}"
    assert compare(RESULT, _pod(mac=MAC.upper())) is None  # the same MAC, written otherwise


def _route(dst: str, dst_len: int, gw: str | None, table: int = 254) -> RouteMsg:
    return RouteMsg(table=table, dst=dst, dst_len=dst_len, tos=0, gateway=gw, oif=2, proto=3, scope=0, type=1,
                    flags=0, priority=None, prefsrc=None, multipath=False)


ROUTED = {**RESULT, "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.0.1"}, {"dst": "10.244.0.0/16"},
                               {"dst": "fd00::/64", "gw": "fd00::1"}, {"dst": "10.9.0.0/24", "table": 100}]}


def test_the_routes_the_result_lists_must_be_in_the_pod():
    """A chain without CHECK (0.3.1, disableCheck): the bridge plugin's default route deleted by hand cut the pod off
    the other nodes, and status said all as planned. IPv6 routes are not read (netlab reads IPv4 routes)."""
    snap = _pod()
    snap.routes = [_route("0.0.0.0", 0, "10.244.0.1"), _route("10.244.0.0", 16, "10.244.0.1"),
                   _route("10.9.0.0", 24, None, table=100)]
    assert pod_routes(ROUTED) == [(IPv4Network("0.0.0.0/0"), "10.244.0.1", 254),
                                  (IPv4Network("10.244.0.0/16"), None, 254), (IPv4Network("10.9.0.0/24"), None, 100)]
    assert compare(ROUTED, snap) is None
    snap.routes = snap.routes[1:]
    assert compare(ROUTED, snap) == "it lacks the route default via 10.244.0.1"
    snap.routes.append(_route("0.0.0.0", 0, "10.244.0.254"))  # another gateway than the plugins'
    assert compare(ROUTED, snap) == "it lacks the route default via 10.244.0.1"
    snap.routes = [_route("0.0.0.0", 0, "10.244.0.1"), _route("10.244.0.0", 16, "10.244.0.1")]
    assert compare(ROUTED, snap) == "it lacks the route 10.9.0.0/24 table 100"
