"""The fake kernel's routes against the real kernel's, in scratch namespaces (root): the same ops applied to both
(netlab.kernel.live and netlab.kernel.fake) give the same routes, and the live one's are what `ip -j route show
table all` shows, before and after the device they go through is set down, and once it is up again."""

from __future__ import annotations

import uuid
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from helpers import ip_json
from netlab.kernel import netns as nsmod
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.kernel.live import LiveKernel
from netlab.plan.resources import Address, Route, Veth

pytestmark = pytest.mark.root

GW = IPv4Address("10.9.0.254")


def shown(k, ns: str) -> set[tuple]:
    """(table, dst, gateway, device, type) of each unicast, local and broadcast route a dump shows (lo's too: the
    local table's are the lab's, status compares them)."""
    snap = k.snapshot(ns, tables=False)
    names = {link.index: name for name, link in snap.links.items()}
    return {(r.table, f"{r.dst}/{r.dst_len}", r.gateway, names.get(r.oif), r.type) for r in snap.routes}


def ip_shown(ns: str) -> set[tuple]:
    """The same, as the kernel's own tool shows them."""
    tables = {"main": 254, "local": 255}
    out = set()
    for r in ip_json("-4", "route", "show", "table", "all", netns=ns):
        kind = {"local": 2, "broadcast": 3}.get(r.get("type", "unicast"), 1)
        dst = "0.0.0.0/0" if r["dst"] == "default" else r["dst"] if "/" in r["dst"] else f"{r['dst']}/32"
        table = r.get("table", "main")
        out.add((tables[table] if table in tables else int(table), dst, r.get("gateway"), r.get("dev"), kind))
    return out


def test_a_device_set_down_takes_the_same_routes_in_the_fake_as_in_the_kernel():
    tag = f"trq{uuid.uuid4().hex[:6]}"
    a, b = f"{tag}-a", f"{tag}-b"
    veth = Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                peer_mac="02:00:00:00:00:0b")

    def route(dst: str, **kw) -> Op:
        return Op("replace", Route(**{"netns": a, "dst": IPv4Network(dst), "gateway": None, "dev": "va", **kw}))
    ops = [Op("add", veth), Op("add", Address(netns=a, dev="va", address=IPv4Interface("10.9.0.1/24"))),
           route("10.8.0.0/16", gateway=GW), route("10.7.0.0/16", gateway=GW, dev=None),
           route("10.6.0.0/16", gateway=IPv4Address("1.2.3.4"), onlink=True),
           route("10.5.0.0/16", table=100, scope="link"), route("0.0.0.0/0", gateway=GW)]
    steps = [("made", ops), ("down", [Op("set", replace(veth, up=False), old=veth)]),
             ("up again", [Op("set", veth, old=replace(veth, up=False))])]
    live, fake = LiveKernel(), FakeKernel()
    try:
        for ns in (a, b):
            live.create_netns(ns, nsmod.make_tag(tag, uuid.uuid4().hex), [])
            fake.create_netns(ns, "t", [])
        for what, batch in steps:
            live.apply(batch, order=[a, b])
            fake.apply(batch, order=[a, b])
            real = ip_shown(a)
            assert shown(live, a) == real, what
            assert shown(fake, a) == real, (what, shown(fake, a) ^ real)
            if what == "down":  # what the real kernel keeps of va's: the local route of its address, nothing else
                assert {r for r in real if r[3] == "va"} == {(255, "10.9.0.1/32", None, "va", 2)}, real
            if what != "down":  # its broadcast one (the subnet's last address: no brd given) while it is up
                assert (255, "10.9.0.255/32", None, "va", 3) in real, real
            if what == "made":
                assert (254, "10.7.0.0/16", str(GW), "va", 1) in real, real
    finally:
        for ns in (a, b):
            if nsmod.exists(ns):
                live.delete_netns(ns)
        live.close()
    assert not any(nsmod.exists(ns) for ns in (a, b))
