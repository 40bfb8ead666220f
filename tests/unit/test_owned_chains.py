"""Chains the lab owns by name and its plan does not hold (realize/netfilter_drift.stale_chains), against the fake
kernel and recorded iptables-save text: kube-proxy's KUBE-SVC-/KUBE-SEP-... chains, the NETPOL- chains of the
lab's policy controller. `status` names each (also `status -t FILE` of a file that drops them), and `up`
deletes them in the restore that repairs the table, as kube-proxy's full sync does; a chain of another name (a
user's) stays. And how status says a table's differences: every one in JSON, the chain of rules out of order,
the table of the resource. The root integration test: tests/integration/test_stale_chains.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_lab import TOPO, make_lab, status, up

from netlab.kernel.base import Op, TableText
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import NatRules
from netlab.realize import netfilter, netfilter_drift, state as state_mod
from netlab.realize.diff import Drift, diff_tables
from netlab.realize.observe import Observed

lab = pytest.fixture(make_lab, name="lab")

FAKE = "KUBE-SVC-FAKEFAKEFAKEFAKE"
# What the QA report made by hand in a node's nat table: a Service chain DNATing to nowhere, an empty
# endpoint chain, and a chain of the user's own that kube-proxy does not name.
BY_HAND = (f"*nat\n:{FAKE} - [0:0]\n:KUBE-SEP-ZZZZ - [0:0]\n:MY-OWN - [0:0]\n"
           f"-A {FAKE} -j DNAT --to-destination 1.2.3.4\n-A MY-OWN -j RETURN\nCOMMIT\n")

WEB = TOPO.replace("{name: a, node: n1, ip: 10.244.0.2}", "{name: a, node: n1, ip: 10.244.0.2, labels: {app: web}}")
POLICY = ("networkPolicies:\n  - name: web-in\n    spec:\n      podSelector: {matchLabels: {app: web}}\n"
          "      ingress: [{from: [{podSelector: {}}]}]\n")


def restore(k: FakeKernel, netns: str, text: str) -> None:
    k.apply([Op("restore", TableText(netns, text.split("\n", 1)[0][1:], text, noflush=True))])


def chains(k: FakeKernel, netns: str, table: str) -> set[str]:
    return set(netfilter.parse_save(k.iptables_save(netns, table), table).chains)


def test_kube_proxys_chain_made_by_hand_is_drift_and_up_deletes_it_in_one_restore(lab):
    """iptables mode: status said "all as planned" with an extra KUBE-SVC chain in a node (only a jump into it
    was drift), and up left it. kube-proxy's full sync deletes every chain of its Service prefixes it does not
    write; MY-OWN is not kube-proxy's name: it stays, and is no drift."""
    k = FakeKernel()
    up(lab, k)
    restore(k, "fk-n1", BY_HAND)
    drift = status(lab, k).drift
    assert drift == [f"different: iptables nat rules in fk-n1 (extra chain: KUBE-SEP-ZZZZ; extra chain: {FAKE}; "
                     f"extra rule: -A {FAKE} -j DNAT --to-destination 1.2.3.4)"]
    k.log.clear()
    result = up(lab, k)
    assert [(op.verb, op.res.describe()) for op in k.log] == [("restore", "iptables nat in fk-n1")]
    payload = k.log[0].res.text.splitlines()
    # kube-proxy's way: declared (flushed), then deleted, in the one transaction.
    assert {f":{FAKE} - [0:0]", ":KUBE-SEP-ZZZZ - [0:0]", f"-X {FAKE}", "-X KUBE-SEP-ZZZZ"} <= set(payload)
    assert "fk-n1: deleted stale nat chains KUBE-SEP-ZZZZ, KUBE-SVC-FAKEFAKEFAKEFAKE" in result.fixed
    left = chains(k, "fk-n1", "nat")
    assert FAKE not in left and "KUBE-SEP-ZZZZ" not in left and "MY-OWN" in left
    assert "-A MY-OWN -j RETURN" in k.iptables_save("fk-n1", "nat")
    assert status(lab, k).ok


