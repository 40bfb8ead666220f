"""trace's NetworkPolicy verdict when the kernel's REJECT disagrees with the policies (trace/policy.py,
trace/policyrules.py; pure, on a recorded view).

The view is node n1's filter table as `iptables-save -c -t filter` printed it on a real lab of this topology,
counters zeroed (golden/trace_policy_n1_filter.txt). Each test takes rules out of it as a user does by hand
(`iptables -F CHAIN`, `iptables -D CHAIN RULE`), then gives trace's verdict the REJECT counters the kernel then
showed: none for a flow the policies deny (the packet got through, the SYN-ACK came back), one for a flow they
allow (the REJECT's reset came back). trace said "dropped ... but the kernel's REJECT rule there counted nothing:
look at the node's filter table" for the first, exit 0; and for the second "allowed by policy ..." with the
packet lost where "the kernel's route, ARP and FDB answers look right", the REJECT's reset shown as a reply.
"""

from __future__ import annotations

from pathlib import Path

from netlab.api.topology import load
from netlab.model.netpol import policy_set
from netlab.plan.policy import pod_chain
from netlab.trace import policy as tpolicy, policyrules, policyverdict
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.later import Later
from netlab.trace.targets import Endpoint
from netlab.trace.verdict import Verdict

RECORDED = (Path(__file__).parent / "golden" / "trace_policy_n1_filter.txt").read_text()
REPAIR = "sudo netlab up --lab tpr"
TOPO = {
    "name": "tpr", "nodes": [{"name": "n1"}, {"name": "n2"}],
    "namespaces": [{"name": "a"}, {"name": "b"}],
    "pods": [{"name": "a-web", "namespace": "a", "node": "n1", "labels": {"app": "web"},
              "containers": [{"name": "web", "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}]}]},
             {"name": "a-cli", "namespace": "a", "node": "n1"},
             {"name": "b-cli", "namespace": "b", "node": "n1"},
             {"name": "b-far", "namespace": "b", "node": "n2"}],
    "networkPolicies": [
        {"name": "default-deny", "namespace": "a", "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"name": "allow-web-from-b", "namespace": "a", "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}}],
                         "ports": [{"port": "http"}]}]}}],
}


def _lab():
    lab = load(TOPO).lab
    return lab, lab.node("n1").netns, pod_chain("ingress", policy_set(lab).pod("a-web"))


def _without(keep) -> str:
    """The recorded table without the rules ``keep`` refuses (given each rule as iptables-save prints it)."""
    return "\n".join(line for line in RECORDED.splitlines()
                     if not line.startswith("[") or keep(line.split("] ", 1)[1])) + "\n"


def _pod(lab, name: str, port: int | None = None) -> Endpoint:
    p = lab.pod(name)
    return Endpoint(name, "pod", str(p.ip), p.netns, port=port)


def _story(lab, src: str, text: str, counted: int):
    n1 = lab.node("n1").netns
    chain = pod_chain("ingress", policy_set(lab).pod("a-web"))
    before, after = {(n1, chain): 4}, {(n1, chain): 4 + counted}
    return tpolicy.story(lab, _pod(lab, src), _pod(lab, "a-web", 8080), "tcp", 8080, None, before, after,
                         reached={n1}, tables=tpolicy.Tables({n1: text}, REPAIR))


def test_the_recorded_table_is_netlabs_on_every_path():
    """The plan's lines, as status compares them, are the kernel's own: no difference on any pod's path."""
    lab, n1, chain = _lab()
    ps = policy_set(lab)
    for pod in ("a-web", "a-cli"):
        assert not policyrules.path_drift(lab, "n1", RECORDED, "ingress", ps.pod(pod))
    [e] = _story(lab, "b-cli", RECORDED, 0)
    assert e == {"pod": "a/a-web", "allowed": True, "text": "allowed by policy a/allow-web-from-b, ingress rule 1, "
                 "peer 1 namespaceSelector kubernetes.io/metadata.name=b, port http/TCP"}


