"""`delay: 0ms` with a `jitter`: a netem whose delays vary round 0 (tc's `netem delay 0ms 10ms`), no root.

The model accepts it (a delay of 0 alone is refused: it does nothing; with a jitter it is the jitter's centre),
but `netlab plan` printed no qdisc for it and kernel/tc.py set none (both asked only whether the delay was
non-zero), while `status` wanted the jitter: drift that `up` never repaired. Now a netem is planned and set when
any of its parameters does something, and `status` finds the interface as wanted once it is set.
"""

from __future__ import annotations

import contextlib

import pytest
from cli_inprocess import run_cli
from test_impair_tc import NEW, FakeTcKernel, options_of, pyroute2_message

from netlab.impair import lifecycle
from netlab.kernel import tc

TOPOLOGY = """\
name: qj
nodes:
  - name: n1
pods:
  - name: a
    node: n1
    impair:
      eth0: {delay: 0ms, jitter: 10ms}
  - name: b
    node: n1
    impair:
      eth0: {delay: 0ms, jitter: 500us, rate: 10mbit}
"""


@pytest.fixture
def kernel(monkeypatch):
    k = FakeTcKernel()
    monkeypatch.setattr(tc.netlink, "Conn", lambda: k)
    monkeypatch.setattr(tc.nsmod, "entered", lambda name: contextlib.nullcontext())
    return k


def test_plan_keeps_a_netem_whose_jitter_varies_round_no_delay(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    proc = run_cli("plan", "-t", str(path))
    assert proc.returncode == 0, proc.stderr
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("tc ")] == [
        "tc -n qj-a qdisc replace dev eth0 root handle 1: netem delay 0ms 10ms limit 1000",
        "tc -n qj-b qdisc replace dev eth0 root handle 1: netem delay 0ms 500us limit 1000",
        "tc -n qj-b qdisc replace dev eth0 parent 1:1 handle 10: tbf rate 10mbit burst 12500 latency 50ms"]


def test_a_jitter_round_no_delay_is_set_as_a_netem_and_status_finds_it_as_wanted(kernel):
    want = lifecycle.shaping({"rate": None, "delay": "0ms", "jitter": "10ms", "loss": None})
    assert (want.delay_us, want.jitter_us) == (0, 10_000)
    assert not lifecycle.same(kernel.shaping(), want)  # the kernel's default qdisc: drift, `up` sets it
    tc.replace_root("x-p1", "eth0", want.rate_bits, want.delay_us, want.jitter_us)
    assert [s[:5] for s in kernel.sent if s[0] == NEW] == [(NEW, tc.netlink.NLM_F_CREATE | tc.netlink.NLM_F_REPLACE,
                                                            tc.ROOT_HANDLE, tc.TC_H_ROOT, "netem")]
    root = kernel.root()
    assert root is not None and root["options"] == tc.netem_options(0, 10_000) == options_of(
        pyroute2_message("netem", 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, delay=0, jitter=10_000))
    assert kernel.shaping() == tc.Shaping(jitter_us=10_000)
    assert lifecycle.same(kernel.shaping(), want)  # as wanted: `status` is clean, a second `up` changes nothing
    assert lifecycle.words(want) == "delay 0ms jitter 10ms"
