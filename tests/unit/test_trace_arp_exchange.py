"""The ARP exchange a traced packet waited for is shown from the trace's own capture (no root).

The walk reads a neighbour entry after the packet: "REACHABLE" of an entry that did not exist before it. With the
entry's state before the packet (the fake kernel's ``neigh_state_before``, as LiveKernel keeps the dump it takes
before sending) and the ARP frames captured, the row says the kernel had no entry, asked and got an answer, and shows
both frames (``saw:``; ``-o json``: the row's evidence and facts, and ``arp``). An entry the packet found stays
the plain row; one the destination learned from the sender's own request says so.
"""

from __future__ import annotations

from netlab.trace.facts import NeighFacts
from netlab.trace.flow import Flow, Packet
from netlab.trace.render import _rows
from netlab.trace.run import _arp_story as story
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, LabMap, build_plan, lab_from, two_node_topology

POD, GW = "demo-fedora-1", "10.244.0.1"
ASK = "ARP, Request who-has 10.244.0.1 tell 10.244.0.2, length 28"
ANSWER = "ARP, Reply 10.244.0.1 is-at 0a:58:0a:f4:00:01, length 28"


class BeforeKernel(FakeKernel):
    """The fake kernel, with the entries as they were before the packet: none for ``missing``."""

    missing: set[tuple[str, str, str]] = set()

    def neigh_state_before(self, netns, dev, ip):
        return "no entry" if (netns, dev, ip) in self.missing else "REACHABLE"


def arp(netns, dev, direction, op, spa, tpa, summary, ts=0.5):
    return Packet(netns, dev, direction, ts, None, arp={"op": op, "spa": spa, "tpa": tpa}, summary=summary)


def traced(missing, packets):
    lab = lab_from(two_node_topology("demo"))
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), BeforeKernel(lab, plan)
    k.missing = missing
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7))
    assert w.outcome == "delivered"
    return w, story(w, packets), next(h for h in w.hops if h.kind == "neigh")


def test_a_next_hop_without_an_entry_before_the_packet_shows_the_request_and_its_answer():
    frames = [arp(POD, "eth0", "out", 1, "10.244.0.2", GW, ASK), arp(POD, "eth0", "in", 2, GW, "10.244.0.2", ANSWER),
              arp("demo-minikube", "cni0", "out", 1, "10.244.0.1", "10.244.0.9", "ARP, Request who-has 10.244.0.9")]
    w, told, row = traced({(POD, "eth0", GW)}, frames)
    assert row.decision.startswith(f"no ARP entry for {GW} before the packet: the kernel held the packet "
                                   f"back, asked who-has {GW} (1x) and sent it once {GW} "
                                   "answered; the entry is now "), row.decision
    assert row.decision.endswith("(REACHABLE)")
    assert row.evidence == ASK and row.to_json()["facts"]["arp_request"] == ASK
    assert row.to_json()["facts"]["arp_reply"] == ANSWER and row.facts["state_before"] == "no entry"
    assert told == [{"text": ASK, "count": 1, "netns": POD, "ifname": "eth0", "answered": True, "reply": ANSWER,
                     "state_before": "no entry", "ip": GW}]
    text = _rows([row])
    assert text[1:3] == [f"{' ' * 15}saw: {ASK}", f"{' ' * 15}saw: {ANSWER}"], text


def test_an_entry_the_packet_found_is_the_plain_row_and_no_exchange():
    w, told, row = traced(set(), [arp(POD, "eth0", "out", 1, "10.244.0.2", GW, ASK)])
    assert row.decision.startswith(f"ARP entry: {GW} (minikube cni0) is at ") and told == []
    assert "arp_request" not in row.facts and not any(line.strip().startswith("saw:") for line in _rows([row]))


def test_an_entry_learned_from_the_senders_own_request_says_so():
    heard = arp(POD, "eth0", "in", 1, GW, "10.244.0.2", "ARP, Request who-has 10.244.0.2 tell 10.244.0.1")
    w, told, row = traced({(POD, "eth0", GW)}, [heard])
    assert f"before the packet: learned from the ARP request {GW} sent for 10.244.0.2" in row.decision
    assert row.evidence == heard.summary and told == []


def _text(w, told):
    from netlab.trace.render import TraceResult, number, render_text
    from netlab.trace.verdict import explain

    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"}, dst={"name": "x", "ip": "10.244.1.3"},
                    proto="icmp", port=None, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=True, arp=told)
    number(r)
    return render_text(r)


def test_the_summary_does_not_repeat_the_exchange_its_row_tells():
    """A first trace: the row says the kernel asked and got an answer and shows both frames; the lines under
    `result:` said the same request again ("... (1x on demo-fedora-1 eth0, answered)")."""
    frames = [arp(POD, "eth0", "out", 1, "10.244.0.2", GW, ASK), arp(POD, "eth0", "in", 2, GW, "10.244.0.2", ANSWER)]
    w, told, row = traced({(POD, "eth0", GW)}, frames)
    text = _text(w, told)
    assert text.count(ASK) == 1 and f"saw: {ASK}" in text and "x on " not in text, text
    assert told[0]["answered"] and told[0]["reply"] == ANSWER  # -o json keeps the whole exchange


def test_an_unanswered_request_is_still_said_under_the_result():
    w, told, row = traced({(POD, "eth0", GW)}, [arp(POD, "eth0", "out", 1, "10.244.0.2", GW, ASK)])
    assert "no answer seen" in row.decision
    assert f"  {ASK} (1x on {POD} eth0, no answer)" in _text(w, told)


class FailedSinceKernel(BeforeKernel):
    """The pod's entry for its gateway STALE before the packet, FAILED when the walk reads it (its probes went
    unanswered while trace waited for a reply)."""

    mac = ""

    def neigh_before(self, netns, dev, ip):
        return NeighFacts(ip, dev, self.mac, "STALE") if (netns, dev, ip) == (POD, "eth0", GW) else None


def test_an_entry_usable_before_the_packet_and_failed_since_sent_it():
    """The kernel sends by a STALE entry at once, then probes it (DELAY 5 s, 3 probes 1 s apart): read after a
    long wait, it is FAILED though the packet had left by it. The walk stopped there ("no ARP answer")."""
    lab = lab_from(two_node_topology("demo"))
    plan = build_plan(lab)
    k = FailedSinceKernel(lab, plan)
    k.mac = k.neigh(POD, "eth0", GW).lladdr  # cni0's
    k.no_neigh = {**k.no_neigh, (POD, "eth0", GW): "FAILED"}
    w = walk(k, LabMap.from_lab(lab, plan), POD, Flow.icmp(None, "10.244.1.3", 7))
    assert w.outcome == "delivered", w.hops[-1].problem
    row = next(h for h in w.hops if h.kind == "neigh")
    assert (row.problem, row.facts["state"], row.facts["state_before"]) == (None, "FAILED", "STALE")
    assert row.decision == (f"ARP entry: {GW} (minikube cni0) is at {k.mac} (STALE before the packet, which "
                            "the kernel sent at once; FAILED since: nothing answered its probes)")