def test_a_denied_flow_past_an_emptied_chain_is_not_stopped_names_the_rules_and_fails():
    """`iptables -F NETPOL-IN-<a-web>`: a-cli connects. The verdict is the bridge-nf case's words, "denied ... but
    NOT STOPPED", with the cause (the chain's rules are missing, the REJECT among them), the fix, and exit 1."""
    lab, n1, chain = _lab()
    flushed = [line.split("] ", 1)[1] for line in RECORDED.splitlines() if line.startswith(f"[0:0] -A {chain} ")]
    assert len(flushed) == 5
    [e] = _story(lab, "a-cli", _without(lambda line: not line.startswith(f"-A {chain} ")), 0)
    reject = next(line for line in flushed if "--reject-with tcp-reset" in line)
    assert e["text"] == ("denied by policies a/default-deny, a/allow-web-from-b (no ingress rule allows it for pod "
                         f"a/a-web), but NOT STOPPED: 5 of netlab's rules are missing from node n1's chain {chain} "
                         f"(its REJECT among them: {reject}), so no REJECT there counted it (`netlab status` lists "
                         "them)"), e["text"]
    assert (e["allowed"], e["counted"], e["stopped"], e["missing"], e["extra"], e["fix"]) == \
        (False, False, False, flushed, [], REPAIR)
    assert (e["node"], e["chain"], e["policies"]) == ("n1", chain, ["a/default-deny", "a/allow-web-from-b"])
    result = _delivered(lab, [e])
    assert not result.ok  # exit 1: an unmet expectation, as probe and policy table say
    text = render_text(result)
    assert f"policy: {e['text']}\n  fix: {REPAIR}\n" in text  # the fix is the repair itself: no "(or: ...)"


def test_the_jump_to_the_chain_gone_or_an_accept_before_it_is_named():
    lab, n1, chain = _lab()
    jump = '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'
    [e] = _story(lab, "a-cli", _without(lambda line: line != jump), 0)
    assert e["missing"] == [jump] and not e["stopped"], e
    assert f"NOT STOPPED: a rule of netlab's is missing from node n1's chain FORWARD: {jump}, so" in e["text"]
    accept = RECORDED.replace("[0:0] " + jump, "[0:0] -A FORWARD -j ACCEPT\n[0:0] " + jump)
    [e] = _story(lab, "a-cli", accept, 0)
    assert (e["missing"], e["extra"]) == ([], ["-A FORWARD -j ACCEPT"]), e
    assert "holds rules netlab did not write on the way: -A FORWARD -j ACCEPT" in e["text"]
    # The rules as netlab wrote them, and still nothing counted: not named, still not stopped, no fix to offer.
    [e] = _story(lab, "a-cli", RECORDED, 0)
    assert e["text"].endswith(f"but NOT STOPPED: the kernel's REJECT in node n1's chain {chain} counted nothing, "
                              "though the policy rules on the way are netlab's: look at the node's filter table "
                              f"(ip netns exec {n1} iptables-save -c)"), e["text"]
    assert e["stopped"] is False and "fix" not in e and "missing" not in e


def test_the_bridge_nf_case_fails_too_and_a_counted_drop_or_an_allowed_flow_keeps_its_exit():
    lab, n1, chain = _lab()
    [e] = tpolicy.story(lab, _pod(lab, "a-cli"), _pod(lab, "a-web", 8080), "tcp", 8080, None, {(n1, chain): 0},
                        {(n1, chain): 0}, unfiltered={n1}, reached={n1})
    assert "but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0" in e["text"] and e["stopped"] is False
    assert not _delivered(lab, [e]).ok
    [e] = _story(lab, "a-cli", RECORDED, 1)
    assert e["stopped"] is True and e["text"].endswith("; the kernel's REJECT rule there counted it")
    [e] = _story(lab, "b-cli", RECORDED, 0)
    assert _delivered(lab, [e]).ok


def test_an_allowed_flow_a_missing_allow_rule_refused_names_that_rule():
    """`iptables -D NETPOL-ING-<allow-web-from-b> -s <b-cli> ...`: the REJECT counted b-cli's packet. The verdict
    says the policies allow it, that the node's REJECT refused it, and which rule is missing: b-cli's, not
    b-far's (gone too here, not this packet's)."""
    lab, n1, chain = _lab()
    ip = {p: str(lab.pod(p).ip) for p in ("b-cli", "b-far")}
    gone = [line.split("] ", 1)[1] for line in RECORDED.splitlines() if "-j MARK --set-xmark 0x10000" in line]
    assert len(gone) == 2
    mine = next(line for line in gone if f"-s {ip['b-cli']}/32 " in line)
    [e] = _story(lab, "b-cli", _without(lambda line: line not in gone), 1)
    assert e["text"] == ("allowed by policy a/allow-web-from-b, ingress rule 1, peer 1 namespaceSelector "
                         "kubernetes.io/metadata.name=b, port http/TCP, but REFUSED in node n1: the kernel's REJECT "
                         f"in chain {chain} counted it; the rule that allows it is missing from node n1's filter "
                         f"table: {mine} (`netlab status` lists it)"), e["text"]
    assert (e["allowed"], e["counted"], e["missing"], e["fix"], e["node"], e["chain"]) == \
        (True, True, [mine], REPAIR, "n1", chain)
    # The pod chain's jump to the policy's chain gone: that is what is named.
    jump = next(line.split("] ", 1)[1] for line in RECORDED.splitlines()
                if line.startswith(f"[0:0] -A {chain} ") and "policy a/allow-web-from-b" in line)
    [e] = _story(lab, "b-far", _without(lambda line: line != jump), 1)
    assert e["missing"] == [jump] and e["text"].endswith(f"missing from node n1's filter table: {jump} "
                                                         "(`netlab status` lists it)"), e["text"]


