"""Impairments without root: the topology's impair:/restartPolicy fields, their errors, the loss rules' plan,
and how the feature compares a kernel's qdiscs with what is wanted."""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.impair import lifecycle as feature
from netlab.kernel import tc
from netlab.model.impair import Impairment, describe, loss_fraction, rate_bits, time_us
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology


def problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    try:
        load_topology(str(path))
    except TopologyError as exc:
        return [str(p) for p in exc.problems]
    return []


BASE = "name: x\nnodes:\n  - name: n1\n{node}pods:\n  - name: p1\n    node: n1\n{pod}"


@pytest.mark.parametrize("node,pod,expect", [
    ("", "    restartPolicy: Sometimes\n",
     "t.yaml:7: pods[0].restartPolicy: 'Sometimes' is not allowed; use 'Always', 'OnFailure' or 'Never'"),
    ("", "    impair:\n      eth0: {rate: 10mbyte}\n",
     "t.yaml:8: pods[0].impair.eth0.rate: '10mbyte' is not a rate like 10mbit"),
    ("", "    impair:\n      eth0: {rate: 1bit}\n", "t.yaml:8: pods[0].impair.eth0.rate: '1bit' is out of range"),
    ("", "    impair:\n      eth0: {delay: 20}\n", "t.yaml:8: pods[0].impair.eth0.delay: 20 is a number here"),
    ("", "    impair:\n      eth0: {delay: 2min}\n", "t.yaml:8: pods[0].impair.eth0.delay: '2min' is not a time"),
    ("", "    impair:\n      eth0: {loss: \"101%\"}\n", "t.yaml:8: pods[0].impair.eth0.loss: '101%' is more than 100%"),
    ("", "    impair:\n      eth0: {loss: 1}\n", "t.yaml:8: pods[0].impair.eth0.loss: 1 is a number here"),
    # Settings that change nothing: refused (a 0% loss was a DROP rule that never dropped).
    ("", "    impair:\n      eth0: {loss: \"0.0%\"}\n",
     "t.yaml:8: pods[0].impair.eth0.loss: '0.0%' drops nothing: leave loss out"),
    ("", "    impair:\n      eth0: {loss: \"0.00000001%\"}\n",  # planned as --probability 0.0000000001: 0 drawn
     "t.yaml:8: pods[0].impair.eth0.loss: '0.00000001%' is below the smallest chance the kernel draws"),
    ("", "    impair:\n      eth0: {rate: 1mbit, delay: 0ms}\n",
     "t.yaml:8: pods[0].impair.eth0.delay: '0ms' delays nothing: leave delay out"),
    ("", "    impair:\n      eth0: {delay: 20ms, jitter: 0us}\n",
     "t.yaml:8: pods[0].impair.eth0.jitter: '0us' varies nothing: leave jitter out"),
    ("", "    impair:\n      eth0: {rate: 1mbit, burst: 10}\n", "t.yaml:8: pods[0].impair.eth0.burst:"),
    ("", "    impair:\n      eth0: {jitter: 5ms}\n",
     "t.yaml:8: pods[0].impair.eth0.jitter: jitter varies a delay: add delay: too"),
    ("", "    impair:\n      eth0: {}\n",
     "t.yaml:8: pods[0].impair.eth0: an impairment needs at least one of rate, delay, jitter, loss"),
    ("", "    impair:\n      eth1: {rate: 1mbit}\n",
     "t.yaml:8: pods[0].impair.eth1: no interface 'eth1' here to impair; use one of eth0"),
    ("    impair:\n      br0: {rate: 1mbit}\n", "",
     "t.yaml:5: nodes[0].impair.br0: no interface 'br0' here to impair; use one of eth0, cni0, flannel.1"),
])
def test_bad_impairments_are_one_line_with_file_line_and_field(tmp_path, node, pod, expect):
    lines = problems(tmp_path, BASE.format(node=node, pod=pod))
    assert len(lines) == 1 and lines[0].startswith(str(tmp_path / expect.split(":", 1)[0])), lines
    assert expect.split(":", 1)[1] in lines[0], lines


