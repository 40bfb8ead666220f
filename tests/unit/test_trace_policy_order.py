"""trace's NetworkPolicy verdict when a node holds netlab's rules, none missing and none added, in another order
(trace/policyrules.path_drift against the plan's whole filter table, as status compares it; pure, on the
recorded view of test_trace_policy_drift).

A rule deleted and appended again (`iptables -D` then `-A`, QA q36 1): status says "rules of filter chain ... in
another order" and `up` repairs it, but trace said, for a pod chain whose REJECT came before a policy's jump,
"yet the node's policy rules on the way are netlab's: look at its filter table", with no fix; and for the
FORWARD hook's jump to the policies moved below kube-proxy's and Flannel's rules, "holds rules netlab did not
write on the way: -A FORWARD ... KUBE-PROXY-FIREWALL ...", netlab's own rules.
"""

from __future__ import annotations

from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules
from netlab.realize import netfilter_drift
from netlab.trace import policy as tpolicy, policyrules
from netlab.trace.render import render_text

from test_trace_policy_drift import RECORDED, REPAIR, _delivered, _lab, _pod

JUMP = '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'


def _planned(lab, netns: str) -> NatRules:
    [r] = [r for r in build_plan(lab).resources
           if isinstance(r, NatRules) and r.table == "filter" and r.netns == netns]
    return r


def _appended(rule: str) -> str:
    """The recorded table with ``rule`` deleted and appended again to its chain (`iptables -D`, then `-A`)."""
    lines = RECORDED.splitlines()
    lines.remove(f"[0:0] {rule}")
    chain = rule.split()[1]
    last = max(i for i, line in enumerate(lines) if line.startswith(f"[0:0] -A {chain} "))
    lines.insert(last + 1, f"[0:0] {rule}")
    return "\n".join(lines) + "\n"


def _status(planned: NatRules, text: str) -> list[str]:
    return netfilter_drift.table_drift(planned, "\n".join(line.split("] ", 1)[-1] for line in text.splitlines()))


def _story(lab, src: str, text: str, counted: int, planned: NatRules):
    n1, chain = lab.node("n1").netns, policyrules.pod_chain("ingress", policyrules.policy_set(lab).pod("a-web"))
    return tpolicy.story(lab, _pod(lab, src), _pod(lab, "a-web", 8080), "tcp", 8080, None, {(n1, chain): 4},
                         {(n1, chain): 4 + counted}, reached={n1},
                         tables=tpolicy.Tables({n1: text}, REPAIR, {n1: planned.rules}))


def test_the_recorded_table_is_the_plans_whole_filter_table_in_its_order():
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    assert _status(planned, RECORDED) == []
    ps = policyrules.policy_set(lab)
    for pod in ("a-web", "a-cli"):
        assert not policyrules.path_drift(lab, "n1", RECORDED, "ingress", ps.pod(pod), planned_table=planned.rules)
    [e] = _story(lab, "a-cli", RECORDED, 1, planned)
    assert e["stopped"] is True and "order" not in e


def test_a_policy_jump_below_the_reject_is_named_as_status_names_it_with_up_as_the_fix():
    """b-cli's packet, allowed by a/allow-web-from-b, met a-web's REJECT before the jump to that policy's chain."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    jump = next(line.split("] ", 1)[1] for line in RECORDED.splitlines()
                if line.startswith(f"[0:0] -A {chain} ") and "policy a/allow-web-from-b" in line)
    text = _appended(jump)
    [order] = _status(planned, text)
    assert order.startswith(f"rules of filter chain {chain} in another order: rule 2 is "), order
    [e] = _story(lab, "b-cli", text, 1, planned)
    assert e["text"] == ("allowed by policy a/allow-web-from-b, ingress rule 1, peer 1 namespaceSelector "
                         "kubernetes.io/metadata.name=b, port http/TCP, but REFUSED in node n1: the kernel's REJECT "
                         f"in chain {chain} counted it; node n1's filter table holds netlab's rules on the way, but "
                         f"{order} (`netlab status` lists it)"), e["text"]
    assert (e["missing"], e["extra"], e["order"], e["fix"], e["counted"]) == ([], [], [order], REPAIR, True), e
    assert "iptables-save" not in e["text"]


def test_the_hooks_jump_below_kube_proxys_rules_is_named_not_blamed_on_others():
    """a-cli's packet, denied, passed FORWARD's kube-proxy and Flannel ACCEPTs before the jump to the policies."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    text = _appended(JUMP)
    [order] = _status(planned, text)
    assert order.startswith("rules of filter chain FORWARD in another order: rule 1 is -A FORWARD ") and \
        order.endswith(f"want {JUMP}"), order
    [e] = _story(lab, "a-cli", text, 0, planned)
    assert e["text"] == ("denied by policies a/default-deny, a/allow-web-from-b (no ingress rule allows it for pod "
                         f"a/a-web), but NOT STOPPED: node n1's filter table holds netlab's rules on the way, but "
                         f"{order}, so no REJECT there counted it (`netlab status` lists it)"), e["text"]
    assert (e["missing"], e["extra"], e["order"], e["fix"], e["stopped"]) == ([], [], [order], REPAIR, False), e
    result = _delivered(lab, [e])
    assert not result.ok
    assert f"policy: {e['text']}\n  fix: {REPAIR}\n" in render_text(result)