def test_a_chain_someone_elses_chain_jumps_to_stays_theirs():
    """Deleting a chain a user's chain still jumps to would fail the whole restore (EBUSY): it is left to them,
    with every chain it jumps to."""
    text = (f"*nat\n:PREROUTING ACCEPT [0:0]\n:MY-OWN - [0:0]\n:{FAKE} - [0:0]\n:KUBE-SEP-ZZZZ - [0:0]\n"
            f":KUBE-SEP-GONE - [0:0]\n-A MY-OWN -j {FAKE}\n-A {FAKE} -j KUBE-SEP-ZZZZ\nCOMMIT\n")
    nothing = NatRules(netns="x-n1", table="nat", chains=(), payload="", rules=())
    assert netfilter_drift.table_drift(nothing, text) == ["extra chain: KUBE-SEP-GONE"]
    assert netfilter_drift.table_payload(nothing, text).splitlines()[-2:] == ["-X KUBE-SEP-GONE", "COMMIT"]


def test_only_the_tables_where_the_lab_owns_a_name():
    """kube-proxy's Service chains are nat chains, the policy controller's filter chains, netlab's own any
    table's; the same name in another table is someone else's."""
    for table, mine, theirs in (("nat", "KUBE-EXT-X", "NETPOL-IN-X"), ("filter", "NETPOL-IN-X", "KUBE-SVC-X"),
                                ("mangle", "NETLAB-IMPAIR", "KUBE-SEP-X")):
        text = f"*{table}\n:{mine} - [0:0]\n:{theirs} - [0:0]\nCOMMIT\n"
        nothing = NatRules(netns="x-n1", table=table, chains=(), payload="", rules=())
        assert netfilter_drift.table_drift(nothing, text) == [f"extra chain: {mine}"], table


def test_status_against_a_file_whose_policies_select_no_pod_of_a_node_names_its_policy_chains(lab, tmp_path):
    """status -t FILE is what up -t FILE changes: the node's NETPOL chains (which the Services feature deleted
    after the network's repair, unsaid by status) are named, and up's repair of the table deletes them."""
    path = tmp_path / "p.yaml"
    path.write_text(WEB + POLICY)
    with_policy = resolve(load_topology(str(path)))
    k = FakeKernel()
    up(with_policy, k)
    mine = sorted(c for c in chains(k, "fk-n1", "filter") if c.startswith("NETPOL-"))
    assert len(mine) >= 3
    st = state_mod.load_state(with_policy.name)
    relabelled = dict(st.topology, pods=[dict(p, labels={"app": "db"}) if p["name"] == "a" else p
                                         for p in st.topology["pods"]])
    result = lab_status.status(replace(st, topology=relabelled), k)
    [n1] = [d for d in result.details if d["object"] == "iptables filter rules in fk-n1"]
    assert [line for line in n1["differences"] if line.startswith("extra chain: ")] == [
        f"extra chain: {c}" for c in mine]
    path.write_text(WEB.replace("app: web", "app: db") + POLICY)
    fixed = up(resolve(load_topology(str(path))), k).fixed
    assert f"fk-n1: deleted stale filter chains {', '.join(mine)}" in fixed
    assert not [c for c in chains(k, "fk-n1", "filter") if c.startswith("NETPOL-")]
    assert status(with_policy, k).ok


def test_status_json_holds_every_difference_and_the_text_says_how_many_it_left_out(lab):
    from netlab.realize.diff import SHOWN, cut_short

    k = FakeKernel()
    up(lab, k)
    restore(k, "fk-n1", "*nat\n" + "".join(f":KUBE-SEP-X{i} - [0:0]\n" for i in range(9)) + "COMMIT\n")
    result = status(lab, k)
    [d] = result.details
    assert d["differences"] == [f"extra chain: KUBE-SEP-X{i}" for i in range(9)]
    assert d["detail"].endswith("(and 3 more)") and cut_short(result.details) == 9 - SHOWN
    assert cut_short([{"differences": ["one"]}, {"differences": []}, {}]) == 0


