"""Loss impairments as nf_tables netdev chains where the frames arrive (QA qh 1, 2): the plan's nft text, the
kernel's listing read back in the plan's words, and the lab's lifecycle against the fake kernel (no root).

A DROP in the sending namespace's mangle POSTROUTING failed the sender's own packets with EPERM (UDP sendto
errors, iptables matched cni0's bridged frames through br_netfilter); tests/integration/test_impair_loss.py
measures the new rules with real traffic.
"""

from __future__ import annotations

import json

import pytest
from fake_lab import TOPO, make_lab, status, up

from netlab.kernel import nft as nftmod
from netlab.kernel.base import NftText, Op
from netlab.kernel.fake import FakeKernel
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology
from netlab.plan import impair as plan_impair
from netlab.plan.build import build_plan
from netlab.realize import nftables

lab = pytest.fixture(make_lab, name="lab")


def lab_with(pod_impair: dict, node_impair: dict | None = None):
    return resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1", "impair": node_impair or {}}],
                                            "pods": [{"name": "p1", "node": "n1", "impair": pod_impair},
                                                     {"name": "p2", "node": "n1"}]}))


def test_a_pods_loss_is_dropped_on_its_veths_peer_and_a_bridges_on_its_own_egress():
    x = lab_with({"eth0": {"loss": "1%", "rate": "1mbit"}}, {"cni0": {"loss": "100%"}, "eth0": {"loss": "0.5%"}})
    pod, node = x.pods[0], x.nodes[0]
    tables = {r.netns: r for r in build_plan(x).of_kind("nft") if r.table == "netlab-impair"}
    assert set(tables) == {"x-n1", "x-underlay"}  # none in the pod: it sends, the wire loses
    n1 = tables["x-n1"]
    assert (n1.family, n1.key) == ("netdev", ("nft", "x-n1", "netdev", "netlab-impair"))
    assert n1.payload.splitlines() == [
        "add table netdev netlab-impair", "delete table netdev netlab-impair", "add table netdev netlab-impair",
        'add chain netdev netlab-impair loss-n1-cni0 { type filter hook egress device "cni0" priority 0 ; }',
        "add rule netdev netlab-impair loss-n1-cni0 counter drop",  # 100%: every one
        f'add chain netdev netlab-impair loss-p1-eth0 {{ type filter hook ingress device "{pod.host_veth}" '
        'priority 0 ; }',
        "add rule netdev netlab-impair loss-p1-eth0 numgen random mod 1000000000 < 10000000 counter drop"]
    assert n1.listing == (
        'chain loss-n1-cni0 type filter hook egress device "cni0" priority 0',
        f'chain loss-p1-eth0 type filter hook ingress device "{pod.host_veth}" priority 0',
        "rule loss-n1-cni0 0000 counter drop",
        "rule loss-p1-eth0 0000 numgen random mod 1000000000 < 10000000 counter drop")
    assert tables["x-underlay"].listing == (
        f'chain loss-n1-eth0 type filter hook ingress device "{node.underlay_veth}" priority 0',
        "rule loss-n1-eth0 0000 numgen random mod 1000000000 < 5000000 counter drop")
    # No iptables rule any more: the mangle table holds nothing of an impairment.
    assert not [r for r in build_plan(x).of_kind("nat") if r.table == "mangle"]
    # A rate alone is no rule: the qdisc is the feature's.
    assert not build_plan(lab_with({"eth0": {"rate": "1mbit"}})).of_kind("nft")


def test_a_vxlan_devices_loss_and_the_smallest_share():
    x = lab_with({}, {"flannel.1": {"loss": "0.0000001%"}})
    (t,) = build_plan(x).of_kind("nft")
    assert t.listing == ('chain loss-n1-flannel.1 type filter hook egress device "flannel.1" priority 0',
                         "rule loss-n1-flannel.1 0000 numgen random mod 1000000000 < 1 counter drop")
    assert [(h.target, h.netns, h.hook, h.device) for h in plan_impair.loss_hooks(x)] == [
        ("n1:flannel.1", "x-n1", "egress", "flannel.1")]


