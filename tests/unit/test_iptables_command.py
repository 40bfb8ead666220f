"""The iptables commands netlab prints for a person to type (trace's and break's fix and read lines) are the lab's
backend's own (no root).

A lab made with NETLAB_IPTABLES=legacy keeps its rules in iptables-legacy; the machine's plain ``iptables`` (Debian
12: iptables-nft) edits another ruleset, so a fix line copied from trace (``ip netns exec N iptables -P FORWARD
ACCEPT``) or a break command changed nothing of the lab's. They now name ``iptables-legacy`` (``iptables-nft`` for
an nft lab where the machine's ``iptables`` is legacy), and stay plain where the plain one is the lab's."""

from __future__ import annotations

import pytest

from netlab.breaks.changes import command_of
from netlab.kernel import iptables
from netlab.kernel.base import Op, TableText
from netlab.trace.faults import forward_policy


@pytest.fixture
def lab_backend(monkeypatch):
    """Set the lab's backend and what the machine's plain ``iptables`` is."""
    def setting(lab: str, plain: str) -> None:
        monkeypatch.setattr(iptables, "_lab_backend", lab)
        monkeypatch.setattr(iptables, "_plain_backend", lambda: plain)
    return setting


@pytest.mark.parametrize("lab, plain, want", [
    ("legacy", "nft", "iptables-legacy"), ("nft", "legacy", "iptables-nft"), ("legacy", "legacy", "iptables"),
    ("nft", "nft", "iptables"), ("legacy", "", "iptables-legacy"), ("", "nft", "iptables")])
def test_the_command_is_the_lab_s_backend_s_own_unless_the_plain_one_is_it(lab_backend, lab, plain, want):
    lab_backend(lab, plain)
    assert iptables.command() == want
    assert iptables.command("iptables-save") == want + "-save"


class Kernel:
    def filter_policy(self, ns: str, chain: str) -> str:
        return "DROP"

    def filter_text(self, ns: str) -> str:
        return ":FLANNEL-FWD - [0:0]\n-A FLANNEL-FWD -s 10.244.0.0/16 -j ACCEPT\n"


def test_trace_s_fix_and_break_s_command_in_a_legacy_lab_name_iptables_legacy(lab_backend):
    lab_backend("legacy", "nft")
    _, fix = forward_policy(Kernel(), "L-n1")
    assert fix.startswith("ip netns exec L-n1 iptables-legacy -P FORWARD ACCEPT && ip netns exec L-n1 "
                          "iptables-legacy -A FORWARD "), fix
    step = Op("restore", TableText("L-n1", "filter", ":FORWARD DROP [0:0]\n-D FORWARD -j FLANNEL-FWD\n",
                                   noflush=True))
    assert command_of(step) == ("ip netns exec L-n1 iptables-legacy -t filter -P FORWARD DROP; "
                                "ip netns exec L-n1 iptables-legacy -t filter -D FORWARD -j FLANNEL-FWD")
    lab_backend("nft", "nft")
    assert command_of(step).startswith("ip netns exec L-n1 iptables -t filter -P FORWARD DROP; ")