def test_rules_in_another_order_name_the_chain_and_the_first_rule_out_of_place():
    want = ("-A KUBE-SVC-A -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-1",
            "-A KUBE-SVC-A -j KUBE-SEP-2", "-A KUBE-SVC-B -j KUBE-SEP-3")
    planned = NatRules(netns="x-n1", table="nat", chains=("KUBE-SEP-1", "KUBE-SEP-2", "KUBE-SEP-3", "KUBE-SVC-A",
                                                          "KUBE-SVC-B"), payload="", rules=want)
    head = "*nat\n" + "".join(f":{c} - [0:0]\n" for c in planned.chains)
    swapped = head + "\n".join([want[1], want[0], want[2]]) + "\nCOMMIT\n"
    assert netfilter_drift.table_drift(planned, swapped) == [
        f"rules of nat chain KUBE-SVC-A in another order: rule 1 is {want[1]}, want {want[0]}"]
    twice = head + "\n".join([want[0], want[1], want[2], want[2]]) + "\nCOMMIT\n"
    assert netfilter_drift.table_drift(planned, twice) == [f"nat chain KUBE-SVC-B holds {want[2]} 2 times, want 1"]


def test_a_filter_tables_drift_is_said_an_iptables_filter_resource_in_json():
    """status -o json said "kind": "nat" of every table's rules."""
    obs = Observed(netns="x-n1", tables={"": {"filter": "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n"}})
    [drift] = diff_tables(obs, [])
    res = drift.to_json()["resource"]
    assert (res["kind"], res["table"]) == ("iptables", "filter")
    assert Drift("missing", NatRules(netns="x", table="nat", chains=(), payload="")).to_json()["resource"]["kind"] \
        == "iptables"


def test_up_says_the_stale_chains_of_a_node_and_table_in_one_line():
    """A switch to nftables mode deleted kube-proxy's iptables-mode chains twice over (the plan's restore, the
    Services feature's record), and up said each node's table twice: `KUBE-MARK-MASQ` in a second nat line,
    `KUBE-FIREWALL, KUBE-PROXY-FIREWALL` in a second filter line. Both hands report chain names by namespace and
    table; up says one line per node and table, every chain once, in the order first deleted."""
    from netlab.feature import StartResult, add_deleted_chains, deleted_chains_lines

    restores = {("lab-n1", "filter"): ["KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD"],
                ("lab-n1", "nat"): ["KUBE-SERVICES", "KUBE-POSTROUTING"], ("lab-n2", "nat"): ["KUBE-SERVICES"]}
    feature = StartResult(actions=["restarted container lab/web (it was stopped)"],
                          deleted_chains={("lab-n1", "filter"): ["KUBE-FIREWALL", "KUBE-PROXY-FIREWALL"]})
    feature += StartResult(deleted_chains={("lab-n1", "filter"): ["KUBE-FORWARD"], ("lab-n1", "nat"):
                                           ["KUBE-MARK-MASQ"], ("lab-n2", "filter"): ["KUBE-FIREWALL"]})
    said: dict[tuple[str, str], list[str]] = {}
    add_deleted_chains(said, restores)
    add_deleted_chains(said, feature.deleted_chains)
    assert deleted_chains_lines(said) == [
        "lab-n1: deleted stale filter chains KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-FIREWALL, KUBE-PROXY-FIREWALL",
        "lab-n1: deleted stale nat chains KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ",
        "lab-n2: deleted stale nat chains KUBE-SERVICES",
        "lab-n2: deleted stale filter chains KUBE-FIREWALL"]
    assert feature.deleted_chains[("lab-n1", "filter")] == ["KUBE-FIREWALL", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD"]
    assert deleted_chains_lines({("lab-n1", "nat"): []}) == []
