"""The CNI plugins' jumps in a node's built-in chains are theirs where plugins run: not drift, and kept where they
were by a repair that rewrites the chain (netlab/realize/netfilter_drift.py, PLUGIN_PREFIX). Elsewhere (a builtin lab,
a pod) such a jump is someone's rule like any other."""

from __future__ import annotations

from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules
from netlab.realize import netfilter, netfilter_drift

FIREWALL = '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD'
MASQ = ('-A POSTROUTING -s 10.244.0.2/32 -m comment --comment "name: \\"n\\" id: \\"ab\\"" '
        '-j CNI-d73388f56be9df46966c2d38')
LAB_FWD = ('-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
           '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD')
LAB_POST = '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG'


def planned(table: str, *rules: str, plugins: bool = True) -> NatRules:
    chains = tuple(dict.fromkeys(netfilter.target_of(r) for r in rules))
    return NatRules(netns="x-n1", table=table, chains=chains, payload="", rules=rules, plugin_jumps=plugins)


def saved(table: str, *rules: str) -> str:
    builtins = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}
    chains = dict.fromkeys(netfilter.target_of(r) for r in rules)
    return "".join([f"*{table}\n", *(f":{c} ACCEPT [0:0]\n" for c in builtins[table]),
                    *(f":{c} - [0:0]\n" for c in chains), *(r + "\n" for r in rules), "COMMIT\n"])


def test_the_plugins_jumps_are_not_drift_and_need_no_repair():
    fwd = planned("filter", *LAB_FWD)
    text = saved("filter", FIREWALL, *LAB_FWD)  # the firewall plugin inserts its jump at the top
    assert netfilter_drift.table_drift(fwd, text) == [] and netfilter_drift.table_payload(fwd, text) is None
    post = planned("nat", LAB_POST)
    text = saved("nat", LAB_POST, MASQ)  # bridge's ipMasq appends its jump
    assert netfilter_drift.table_drift(post, text) == [] and netfilter_drift.table_payload(post, text) is None


def test_a_repair_puts_the_plugins_jumps_back_where_they_were():
    fwd = planned("filter", *LAB_FWD)
    text = saved("filter", FIREWALL, LAB_FWD[0])  # the lab's FLANNEL-FWD jump deleted by hand
    assert netfilter_drift.table_drift(fwd, text) == [f"missing rule: {LAB_FWD[1]}"]
    payload = netfilter_drift.table_payload(fwd, text).splitlines()
    start = payload.index("-F FORWARD")
    assert payload[start + 1:start + 4] == [FIREWALL, *LAB_FWD]  # on top, as the plugin put it
    post = planned("nat", "-A POSTROUTING -j KUBE-POSTROUTING", LAB_POST)
    text = saved("nat", LAB_POST, MASQ)
    payload = netfilter_drift.table_payload(post, text).splitlines()
    start = payload.index("-F POSTROUTING")
    assert payload[start + 1:start + 4] == ["-A POSTROUTING -j KUBE-POSTROUTING", LAB_POST, MASQ]  # after the lab's


def test_a_rule_that_goes_does_not_move_the_plugins_jump_below_the_labs():
    """An extra rule above the firewall plugin's jump: the repair drops it and keeps the jump on top (it put the
    jump after the lab's rules, whose ACCEPTs then let pod traffic past the plugin's isolation)."""
    fwd = planned("filter", *LAB_FWD)
    text = saved("filter", "-A FORWARD -j DROP", FIREWALL, *LAB_FWD)
    payload = netfilter_drift.table_payload(fwd, text).splitlines()
    start = payload.index("-F FORWARD")
    assert payload[start + 1:start + 4] == [FIREWALL, *LAB_FWD] and "-A FORWARD -j DROP" not in payload


def test_any_other_rule_in_a_built_in_chain_is_still_the_labs():
    fwd = planned("filter", *LAB_FWD)
    other = "-A FORWARD -j MY-CHAIN"  # not a plugin's chain name: extra, and repaired away
    text = saved("filter", other, *LAB_FWD)
    assert netfilter_drift.table_drift(fwd, text) == [f"extra rule: {other}"]
    assert other not in netfilter_drift.table_payload(fwd, text).splitlines()


def test_where_no_plugin_runs_a_jump_to_a_cni_chain_is_drift_and_repaired_away():
    fwd = planned("filter", *LAB_FWD, plugins=False)
    text = saved("filter", FIREWALL, *LAB_FWD)
    assert netfilter_drift.table_drift(fwd, text) == [f"extra rule: {FIREWALL}"]
    payload = netfilter_drift.table_payload(fwd, text).splitlines()
    start = payload.index("-F FORWARD")
    assert payload[start + 1:start + 3] == list(LAB_FWD) and FIREWALL not in payload


def test_only_the_nodes_of_a_lab_whose_pods_a_plugin_attaches_leave_the_plugins_their_jumps():
    def nat_rules(cni: str) -> dict[str, bool]:
        network = "" if cni == "builtin" else f"network: {{cni: {cni}}}\n"
        text = f"name: x\n{network}nodes: [{{name: n1}}]\npods: [{{name: p, node: n1}}]\n"
        plan = build_plan(resolve(validate_source(parse_yaml(text, "t.yaml"))))
        return {f"{r.netns}/{r.table}": r.plugin_jumps for r in plan.resources if isinstance(r, NatRules)}

    assert nat_rules("builtin") and not any(nat_rules("builtin").values())
    assert nat_rules("reference") == {key: key.startswith("x-n1/") for key in nat_rules("reference")}
    assert any(nat_rules("reference").values())