def test_good_impairments_and_restart_policies_load(tmp_path):
    text = BASE.format(node="    impair:\n      cni0: {rate: 50mbit}\n      flannel.1: {loss: \"0.5%\"}\n",
                       pod="    restartPolicy: OnFailure\n    impair:\n      eth0: {rate: 1gbit, delay: 20ms, "
                           "jitter: 500us, loss: \"1%\"}\n")
    assert problems(tmp_path, text) == []
    topo = load_topology(str(tmp_path / "t.yaml"))
    assert topo.pods[0].restart_policy == "OnFailure" and Topology.model_validate(
        {"name": "y", "nodes": [{"name": "n"}], "pods": [{"name": "p", "node": "n"}]}).pods[0].restart_policy == "Always"
    # A delay of 0 with a jitter is the jitter's centre: it does something.
    assert problems(tmp_path, BASE.format(node="", pod="    impair:\n      eth0: {delay: 0ms, jitter: 5ms}\n")) == []
    # host-gw has no flannel.1 to impair
    assert "use one of eth0, cni0" in " ".join(problems(tmp_path, "network: {mode: host-gw}\n" + text))


def test_units_are_tcs():
    assert rate_bits("10mbit") == 10_000_000 and rate_bits("1kbps") == 8_000 and rate_bits("1.5gbit") == 1_500_000_000
    assert time_us("20ms") == 20_000 and time_us("500us") == 500 and time_us("1.5s") == 1_500_000
    assert loss_fraction("0.5%") == 0.005
    assert describe({"rate": "1mbit", "delay": None, "loss": "1%"}) == "rate 1mbit loss 1%" and describe({}) == "none"


def lab_with(pod_impair: dict, node_impair: dict | None = None):
    return resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1", "impair": node_impair or {}}],
                                            "pods": [{"name": "p1", "node": "n1", "impair": pod_impair},
                                                     {"name": "p2", "node": "n1"}]}))


def test_a_cleared_loss_leaves_no_chain_behind():
    """The last loss of a namespace cleared: the plan has no mangle rules there, and the table the kernel
    still holds (jump and chain) is drift, repaired by one restore that drops the jump, then the chain."""
    from netlab.plan.resources import NatRules
    from netlab.realize import netfilter_drift

    left = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:NETLAB-IMPAIR - [0:0]\n"
            "-A NETLAB-IMPAIR -o eth0 -j DROP\nCOMMIT\n")  # `impair --clear` before the fix left this
    jumped = left.replace(":NETLAB-IMPAIR - [0:0]\n", ":NETLAB-IMPAIR - [0:0]\n-A POSTROUTING -j NETLAB-IMPAIR\n")
    nothing = NatRules(netns="x-p1", table="mangle", chains=(), payload="", rules=())
    assert netfilter_drift.table_drift(nothing, left) == ["extra chain: NETLAB-IMPAIR",
                                                    "extra rule: -A NETLAB-IMPAIR -o eth0 -j DROP"]
    payload = netfilter_drift.table_payload(nothing, jumped).splitlines()
    assert payload.index("-F POSTROUTING") < payload.index("-X NETLAB-IMPAIR")
    assert ":NETLAB-IMPAIR - [0:0]" in payload  # flushed before it is deleted
    # A chain that is not netlab's own stays (someone else's, or kube-proxy's with its own belated deletion).
    other = left.replace("NETLAB-IMPAIR", "KUBE-MARK-DROP")
    assert netfilter_drift.table_drift(nothing, other) == [] and netfilter_drift.table_payload(nothing, other) is None


def test_the_feature_wants_qdiscs_for_rates_and_delays_only():
    want = feature.wanted(lab_with({"eth0": {"rate": "10mbit", "loss": "1%"}}, {"cni0": {"loss": "1%"}}))
    assert want == {("x-p1", "eth0"): tc.Shaping(rate_bits=10_000_000), ("x-n1", "cni0"): tc.Shaping()}


