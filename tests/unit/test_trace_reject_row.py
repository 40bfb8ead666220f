"""The row of a NetworkPolicy's REJECT: where the endpoint's node runs it, in FORWARD after its route lookup, and
no later row of that node contradicting it (an ARP entry never asked for is not why)."""

from netlab.trace import policyverdict
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.policy import place_reject
from netlab.trace.render import TraceResult, label, number, render_text
from netlab.trace.verdict import Verdict

NS = "lab-n1"
ENTRY = {"pod": "default/web-1", "allowed": False, "node": "n1", "chain": "NETPOL-IN-ABC",
         "policies": ["default/web-from-clients"], "counted": True,
         "text": "dropped in node n1, chain NETPOL-IN-ABC, by policy default/web-from-clients (...)"}


def _hops() -> list[Hop]:
    return [
        Hop("lab-n2", "node n2", "flannel.1", "route", "route get 10.244.0.2 → via 10.244.0.0 dev flannel.1",
            facts={"iif": "eth0"}),
        Hop(NS, "node n1", "flannel.1", "arrive", "inner frame enters the IP layer"),
        Hop(NS, "node n1", "cni0", "route", "route get 10.244.0.2 → dev cni0 (forwarded)",
            facts={"iif": "flannel.1"}),
        Hop(NS, "node n1", "cni0", "neigh", "ARP entry for 10.244.0.2 (web-1): no entry",
            problem="no ARP entry for 10.244.0.2 on cni0: the packet never made the kernel ask (it did not get here?)"),
    ]


def test_a_reject_after_the_forwarded_route_is_the_lost_row_and_the_arp_row_has_no_problem():
    hops = _hops()
    at = place_reject(hops, 3, NS, ENTRY)
    assert at == 3
    row = hops[3]
    assert (row.netns, row.device, row.kind, row.problem) == (NS, "cni0", "drop", ENTRY["text"])
    assert "FORWARD (in on flannel.1, out on cni0)" in row.decision and "NETPOL-IN-ABC: REJECT" in row.decision
    assert "default/web-from-clients" in row.decision and row.facts["dropped_here"]
    arp = hops[4]
    assert arp.kind == "neigh" and arp.problem is None and arp.fix is None
    assert "never got here" in arp.decision and not any("ARP" in (h.problem or "") for h in hops)


def test_a_pod_to_pod_packet_lost_at_the_forwarded_route_row_gets_the_rejects_row_after_it():
    """A pod on another node, the pod's ARP entry known: the route row is the last one the packet would have been
    seen at (out on cni0, never seen), with no problem; the REJECT has its own row after it."""
    hops = _hops()
    hops[3] = Hop(NS, "node n1", "cni0", "neigh", "ARP entry: 10.244.0.2 (web-1) is at 02:00:00:00:00:02 (REACHABLE)")
    hops.append(Hop(NS, "node n1", "veth1", "bridge", "bridge cni0: FDB: 02:00:00:00:00:02 is behind port veth1",
                    facts={"port": "veth1", "bridge": "cni0", "lladdr": "02:00:00:00:00:02"}))
    assert place_reject(hops, 2, NS, ENTRY) == 3
    row = hops[3]
    assert (row.kind, row.problem, row.facts["chain"]) == ("drop", ENTRY["text"], "NETPOL-IN-ABC")
    assert row.decision.startswith("FORWARD (in on flannel.1, out on cni0) → chain NETPOL-IN-ABC: REJECT")
    assert [h.kind for h in hops] == ["route", "arrive", "route", "drop", "neigh", "bridge"]


def test_a_frame_the_bridge_switches_pod_to_pod_is_rejected_after_the_fdb_row():
    """Two pods of one node: cni0 switches the frame, and br_netfilter runs FORWARD in the bridge after the FDB
    picked the port (iptables sees it in and out on cni0). The packet was lost at the bridge's row, with no
    problem, and no row of the REJECT's own."""
    hops = [Hop("lab-c1", "pod c1", "eth0", "route", "route get 10.244.0.2 → dev eth0"),
            Hop(NS, "node n1", "veth0", "arrive", "arrives from eth0 in lab-c1; veth0 is a port of bridge cni0"),
            Hop(NS, "node n1", "veth1", "bridge", "bridge cni0: FDB: 02:00:00:00:00:02 is behind port veth1",
                facts={"port": "veth1", "bridge": "cni0", "lladdr": "02:00:00:00:00:02"}),
            Hop("lab-web-1", "pod web-1", "eth0", "deliver", "arrives from veth1 in lab-n1; delivered")]
    assert place_reject(hops, 2, NS, ENTRY) == 3
    row = hops[3]
    assert (row.netns, row.device, row.kind, row.problem) == (NS, "veth1", "drop", ENTRY["text"])
    assert row.decision == ("FORWARD (bridged by cni0 from port veth0 to port veth1: br_netfilter hands it to "
                            "iptables in and out on cni0) → chain NETPOL-IN-ABC: REJECT (NetworkPolicy "
                            "default/web-from-clients)")
    assert row.facts == {"chain": "NETPOL-IN-ABC", "policies": ["default/web-from-clients"], "dropped_here": True}
    assert hops[4].kind == "deliver" and hops[4].problem is None


