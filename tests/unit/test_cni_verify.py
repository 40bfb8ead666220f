"""A pod whose chain has no CHECK, judged against the chain's cached ADD result (netlab/cni/verify.py)."""

from __future__ import annotations

from netlab.cni.verify import compare, pod_side
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg

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
    # a 0.2.0 result names no interface: nothing to hold the pod to
    assert pod_side({"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.5/24"}}) == []


def test_what_the_pod_lacks_is_said():
    assert compare(RESULT, _pod(links=False)) == "its eth0 is gone"
    assert compare(RESULT, _pod(address="10.244.0.6")) == "its eth0 lacks 10.244.0.5/24"
    assert compare(RESULT, _pod(mac="0a:58:0a:f4:00:99")) == f"its eth0 has MAC 0a:58:0a:f4:00:99, the plugins gave {MAC}"
    assert compare(RESULT, _pod(mac=MAC.upper())) is None  # the same MAC, written otherwise