def test_the_refused_flow_is_lost_at_the_reject_and_the_reset_is_the_nodes():
    """The whole verdict: the packet was lost at the bridge's row ("look at the firewall"), and the reply rows
    showed the reset as the destination's reply, delivered. Now it is lost at the REJECT's own row, with the
    missing rule and the fix, and the reply rows start with the REJECT's answer."""
    lab, n1, chain = _lab()
    web, cli = lab.pod("a-web"), lab.pod("b-cli")
    flow = Flow("tcp", str(cli.ip), str(web.ip), 40000, 8080)
    back = flow.reversed()
    hops = [Hop(cli.netns, "pod b-cli", "eth0", "route", "route get → dev eth0",
                observe=Observe(cli.netns, "eth0", "out", flow, "request")),
            Hop(n1, "node n1", "veth-cli", "arrive", "arrives from eth0 in b-cli; a port of bridge cni0"),
            Hop(n1, "node n1", "veth-web", "bridge", "bridge cni0: FDB: ... is behind port veth-web",
                facts={"port": "veth-web", "bridge": "cni0"}),
            Hop(web.netns, "pod a-web", "eth0", "deliver", "delivered",
                observe=Observe(web.netns, "eth0", "in", flow, "request"))]
    reply = [Hop(web.netns, "pod a-web", "eth0", "route", "route get → dev eth0", direction="reply",
                 observe=Observe(web.netns, "eth0", "out", back, "reply")),
             Hop(n1, "node n1", "veth-web", "arrive", "arrives from eth0 in a-web", direction="reply"),
             Hop(n1, "node n1", "veth-cli", "bridge", "bridge cni0: FDB: ... is behind port veth-cli",
                 facts={"port": "veth-cli", "bridge": "cni0"}, direction="reply"),
             Hop(cli.netns, "pod b-cli", "eth0", "deliver", "delivered", direction="reply")]
    result = TraceResult(lab="tpr", src={"name": "b-cli", "ip": str(cli.ip)},
                         dst={"name": "a-web", "ip": str(web.ip)}, proto="tcp", port=8080, marker="m",
                         forward=Walk(hops, "delivered"), reply=Walk(reply, "delivered"),
                         verdict=Verdict(False, 2, "... look at the firewall"), reply_verdict=Verdict(True, None, None),
                         reply_received=True, repair_later=Later(REPAIR))
    number(result)
    text = _without(lambda line: f"-s {cli.ip}/32 " not in line)
    policyverdict.policy_verdict(lab, result, _pod(lab, "b-cli"), _pod(lab, "a-web", 8080), {(n1, chain): 4},
                                 {(n1, chain): 5}, set(), tables=tpolicy.Tables({n1: text}, REPAIR))
    [e] = result.policy
    v = result.verdict
    assert (v.delivered, v.reason, v.fix) == (False, e["text"], REPAIR) and "but REFUSED in node n1" in v.reason
    row = result.forward.hops[v.lost_at]
    assert (row.kind, row.netns, row.facts["chain"], row.index) == ("drop", n1, chain, 4), row
    first = result.reply.hops[0]
    assert (first.kind, first.netns, first.facts["reject_hop"]) == ("reject", n1, 4), first
    assert first.decision.startswith("the REJECT at hop 4 answers the request with a TCP reset")
    assert not any(h.netns == web.netns for h in result.reply.hops) and not result.ok
    out = render_text(result)
    assert f"result: LOST at hop 4 ({n1} veth-web): {e['text']}\n  fix: {REPAIR}\n" in out, out


def _delivered(lab, policy) -> TraceResult:
    web = lab.pod("a-web")
    hops = [Hop(web.netns, "pod a-web", "eth0", "deliver", "delivered")]
    return TraceResult(lab="tpr", src={"name": "a-cli", "ip": str(lab.pod("a-cli").ip)},
                       dst={"name": "a-web", "ip": str(web.ip)}, proto="tcp", port=8080, marker="m",
                       forward=Walk(hops, "delivered"), reply=None, verdict=Verdict(True, None, None),
                       reply_verdict=None, reply_received=True, policy=policy, repair_later=Later(REPAIR))