def test_rows_lost_in_another_node_or_at_a_drop_of_their_own_stay_as_they_are():
    hops = _hops()
    assert place_reject(hops, 3, "lab-n2", ENTRY) is None and len(hops) == 4  # lost in another node
    hops[3].kind = "drop"
    assert place_reject(hops, 3, NS, ENTRY) is None and len(hops) == 4


def test_a_no_dnat_row_that_says_a_reject_counted_it_names_the_policy():
    hop = Hop(NS, "node n1", "eth0", "dnat", "no DNAT", facts={"dropped_here": True},
              problem="... dropped before conntrack kept one; a NetworkPolicy's REJECT in lab-n1 counted it in "
                      "FORWARD, before it left the node (chain NETPOL-IN-ABC; the policy is named below)")
    assert place_reject([hop], 0, NS, ENTRY) is None
    assert hop.problem is not None and hop.problem.endswith("(chain NETPOL-IN-ABC; policy default/web-from-clients)")


def _reply() -> list[Hop]:
    """The reply walk from web-1 back to a pod of n2: web-1's rows and n1's bridge rows never happened (web-1
    never got the request); n1's route towards n2 is where the REJECT's own reset leaves."""
    flow = Flow("tcp", "10.244.0.2", "10.244.1.2", 8080, 40000)
    return [Hop("lab-web-1", "pod web-1", "eth0", "route", "route get 10.244.1.2 → via 10.244.0.1 dev eth0",
                observe=Observe("lab-web-1", "eth0", "out", flow, "reply"), direction="reply"),
            Hop(NS, "node n1", "veth1", "arrive", "arrives from eth0 in lab-web-1", direction="reply"),
            Hop(NS, "node n1", "flannel.1", "route", "route get 10.244.1.2 → dev flannel.1 (forwarded)",
                facts={"oif": "flannel.1", "iif": "cni0"}, direction="reply"),
            Hop(NS, "node n1", "flannel.1", "neigh", "ARP entry ...", direction="reply"),
            Hop("lab-n2", "node n2", "flannel.1", "decap", "enters the IP layer", direction="reply"),
            Hop("lab-c2", "pod c2", "eth0", "deliver", "delivered", direction="reply")]


def test_the_reply_to_a_rejected_request_starts_at_the_reject_and_is_numbered_again():
    """A REJECT answers in the destination's name: the reply rows start with a row naming the REJECT's forward
    row by the number it has once inserted, then the node's own route; the rows of a reply from the destination
    that never got the request go, and the rest (labels, JSON index, the reply's loss) are numbered r1.. again."""
    hops = _hops()
    hops[3] = Hop(NS, "node n1", "cni0", "neigh", "ARP entry: 10.244.0.2 (web-1) is at 02:00:00:00:00:02 (REACHABLE)")
    hops.append(Hop("lab-web-1", "pod web-1", "eth0", "deliver", "arrives ...; delivered"))
    result = TraceResult(lab="lab", src={"name": "c2", "ip": "10.244.1.2"}, dst={"name": "web-1", "ip": "10.244.0.2"},
                         proto="tcp", port=8080, marker="m", forward=Walk(hops, "delivered"),
                         reply=Walk(_reply(), "delivered"), verdict=Verdict(False, 2, "lost"),
                         reply_verdict=Verdict(False, 4, "lost in n2"), reply_received=True)
    number(result)
    at = place_reject(hops, 2, NS, ENTRY)
    number(result)
    policyverdict._reply_from_reject(result, at)
    data = result.to_json()
    assert [h["index"] for h in data["hops"]] == [1, 2, 3, 4, 5, 6] and data["hops"][3]["kind"] == "drop"
    first = data["reply_hops"][0]
    assert (first["kind"], first["netns"], first["facts"]["reject_hop"]) == ("reject", NS, 4), first
    assert first["decision"].startswith("the REJECT at hop 4 answers the request with a TCP reset "
                                        "(10.244.0.2:8080 → 10.244.1.2:40000 tcp)"), first
    assert [(h["index"], h["netns"], h["kind"]) for h in data["reply_hops"]] == [
        (1, NS, "reject"), (2, NS, "route"), (3, NS, "neigh"), (4, "lab-n2", "decap"), (5, "lab-c2", "deliver")]
    # The reset leaves as n1's own packet (OUTPUT), not as a reply n1 forwards
    route = data["reply_hops"][1]
    assert route["decision"] == "route get 10.244.1.2 → dev flannel.1 (the node's own packet)", route
    assert "iif" not in route["facts"] and route["facts"]["oif"] == "flannel.1"
    assert data["reply_lost"]["hop"] == 4 and data["reply_lost"]["netns"] == "lab-n2"  # the same row as before
    assert [label(h) for h in result.reply.hops] == ["r1", "r2", "r3", "r4", "r5"]
    text = render_text(result, full_reply=True)
    assert " r1  -         lab-n1" in text and "lab-web-1" not in text.split("\nreply ")[1]


