"""QA q48 (observation): trace's note "the path crosses interfaces netlab impairs" named web:eth0 (rate 10mbit,
hop r1) for `other -> web` that a REJECT in node n1's FORWARD chain answered: r1 is where web would have sent its
answer, but the request never reached web, and the reset n1 sent in web's name never crossed web's eth0. The note
names only rows the packets passed (no root: walks written by hand, as the capture marked them)."""

from __future__ import annotations

from types import SimpleNamespace

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.trace.crossed import crossed
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.lossblame import on_path
from netlab.trace.verdict import Verdict

LAB = {"name": "q48", "nodes": [{"name": "n1", "ip": "192.168.122.2", "podCIDR": "10.244.0.0/24"}],
       "pods": [{"name": "web", "node": "n1", "ip": "10.244.0.2", "impair": {"eth0": {"rate": "10mbit"}}},
                {"name": "other", "node": "n1", "ip": "10.244.0.3", "impair": {"eth0": {"rate": "1mbit"}}}]}


def _hop(netns: str, dev: str, direction: str, seen: bool | None, way: str, index: int) -> Hop:
    flow = Flow("tcp", "10.244.0.3", "10.244.0.2", 40000, 8080)
    return Hop(netns=netns, where=netns, device=dev, kind="route", decision="", direction=way, index=index,
               observe=Observe(netns, dev, direction, flow, "request" if way == "forward" else "reply"), seen=seen)


def _walks(forward_seen: list[bool], reply_seen: list[bool]) -> tuple[Walk, Walk]:
    """other -> web through n1's bridge, and web's answer back: eth0 out, the node's two ports, eth0 in."""
    path = [("q48-other", "eth0", "out"), ("q48-n1", "veth-o", "in"), ("q48-n1", "veth-w", "out"),
            ("q48-web", "eth0", "in")]
    back = [("q48-web", "eth0", "out"), ("q48-n1", "veth-w", "in"), ("q48-n1", "veth-o", "out"),
            ("q48-other", "eth0", "in")]
    fwd = Walk([_hop(*p, s, "forward", i + 1) for i, (p, s) in enumerate(zip(path, forward_seen))], "delivered")
    rep = Walk([_hop(*p, s, "reply", i + 1) for i, (p, s) in enumerate(zip(back, reply_seen))], "delivered")
    return fwd, rep


def test_a_reply_the_node_sent_in_the_destinations_name_never_crossed_the_destinations_eth0():
    lab = resolve(Topology.model_validate(LAB))
    fwd, rep = _walks([True, True, False, False], [False, False, True, True])
    lost = Verdict(False, 2, "look at the firewall")
    result = SimpleNamespace(forward=fwd, reply=rep, verdict=lost, reply_verdict=Verdict(True, None, None))
    assert [(i["target"], i["direction"], i["hop"]) for i in on_path(lab, result)] == [("other:eth0", "forward",
                                                                                          "1")]
    assert [h.index for h in crossed(rep, result.reply_verdict, answered=False)] == [3, 4]
    # web got the request and answered: its eth0 sent the answer (r1)
    fwd, rep = _walks([True] * 4, [True] * 4)
    result = SimpleNamespace(forward=fwd, reply=rep, verdict=Verdict(True, None, None),
                             reply_verdict=Verdict(True, None, None))
    assert [(i["target"], i["direction"], i["hop"]) for i in on_path(lab, result)] == [
        ("other:eth0", "forward", "1"), ("web:eth0", "reply", "r1")]


def test_a_packet_lost_on_the_way_crossed_no_row_after_the_one_it_was_lost_at():
    fwd, _ = _walks([True, False, False, False], [])
    assert [h.index for h in crossed(fwd, Verdict(False, 1, "lost"))] == [1, 2]
    assert [h.index for h in crossed(fwd, Verdict(True, None, None))] == [1, 2, 3, 4]
    assert crossed(None, None) == []
    _, rep = _walks([], [None] * 4)  # nothing captured there, and no request arrived: no answer passed anything
    assert crossed(rep, None, answered=False) == []


def test_a_packet_netfilter_dropped_in_a_namespace_never_left_by_the_device_its_route_picked():
    """QA q54 #4: a policy's REJECT in n1's FORWARD dropped the packet after n1's route picked the port to web
    (row 3, out on veth-w, NOT SEEN): the note named veth-w's impairment, whose queue the packet never reached
    (tcpdump there saw nothing). The kernel routes, then runs FORWARD and POSTROUTING, then sends."""
    fwd, _ = _walks([True, True, False, False], [])
    reject = Hop(netns="q48-n1", where="q48-n1", device="veth-w", kind="drop", decision="FORWARD → REJECT",
                 direction="forward", index=4, facts={"dropped_here": True})
    fwd.hops.insert(3, reject)
    assert [h.index for h in crossed(fwd, Verdict(False, 3, "dropped by policy"))] == [1, 2, 4]
    # lost at that row by anything else (netem's loss at the device's queue, a full queue): it did reach it
    assert [h.index for h in crossed(fwd, Verdict(False, 2, "lost"))] == [1, 2, 3]
