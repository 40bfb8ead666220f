"""`netlab plan` of impairments: the qdiscs `up` sets (tbf for a rate, netem for a delay, a tbf under it for both)
are printed after the objects, as tc commands whose options encode to what kernel/tc.py sends."""

from __future__ import annotations

import json

from cli_inprocess import run_cli
from netlab.kernel import tc
from test_impair_tc import options_of, pyroute2_message

TOPOLOGY = """\
name: qp
nodes:
  - name: n1
    impair:
      cni0: {rate: 50mbit}
pods:
  - name: a
    node: n1
    impair:
      eth0: {rate: 10mbit, loss: "1%"}
  - name: b
    node: n1
    impair:
      eth0: {rate: 10mbit, delay: 20ms, jitter: 5ms}
  - name: c
    node: n1
    impair:
      eth0: {loss: "5%"}
"""


def test_plan_shows_every_qdisc_up_sets_after_the_objects(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    proc = run_cli("plan", "-t", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("tc ")] == lines[-4:] == [
        "tc -n qp-n1 qdisc replace dev cni0 root handle 1: tbf rate 50mbit burst 62500 latency 50ms",
        "tc -n qp-a qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 12500 latency 50ms",
        "tc -n qp-b qdisc replace dev eth0 root handle 1: netem delay 20ms 5ms limit 1000",
        "tc -n qp-b qdisc replace dev eth0 parent 1:1 handle 10: tbf rate 10mbit burst 12500 latency 50ms"]
    assert "add rule netdev netlab-impair loss-a-eth0 numgen random mod 1000000000 < 10000000 counter drop" in lines
    data = json.loads(run_cli("plan", "-t", str(path), "-o", "json").stdout)
    assert [q["command"] for q in data["qdiscs"]] == lines[-4:]
    assert data["qdiscs"][3] == {"kind": "qdisc", "netns": "qp-b", "dev": "eth0", "parent": "parent 1:1",
                                 "handle": "10:", "qdisc": "tbf", "options": "rate 10mbit burst 12500 latency 50ms",
                                 "command": lines[-1]}


def test_the_planned_tc_options_are_what_netlab_sends():
    # tc's words of the plan, through pyroute2's port of tc's arithmetic, are kernel/tc.py's bytes.
    for bits, words in ((50_000_000, "rate 50mbit burst 62500 latency 50ms"),
                        (10_000_000, "rate 10mbit burst 12500 latency 50ms")):
        kw = dict(zip(words.split()[::2], words.split()[1::2]))
        theirs = pyroute2_message("tbf", 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, rate=kw["rate"], burst=int(kw["burst"]),
                                  latency=kw["latency"])
        assert options_of(theirs) == tc.tbf_options(bits)