def test_a_pod_rejected_on_the_node_that_dnated_it_is_told_why_no_reset_comes_back():
    """nf_send_reset answers a packet br_netfilter handed to iptables straight out of its bridge port, past the NAT
    that would give the reset the Service's address: the client pod times out. Only where its own node both DNATed
    and REJECTed the packet; not a pod on another node, not a host."""
    from netlab.api.topology import load
    from netlab.trace.policy import unanswered_reset
    from netlab.trace.targets import Endpoint

    lab = load({"name": "lab", "nodes": [{"name": "n1"}, {"name": "n2"}],
                "pods": [{"name": "c1", "node": "n1"}, {"name": "c2", "node": "n2"}]}).lab
    c1, c2 = (Endpoint(p, "pod", str(lab.pod(p).ip)) for p in ("c1", "c2"))
    note = unanswered_reset(lab, c1, "n1", "n1", "10.96.0.11:80", "10.244.0.5", 8080)
    assert note is not None and note.startswith("; the client gets no reset: the packet came in through cni0's")
    assert "it leaves from 10.244.0.5:8080, which the client's connection to 10.96.0.11:80 does not take" in note
    assert "the endpoint's address the DNAT chose" in unanswered_reset(lab, c1, "n1", "n1", "x:1", None, None)
    assert unanswered_reset(lab, c2, "n1", "n1", "10.96.0.11:80", None, None) is None  # came over the overlay
    assert unanswered_reset(lab, c1, "n1", "n2", "10.96.0.11:80", None, None) is None  # DNATed elsewhere
    assert unanswered_reset(lab, c1, "n1", None, "10.244.0.5:8080", None, None) is None  # no DNAT: refused
    host = Endpoint("n1", "node", str(lab.node("n1").ip))
    assert unanswered_reset(lab, host, "n1", "n1", "10.96.0.11:80", None, None) is None


def test_a_pod_rejected_on_a_node_whose_bridge_skips_iptables_is_not_told_it_gets_no_reset():
    """bridge-nf-call-iptables = 0 in the node: the frame for cni0's own MAC goes up to the IP layer without
    br_netfilter, so the REJECT's reset is routed as the node's own packet and its source given back by conntrack:
    the client is refused (tcpdump on its eth0: the RST comes from the address it asked for), no note says
    otherwise. The other node's sysctl does not matter."""
    from netlab.api.topology import load
    from netlab.trace.policy import unanswered_reset
    from netlab.trace.targets import Endpoint

    lab = load({"name": "lab", "nodes": [{"name": "n1"}, {"name": "n2"}],
                "pods": [{"name": "c1", "node": "n1"}]}).lab
    c1 = Endpoint("c1", "pod", str(lab.pod("c1").ip))
    assert unanswered_reset(lab, c1, "n1", "n1", "10.96.0.11:80", "10.244.0.5", 8080, {"lab-n1"}) is None
    assert unanswered_reset(lab, c1, "n1", "n1", "10.96.0.11:80", "10.244.0.5", 8080, {"lab-n2"}) is not None
