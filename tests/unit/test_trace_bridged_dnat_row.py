"""The bridge row of a bridged DNAT says which way the kernel sent the frame back into the bridge (no root).

A client's packet to its Service, DNATed by br_netfilter at cni0's port to web-1 behind cni0 too: with web-1's ARP
entry connected before the packet, br_nf_pre_routing_finish_bridge writes its cached header on the frame and the
bridge switches it straight on (never on cni0); without one (or a STALE one) it hands the frame to the entry's
output on cni0, which ARPs when it must and transmits the frame on cni0, where taps see it leave (qa-q45 #2: the
row said "never seen on cni0 itself" though tcpdump -p on cni0 saw the ARP exchange and then the SYN).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow, Packet
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import mark_seen
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, lab_from

ROOT = Path(__file__).resolve().parents[2]
WEB_IP, CLIENT, WEB_1 = "10.96.0.20", "10.244.0.3", "10.244.0.2"
FLOW = Flow("tcp", CLIENT, WEB_IP, 40000, 80)
DNATED = Flow("tcp", CLIENT, WEB_1, 40000, 8080)


class BeforeKernel(FakeKernel):
    """The fake kernel with web-1's entry on node-1's cni0 as it was before the packet (None: not read)."""

    before: str | None = "REACHABLE"
    header: bool | None = True  # whether the entry held its cached Ethernet header (kernel.neigh_header_before)

    def neigh_state_before(self, netns, dev, ip):
        return self.before if (netns, dev, ip) == ("svc-node-1", "cni0", WEB_1) else "REACHABLE"

    def neigh_header_before(self, netns, dev, ip):
        return self.header if (netns, dev, ip) == ("svc-node-1", "cni0", WEB_1) else True


def bridge_row(before: str | None, header: bool | None = True):
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    k = BeforeKernel(lab, plan)
    k.header = header
    if before is not None:
        k.before = before
    else:
        k.neigh_state_before = None  # a kernel that did not read the entries before the packet
    k.ct["svc-node-1"] = [CtEntry(FLOW, Flow("tcp", WEB_1, CLIENT, 8080, 40000), "SYN_RECV")]
    w = walk(k, LabMap.from_lab(lab, plan), "svc-client", FLOW)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-1", w.reason
    [row] = [h for h in w.hops if h.kind == "bridge" and h.netns == "svc-node-1" and h.device == "cni0"]
    return row


def test_with_a_connected_entry_the_frame_is_switched_straight_on_and_never_seen_on_cni0():
    row = bridge_row("REACHABLE")
    assert row.observe is None
    assert ("the ARP entry for 10.244.0.2 (web-1) was REACHABLE before the packet, and a packet was sent through it "
            "since it was written, so br_netfilter writes its cached Ethernet header on the frame and the bridge "
            "switches it straight on from port ") in row.decision
    assert "(never seen on cni0 itself)" in row.decision, row.decision
    assert row.facts["bridged_dnat_via"] == "port" and row.facts["neigh_before"] == "REACHABLE"
    assert "ip -n svc-node-1 neigh show 10.244.0.2 dev cni0" in row.commands


@pytest.mark.parametrize("before, then", [
    ("no entry", "it asks who-has first and holds the frame until the answer"),
    ("STALE", "it sends the frame at once, and confirms the entry later")])
def test_without_one_it_goes_out_through_cni0_and_the_capture_there_sees_it(before, then):
    row = bridge_row(before)
    assert "never seen on cni0" not in row.decision, row.decision
    state = "no ARP entry for 10.244.0.2 (web-1)" if before == "no entry" else \
        f"the ARP entry for 10.244.0.2 (web-1) {before}"
    assert (f"with {state} before the packet, br_netfilter hands the frame to that entry's "
            f"output on cni0 ({then}): the frame leaves by cni0 itself (a capture on cni0 sees it)") in row.decision
    assert row.facts["bridged_dnat_via"] == "cni0" and row.facts["neigh_before"] == before
    o = row.observe
    assert o is not None and (o.netns, o.ifname, o.direction, o.flow, o.role) == \
        ("svc-node-1", "cni0", "out", DNATED, "request")
    sent = Packet("svc-node-1", "cni0", "out", 1.0, DNATED, "request", ttl=64)
    mark_seen([row], [sent], {"svc-node-1"})
    assert row.seen is True and row.facts["ttl"] == 64
    mark_seen([row], [], {"svc-node-1"})
    assert row.seen is False


def test_not_knowing_the_entry_before_the_row_names_both_ways():
    row = bridge_row(None)
    assert row.observe is None and "bridged_dnat_via" not in row.facts
    assert "switched straight back from port " in row.decision and "when the ARP entry for 10.244.0.2 (web-1) is " \
        "resolved (never seen on cni0 itself), else through that entry's output on cni0 (seen leaving cni0)" \
        in row.decision, row.decision


@pytest.mark.parametrize("before", ["PERMANENT", "REACHABLE"])
def test_a_connected_entry_nothing_was_sent_through_has_no_cached_header_and_goes_out_through_cni0(before):
    """qa-q54 #1: `ip neigh add ... nud permanent` (or reachable) makes a connected entry with no cached header
    yet (the first packet through it builds it): br_nf_pre_routing_finish_bridge hands the frame to the entry's
    output on cni0, where tcpdump sees it. The row said "switched straight on ... never seen on cni0"."""
    row = bridge_row(before, header=False)
    assert "never seen on cni0" not in row.decision, row.decision
    assert (f"the ARP entry for 10.244.0.2 (web-1) was {before} before the packet, but nothing was sent through it "
            "since it was made, so it has no cached Ethernet header yet") in row.decision, row.decision
    assert row.facts["bridged_dnat_via"] == "cni0" and row.facts["neigh_before"] == before
    o = row.observe
    assert o is not None and (o.netns, o.ifname, o.direction, o.flow) == ("svc-node-1", "cni0", "out", DNATED)


def test_a_connected_entry_whose_header_cannot_be_told_names_both_ways():
    row = bridge_row("PERMANENT", header=None)
    assert row.observe is None and "bridged_dnat_via" not in row.facts and row.facts["neigh_before"] == "PERMANENT"
    assert "br_netfilter writes its cached Ethernet header on the frame and the bridge switches it straight on from " \
        "port " in row.decision and "(never seen on cni0 itself), else (no header cached yet) it hands the frame to " \
        "the entry's output on cni0, which caches it (seen leaving cni0): the kernel does not show which" \
        in row.decision, row.decision


@pytest.mark.parametrize("used, updated, probes, header", [
    (100, 100, 0, False),  # made by hand, nothing sent through since (used is set as the entry is made)
    (101, 100, 0, False),  # the same, the write a tick after the making
    (5, 100, 0, True),  # sent through since it was written
    (100, 100, 3, True),  # resolved by ARP: the packet that waited for the answer went through it
    (900, 100, 3, None),  # used before a later rewrite (which keeps a cached header): not known
])
def test_the_entrys_ages_say_whether_it_holds_a_cached_header(monkeypatch, used, updated, probes, header):
    from types import SimpleNamespace

    from netlab.kernel.rtnl_parse import NeighMsg
    from netlab.trace.kernel import LiveKernel

    k = LiveKernel()
    monkeypatch.setattr(k, "links", lambda ns: {"cni0": SimpleNamespace(index=4)})
    k.neighbours_before("n1", [NeighMsg(2, 4, WEB_1, "aa:bb:cc:dd:ee:ff", 0x80, 0, None, used, updated, probes)])
    assert k.neigh_header_before("n1", "cni0", WEB_1) is header
    assert k.neigh_header_before("n1", "cni0", "10.244.0.9") is None  # no entry


def test_a_neighbour_dumps_ages_and_probes_are_read():
    """NDA_CACHEINFO (confirmed, used, updated, refcnt: `ip -s neigh`'s used A/B/C) and NDA_PROBES."""
    import struct

    from netlab.kernel import rtnl
    from netlab.kernel.netlink import Msg, attr, ipv4, u32
    from netlab.kernel.rtnl_parse import parse_neigh

    body = rtnl.NDMSG.pack(rtnl.AF_INET, 4, rtnl.NUD_PERMANENT, 0, 0) + ipv4(rtnl.NDA_DST, WEB_1) + \
        attr(rtnl.NDA_CACHEINFO, struct.pack("=IIII", 7, 120, 130, 1)) + u32(rtnl.NDA_PROBES, 0)
    n = parse_neigh(Msg(28, 0, 0, body))
    assert (n.dst, n.used, n.updated, n.probes) == (WEB_1, 120, 130, 0)
    bare = parse_neigh(Msg(28, 0, 0, rtnl.NDMSG.pack(rtnl.AF_INET, 4, rtnl.NUD_PERMANENT, 0, 0)))
    assert (bare.used, bare.updated, bare.probes) == (None, None, None)


@pytest.mark.parametrize("now", ["INCOMPLETE", "FAILED"])
def test_a_frame_held_for_an_arp_answer_that_never_came_is_said_never_to_leave_cni0(now):
    """QA: conntrack-stale-entry's `trace client svc/kube-system/kube-dns --sport 40053`: the stale entry DNATs to an address
    behind cni0 that nobody answers for. The row was NOT SEEN on cni0 while its words said the frame "leaves by
    cni0 itself (a capture on cni0 sees it)": the entry's output held it for an answer that never came."""
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    k = BeforeKernel(lab, plan)
    k.before = "no entry"
    k.no_neigh[("svc-node-1", "cni0", WEB_1)] = now  # the entry after the packet: no answer came
    k.ct["svc-node-1"] = [CtEntry(FLOW, Flow("tcp", WEB_1, CLIENT, 8080, 40000), "SYN_RECV")]
    w = walk(k, LabMap.from_lab(lab, plan), "svc-client", FLOW)
    [row] = [h for h in w.hops if h.kind == "bridge" and h.netns == "svc-node-1" and h.device == "cni0"]
    assert "a capture on cni0 sees it" not in row.decision and "leaves by cni0 itself" not in row.decision, row.decision
    assert (f"it asks who-has first and holds the frame until the answer): no answer came (the entry is {now} "
            "after the packet), so the frame never left by cni0 (a capture on cni0 shows only the who-has requests); "
            "answered, it would leave by cni0 itself") in row.decision, row.decision
    assert row.facts["bridged_dnat_via"] == "cni0" and row.observe is not None  # NOT SEEN there, as said