@pytest.mark.parametrize("have,want,same", [
    (tc.Shaping(rate_bits=10_000_000), tc.Shaping(rate_bits=10_000_000), True),
    (tc.Shaping(rate_bits=9_999_996), tc.Shaping(rate_bits=10_000_000), True),  # whole bytes a second
    (tc.Shaping(rate_bits=5_000_000), tc.Shaping(rate_bits=10_000_000), False),
    (tc.Shaping(), tc.Shaping(rate_bits=10_000_000), False),
    (tc.Shaping(other="htb"), tc.Shaping(), False),  # someone else's root qdisc is drift
    (tc.Shaping(delay_us=20_001), tc.Shaping(delay_us=20_000), True),  # scheduler ticks
    (tc.Shaping(delay_us=20_000, jitter_us=5_000), tc.Shaping(delay_us=20_000), False),
])
def test_shaping_compares_as_the_kernel_keeps_it(have, want, same):
    assert feature.same(have, want) is same


def test_shaping_in_words():
    assert feature.words(tc.Shaping(rate_bits=10_000_000, delay_us=20_000, jitter_us=500)) == \
        "rate 10mbit delay 20ms jitter 500us"
    assert feature.words(tc.Shaping()) == "none" and feature.words(None) == "no such interface"
    assert feature.words(tc.Shaping(other="htb")) == "root qdisc htb"


def test_tbf_burst_holds_ten_milliseconds_and_two_frames():
    assert tc.burst_bytes(10_000_000) == 12_500 and tc.burst_bytes(100_000) == 3200



def test_a_tbf_parameter_changed_by_hand_is_drift_in_words():
    have = tc.Shaping(rate_bits=10_000_000, off=("burst 99999b", "limit 162499b"))
    assert not feature.same(have, tc.Shaping(rate_bits=10_000_000))
    assert feature.words(have) == "rate 10mbit burst 99999b limit 162499b"


@pytest.mark.parametrize("text,bits", [("10Mbit", 10_000_000), ("1Gbit", 10**9), ("10MBIT", 10_000_000),
                                       ("512Kbit", 512_000), ("1KiBps", 8192), ("2mibit", 2 * 1024**2),
                                       ("10000000", 10_000_000)])
def test_rates_in_tcs_own_spelling_are_taken(text, bits):
    """tc reads its unit names case-insensitively and prints `rate 10Mbit`: a rate pasted from `tc qdisc show`
    (or 1Gbit, 10MBIT, a binary kibit) was refused."""
    assert Impairment(rate=text).rate == text and rate_bits(text) == bits


@pytest.mark.parametrize("text,us", [("20MS", 20_000), ("1Sec", 1_000_000), ("500usec", 500), ("20", 20),
                                     ("2000ns", 2)])
def test_times_in_tcs_own_spelling_are_taken(text, us):
    assert Impairment(delay=text).delay == text and time_us(text) == us


def test_tcs_spellings_in_a_topology_and_on_the_command_line(tmp_path):
    from netlab.api.impair import options

    assert problems(tmp_path, BASE.format(node="", pod="    impair:\n      eth0: {rate: 10Mbit, delay: 20MS}\n")) == []
    assert options("10Mbit", "20MS", "5Ms", None, False) == Impairment(rate="10Mbit", delay="20MS", jitter="5Ms")
    (bad,) = problems(tmp_path, BASE.format(node="", pod="    impair:\n      eth0: {rate: 10Mbyte}\n"))
    assert bad.endswith("/t.yaml:8: pods[0].impair.eth0.rate: '10Mbyte' is not a rate like 10mbit, 512kbit or 1gbit (tc's units, in "
        "any case: bit, kbit, mbit, gbit, kibit ...; bps, kbps, mbps, gbps are bytes a second)")