def test_a_rule_twice_is_named_by_its_count_and_one_off_the_way_is_not_named():
    """A duplicate is status's "holds ... 2 times, want 1"; another pod's jump missing from NETPOL-FORWARD is not
    this packet's way (and then the chain's order is not judged)."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    ps = policyrules.policy_set(lab)
    jump = next(line for line in planned.rules if line.startswith(f"-A {chain} ") and "a/allow-web-from-b" in line)
    twice = RECORDED.replace(f"[0:0] {jump}\n", f"[0:0] {jump}\n[0:0] {jump}\n")
    d = policyrules.path_drift(lab, "n1", twice, "ingress", ps.pod("a-web"), planned_table=planned.rules)
    assert (d.missing, d.extra, d.order) == ([], [], _status(planned, twice)), d
    assert d.order[0].startswith(f"filter chain {chain} holds {jump} 2 times, want 1"), d.order
    other = next(line for line in planned.rules
                 if line.startswith("-A NETPOL-FORWARD ") and '"a/a-cli ingress" -j' in line)
    gone = RECORDED.replace(f"[0:0] {other}\n", "")
    assert not policyrules.path_drift(lab, "n1", gone, "ingress", ps.pod("a-web"), planned_table=planned.rules)


FOREIGN = "-A FORWARD -s 192.0.2.1/32 -j ACCEPT"


def test_the_hooks_jump_below_kube_proxys_rules_is_named_beside_a_rule_off_the_way():
    """QA q37 1: FORWARD's jump moved last, and one rule of someone's appended after it, which a-cli's packet never
    meets: trace said "though the policy rules on the way are netlab's: look at the node's filter table", no fix
    (its order check wanted the chain to hold netlab's rules and no others). Status names both; trace the order,
    the same line, with `up` as the fix."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    text = _appended(JUMP).replace(f"[0:0] {JUMP}\n", f"[0:0] {JUMP}\n[0:0] {FOREIGN}\n")
    said = _status(planned, text)
    [order] = [line for line in said if "in another order" in line]
    assert said == [f"extra rule: {FOREIGN}", order], said
    assert order.startswith("rules of filter chain FORWARD in another order: rule 1 is -A FORWARD ") and \
        order.endswith(f"want {JUMP}"), order
    [e] = _story(lab, "a-cli", text, 0, planned)
    assert (e["missing"], e["extra"], e["order"], e["fix"], e["stopped"]) == ([], [], [order], REPAIR, False), e
    assert e["text"].endswith(f"NOT STOPPED: node n1's filter table holds netlab's rules on the way, but {order}, so "
                              "no REJECT there counted it (`netlab status` lists it)"), e["text"]
    assert f"policy: {e['text']}\n  fix: {REPAIR}\n" in render_text(_delivered(lab, [e]))


def test_a_rule_on_the_way_is_named_with_the_order_and_numbers_count_the_chain_as_held():
    """The same rule of someone's at FORWARD's top, before kube-proxy's: on the way, so named, and the order too;
    status's rule numbers are the chain's as the kernel holds it (the foreign rule is rule 1)."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    lines = _appended(JUMP).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("[0:0] -A FORWARD "))
    text = "\n".join(lines[:first] + [f"[0:0] {FOREIGN}"] + lines[first:]) + "\n"
    said = _status(planned, text)
    [order] = [line for line in said if "in another order" in line]
    assert order.startswith("rules of filter chain FORWARD in another order: rule 2 is -A FORWARD "), order
    [e] = _story(lab, "a-cli", text, 0, planned)
    assert (e["missing"], e["extra"], e["order"], e["fix"]) == ([], [FOREIGN], [order], REPAIR), e
    assert e["text"].endswith(f"holds rules netlab did not write on the way: {FOREIGN}; and {order}, so no REJECT "
                              "there counted it (`netlab status` lists them)"), e["text"]


def test_the_entry_chains_order_is_judged_on_the_way_only():
    """NETPOL-FORWARD's RETURN for established flows moved last, another pod's jump gone: the order on a-web's
    packet's way is wrong (status's line for the chain), the missing jump is not its way; two other pods' jumps
    swapped are not its way either."""
    lab, n1, chain = _lab()
    planned = _planned(lab, n1)
    ps = policyrules.policy_set(lab)
    est = "-A NETPOL-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    other = next(line for line in planned.rules
                 if line.startswith("-A NETPOL-FORWARD ") and '"a/a-cli ingress" -j' in line)
    text = _appended(est).replace(f"[0:0] {other}\n", "")
    [order] = [line for line in _status(planned, text) if "in another order" in line]
    assert order.startswith("rules of filter chain NETPOL-FORWARD in another order: rule 1 is "), order
    d = policyrules.path_drift(lab, "n1", text, "ingress", ps.pod("a-web"), planned_table=planned.rules)
    assert (d.missing, d.extra, d.order) == ([], [], [order]), d
    mine = next(line for line in planned.rules if line.startswith("-A NETPOL-FORWARD ") and '"a/a-web ingress"' in line)
    swapped = RECORDED.replace(f"[0:0] {mine}\n", "").replace(f"[0:0] {other}\n", f"[0:0] {other}\n[0:0] {mine}\n")
    assert any("in another order" in line for line in _status(planned, swapped))
    assert not policyrules.path_drift(lab, "n1", swapped, "ingress", ps.pod("a-web"), planned_table=planned.rules)