# nft 1.0.6's answers for such a table: its JSON leaves out the chain's device, its text has it.
NFT_JSON = {"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"table": {"family": "netdev", "name": "netlab-impair", "handle": 6}},
    {"chain": {"family": "netdev", "table": "netlab-impair", "name": "loss-n1-flannel.1", "handle": 1,
               "type": "filter", "hook": "egress", "prio": 0, "policy": "accept"}},
    {"chain": {"family": "netdev", "table": "netlab-impair", "name": "loss-p1-eth0", "handle": 2,
               "type": "filter", "hook": "ingress", "prio": 0, "policy": "accept"}},
    {"rule": {"family": "netdev", "table": "netlab-impair", "chain": "loss-n1-flannel.1", "handle": 3, "expr": [
        {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 1000000000, "offset": 0}},
                   "right": 1}}, {"counter": {"packets": 7, "bytes": 900}}, {"drop": None}]}},
    {"rule": {"family": "netdev", "table": "netlab-impair", "chain": "loss-p1-eth0", "handle": 4,
              "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"drop": None}]}}]}
NFT_TEXT = """table netdev netlab-impair {
\tchain loss-n1-flannel.1 {
\t\ttype filter hook egress device "flannel.1" priority filter; policy accept;
\t\tnumgen random mod 1000000000 < 1 counter packets 7 bytes 900 drop
\t}

\tchain loss-p1-eth0 {
\t\ttype filter hook ingress device "veth1234" priority filter; policy accept;
\t\tcounter packets 0 bytes 0 drop
\t}
}
"""


def test_the_kernels_table_is_listed_with_its_devices_in_the_plans_words():
    data = json.loads(json.dumps(NFT_JSON))
    nftmod.add_devices(data, NFT_TEXT)
    assert nftables.listing(data) == (
        'chain loss-n1-flannel.1 type filter hook egress device "flannel.1" priority 0',
        'chain loss-p1-eth0 type filter hook ingress device "veth1234" priority 0',
        "rule loss-n1-flannel.1 0000 numgen random mod 1000000000 < 1 counter drop",
        "rule loss-p1-eth0 0000 counter drop")
    # A newer nft's JSON has the device itself: kept as it says.
    newer = json.loads(json.dumps(NFT_JSON))
    newer["nftables"][2]["chain"]["dev"] = "flannel.1"
    nftmod.add_devices(newer, "")
    assert 'chain loss-n1-flannel.1 type filter hook egress device "flannel.1" priority 0' in nftables.listing(newer)


def lossy(tmp_path, loss: str = "5%"):
    """The fake lab with pod a's eth0 losing ``loss`` (netlab impair a:eth0 --loss 5%)."""
    path = tmp_path / "lossy.yaml"
    path.write_text(TOPO.replace("{name: a, node: n1, ip: 10.244.0.2}",
                                 f"{{name: a, node: n1, ip: 10.244.0.2, impair: {{eth0: {{loss: '{loss}'}}}}}}"))
    return resolve(load_topology(str(path)))


def test_a_loss_is_a_table_in_the_node_compared_repaired_and_taken_away(lab, tmp_path):
    """With the loss, pod a's node has the table (one transaction) and the pod's iptables are as before; status
    is clean; a rule changed by hand is drift that up puts back; without the loss the table goes, and status is
    clean again (a loss set is the lab's desired state, a loss cleared leaves nothing behind)."""
    k = FakeKernel()
    up(lab, k)
    mangle = k.iptables_save("fk-a", "mangle")
    k.log.clear()
    up(lossy(tmp_path), k)
    assert [(op.verb, op.res.describe()) for op in k.log] == [
        ("restore", "nftables table netdev netlab-impair in fk-n1")]
    veth = lab.pods[0].host_veth
    assert k.ns["fk-n1"].nft[("netdev", "netlab-impair")].listing == (
        f'chain loss-a-eth0 type filter hook ingress device "{veth}" priority 0',
        "rule loss-a-eth0 0000 numgen random mod 1000000000 < 50000000 counter drop")
    assert k.iptables_save("fk-a", "mangle") == mangle
    assert status(lab, k).ok
    k.apply([Op("restore", NftText("fk-n1", "netdev", "netlab-impair", "flush chain netdev netlab-impair "
                                   "loss-a-eth0\n", (f'chain loss-a-eth0 type filter hook ingress device "{veth}" '
                                                     "priority 0",)))])
    assert status(lab, k).drift == [
        "different: nftables table netdev netlab-impair in fk-n1 (missing rule 1 of chain loss-a-eth0: "
        "numgen random mod 1000000000 < 50000000 counter drop)"]
    up(lossy(tmp_path), k)
    assert status(lab, k).ok
    k.log.clear()
    up(lab, k)
    assert [(op.verb, op.res.describe(), op.res.removes) for op in k.log] == [
        ("restore", "nftables table netdev netlab-impair in fk-n1", True)]
    assert ("netdev", "netlab-impair") not in k.ns["fk-n1"].nft
    assert status(lab, k).ok
    k.log.clear()
    up(lab, k)
    assert k.log == []


def test_status_against_a_file_names_a_loss_set_at_run_time_as_it_names_a_rate(lab, tmp_path):
    """`netlab impair a:eth0 --loss 5%`, then `status -t FILE` of a file without it: the node's loss table is a
    difference "set at run time by `netlab impair`: a:eth0 loss 5%", as a rate's line says (it was an unexplained
    iptables difference); against the lab's own desired state nothing differs."""
    from dataclasses import replace

    from netlab.lab import status as lab_status
    from netlab.realize import state as state_mod

    k = FakeKernel()
    up(lossy(tmp_path), k)
    st = state_mod.load_state(lab.name)
    st.extra["impair"] = {"shaped": {}, "runtime": {"fk-a:eth0": {"spec": {"rate": None, "delay": None,
                                                                             "jitter": None, "loss": "5%"},
                                                                    "at": "2026-12-05T12:00:00Z"}}}
    result = lab_status.status(replace(st, topology=lab.topo.model_dump(mode="json", by_alias=True,
                                                                         exclude_none=True)), k)
    assert result.drift == ["extra: nftables table netdev netlab-impair in fk-n1 (an nftables table the lab does not "
                            "plan; set at run time by `netlab impair`: a:eth0 loss 5%)"]
    assert result.details[0]["detail"].endswith("set at run time by `netlab impair`: a:eth0 loss 5%")
    assert lab_status.status(st, k).ok


def test_impair_shows_the_kernels_loss_rule_in_its_own_words():
    from netlab.impair import show

    assert show._loss(NFT_JSON, "loss-n1-flannel.1") == ("0.0000001%", 7)
    assert show._loss(NFT_JSON, "loss-p1-eth0") == ("100%", 0)
    signed = json.loads(json.dumps(NFT_JSON))  # nft 1.0.6 prints a modulus past 2^31 as a negative number
    signed["nftables"][4]["rule"]["expr"][0]["match"].update(
        left={"numgen": {"mode": "random", "mod": -2147483648, "offset": 0}}, right=214748365)
    assert show._loss(signed, "loss-n1-flannel.1") == ("10%", 7)  # 214748365 / 2^31, to 7 decimals
    assert show._loss(NFT_JSON, "loss-x-eth0") is None  # no such chain: no loss
    line = show.Shown("a:eth0", "fk-a", "eth0", "rate 10mbit loss 1%", "rate 10mbit loss 1%",
                      "2026-12-05T12:00:00Z", "on the ingress of veth1 in fk-n1, a:eth0's peer", 12).line()
    assert line == ("a:eth0: rate 10mbit loss 1% (loss on the ingress of veth1 in fk-n1, a:eth0's peer, 12 frames "
                    "dropped so far; set at run time by `netlab impair` at 2026-12-05T12:00:00Z)")
