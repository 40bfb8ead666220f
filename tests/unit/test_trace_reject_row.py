"""The row of a NetworkPolicy's REJECT: where the endpoint's node runs it, in FORWARD after its route lookup, and
no later row of that node contradicting it (an ARP entry never asked for is not why)."""

from netlab.trace.hops import Hop
from netlab.trace.policy import place_reject

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


def test_rows_that_already_lose_it_without_a_problem_stay_as_they_are():
    hops = _hops()
    hops[3].problem = None  # a pod-to-pod flow: the bridge's row not seen, no problem
    assert place_reject(hops, 3, NS, ENTRY) is None and len(hops) == 4
    hops = _hops()
    assert place_reject(hops, 3, "lab-n2", ENTRY) is None and len(hops) == 4  # lost in another node


def test_a_no_dnat_row_that_says_a_reject_counted_it_names_the_policy():
    hop = Hop(NS, "node n1", "eth0", "dnat", "no DNAT", facts={"dropped_here": True},
              problem="... dropped before conntrack kept one; a NetworkPolicy's REJECT in lab-n1 counted it in "
                      "FORWARD, before it left the node (chain NETPOL-IN-ABC; the policy is named below)")
    assert place_reject([hop], 0, NS, ENTRY) is None
    assert hop.problem is not None and hop.problem.endswith("(chain NETPOL-IN-ABC; policy default/web-from-clients)")
