"""netlab's policy hook stays above the CNI plugins' jumps (QA q41, older problems, first item).

Debian's CNI ``firewall`` plugin (iptables backend) inserts ``-j CNI-FORWARD`` at the top of a node's FORWARD when
its ADD finds it missing, and CNI-FORWARD ACCEPTs every packet from a pod's address: above netlab's jump to
NETPOL-FORWARD, no NetworkPolicy was enforced, while status said "all as planned" and trace only "look at the
node's filter table". A policy controller puts its jump back on top at each sync (kube-router's
ensureTopLevelChains, Calico's ChainInsertMode "insert"): status now calls a plugin's jump above the hook drift,
up's repair puts the hook first with the plugin's jump right below it, and trace names that jump (pure: the
plan's rules and a table's text).
"""

from __future__ import annotations

from netlab.api.topology import load
from netlab.model.netpol import policy_set
from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules
from netlab.realize import netfilter_drift
from netlab.trace import policy as tpolicy, policyrules

from test_plugin_jumps import FIREWALL, LAB_FWD, planned, saved
from test_trace_policy_drift import RECORDED, REPAIR, TOPO, _pod

HOOK = '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'
AHEAD = (f"filter chain FORWARD: rule 1 is a CNI plugin's jump, {FIREWALL}, above netlab's policy hook {HOOK}: "
         "what the plugin's chain accepts passes the network policies unjudged")


def test_a_plugins_jump_above_the_policy_hook_is_drift_and_the_repair_puts_the_hook_first():
    fwd = planned("filter", HOOK, *LAB_FWD)
    text = saved("filter", FIREWALL, HOOK, *LAB_FWD)  # what the firewall plugin's ADD leaves after netlab's rules
    assert netfilter_drift.table_drift(fwd, text) == [AHEAD]
    payload = netfilter_drift.table_payload(fwd, text).splitlines()
    start = payload.index("-F FORWARD")
    assert payload[start + 1:start + 5] == [HOOK, FIREWALL, *LAB_FWD]
    repaired = saved("filter", HOOK, FIREWALL, *LAB_FWD)
    assert netfilter_drift.table_drift(fwd, repaired) == [] and netfilter_drift.table_payload(fwd, repaired) is None


def test_without_a_policy_hook_the_plugins_jump_stays_on_top():
    fwd = planned("filter", *LAB_FWD)
    text = saved("filter", FIREWALL, *LAB_FWD)
    assert netfilter_drift.table_drift(fwd, text) == [] and netfilter_drift.table_payload(fwd, text) is None


def test_where_no_plugin_runs_such_a_jump_is_an_extra_rule_only():
    fwd = planned("filter", HOOK, *LAB_FWD, plugins=False)
    assert netfilter_drift.table_drift(fwd, saved("filter", FIREWALL, HOOK, *LAB_FWD)) == [f"extra rule: {FIREWALL}"]


def _cni_lab():
    lab = load({**TOPO, "network": {"cni": "reference"}}).lab
    [r] = [r for r in build_plan(lab).resources if isinstance(r, NatRules) and r.table == "filter"
           and r.netns == lab.node("n1").netns]
    return lab, r


def test_trace_names_the_plugins_jump_that_let_a_denied_flow_by_with_up_as_the_fix():
    lab, planned_n1 = _cni_lab()
    n1 = lab.node("n1").netns
    lines = RECORDED.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("[0:0] -A FORWARD "))
    assert lines[first] == f"[0:0] {HOOK}"
    text = "\n".join(lines[:first] + [f"[9:540] {FIREWALL}"] + lines[first:]) + "\n"
    text = text.replace(":FORWARD ACCEPT", ":CNI-FORWARD - [0:0]\n:FORWARD ACCEPT", 1)
    status = netfilter_drift.table_drift(planned_n1, "\n".join(line.split("] ", 1)[-1] for line in text.splitlines()))
    assert status == [AHEAD], status
    chain = policyrules.pod_chain("ingress", policy_set(lab).pod("a-web"))
    [e] = tpolicy.story(lab, _pod(lab, "a-cli"), _pod(lab, "a-web", 8080), "tcp", 8080, None, {(n1, chain): 4},
                        {(n1, chain): 4}, reached={n1},
                        tables=tpolicy.Tables({n1: text}, REPAIR, {n1: planned_n1.rules}))
    assert e["stopped"] is False and e["order"] == [AHEAD] and e["fix"] == REPAIR, e
    assert e["text"].endswith(f"but NOT STOPPED: node n1's filter table holds netlab's rules on the way, but "
                              f"{AHEAD}, so no REJECT there counted it (`netlab status` lists it)"), e["text"]
