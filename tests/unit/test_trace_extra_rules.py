"""trace/extrarules.py: the rules of a filter table the plan does not hold, in the chains a hook runs, as status
counts them (no root: tables as iptables-save -c prints them). The live test: tests/integration/
test_trace_extra_rule_live.py."""

from __future__ import annotations

from netlab.trace import extrarules
from netlab.trace.hops import Hop, Walk
from netlab.trace.labmap import PlannedNat

PLANNED = PlannedNat(frozenset({"FLANNEL-FWD"}), (
    "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD",
    "-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
))


def table(*extra: str) -> str:
    rules = [f"[0:0] {line}" for line in PLANNED.rules[:1] + extra + PLANNED.rules[1:]]
    return "\n".join(["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                      ":FLANNEL-FWD - [0:0]", ":MINE - [0:0]", *rules, "COMMIT", ""])


def test_the_extra_rules_are_those_of_the_chains_the_hook_runs():
    text = table("-A FORWARD -s 10.244.0.2/32 -j ACCEPT", "-A INPUT -p tcp --dport 22 -j DROP",
                 "-A FORWARD -j MINE", "-A MINE -j LOG")
    # MINE is someone's chain (status leaves its rules be): the jump to it is the extra rule
    assert extrarules.extra(text, PLANNED, "FORWARD") == ["-A FORWARD -s 10.244.0.2/32 -j ACCEPT",
                                                          "-A FORWARD -j MINE"]
    assert extrarules.extra(text, PLANNED, "INPUT") == ["-A INPUT -p tcp --dport 22 -j DROP"]
    assert extrarules.extra(table(), PLANNED, "FORWARD") == []
    # a CNI plugin's jump where plugins run is theirs, as status has it; elsewhere someone's
    jump = "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD"
    assert extrarules.extra(table(jump), PLANNED._replace(plugin_jumps=True), "FORWARD") == []
    assert extrarules.extra(table(jump), PLANNED, "FORWARD") == [jump]
    # a pod's table: the plan writes no rule there
    assert extrarules.extra(table("-A OUTPUT -j DROP"), None, "OUTPUT") == ["-A OUTPUT -j DROP"]


def test_the_row_where_the_packet_ran_the_hook_says_it_once_with_the_counter_and_the_fix():
    rule = "-A FORWARD -s 10.244.0.2/32 -j ACCEPT"
    before = {"n1": table(rule)}
    after = {"n1": before["n1"].replace(f"[0:0] {rule}", f"[3:252] {rule}")}
    rows = [Hop("a", "pod a", "eth0", "route", "send"),
            Hop("n1", "node n1", "flannel.1", "route", "forwarded", facts={"iif": "cni0"}),
            Hop("n1", "node n1", "flannel.1", "route", "forwarded again", facts={"iif": "cni0"}),
            Hop("b", "pod b", "eth0", "deliver", "delivered")]
    way = Walk(rows, "delivered")
    extrarules.note([(way, rows)], before, after, {"n1": PLANNED}, {"a", "n1", "b"}, (), lambda: "sudo netlab up")
    assert rows[1].problem == ("the packet ran FORWARD in n1, whose chains hold a rule the lab does not plan: "
                               f"`{rule}` (counted 3 packets while the trace ran); `netlab status` calls it extra, "
                               "and the lab's repair takes it out")
    assert rows[1].fix == "ip netns exec n1 iptables -D FORWARD -s 10.244.0.2/32 -j ACCEPT"
    assert rows[2].problem is None and rows[0].problem is None and rows[3].problem is None  # tables not read: nothing
    two = {"n1": table(rule, "-A FORWARD -j LOG")}
    rows[1].problem = rows[1].fix = None
    extrarules.note([(way, rows)], two, two, {"n1": PLANNED}, {"a", "n1", "b"}, (), lambda: "sudo netlab up")
    assert rows[1].problem.startswith("the packet ran FORWARD in n1, whose chains hold 2 rules the lab does not plan")
    assert rows[1].fix == "sudo netlab up"
    # a bridge that hands no frame to iptables (bridge-nf-call-iptables = 0) runs no FORWARD for it
    bridged = [Hop("n1", "node n1", "veth1", "bridge", "switched", facts={"port": "veth1"})]
    extrarules.note([(Walk(bridged, "delivered"), bridged)], two, two, {"n1": PLANNED}, {"n1"}, {"n1"}, lambda: "")
    assert bridged[0].problem is None
    # a row that says a problem already keeps it
    said = [Hop("n1", "node n1", "flannel.1", "route", "x", problem="no route", facts={"iif": "cni0"})]
    extrarules.note([(Walk(said, "stopped"), said)], two, two, {"n1": PLANNED}, {"n1"}, (), lambda: "")
    assert said[0].problem == "no route"
