"""In a lab made with iptables-legacy (NETLAB_IPTABLES=legacy), the iptables commands break and trace print are
iptables-legacy's, and run as printed they repair the lab (root).

They were plain `iptables ...`: on Debian 12 that is iptables-nft, a ruleset the lab's rules are not in, so the
fix trace printed for a FORWARD policy of DROP made an nft table beside the lab's and left the drop in place (the
last pass: "fix lines use plain `iptables` in a legacy-backend lab"). The machine's plain iptables must not be
legacy for this test to tell the two apart."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import in_netns, lab_namespaces, netlab, traced

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n2}}
"""
LEGACY = {"NETLAB_IPTABLES": "legacy"}


def saved(netns: str, backend: str) -> str:
    return in_netns(netns, f"iptables-{backend}-save", "-t", "filter", check=True).stdout


def test_break_and_trace_print_iptables_legacy_for_a_legacy_lab_and_trace_s_fix_repairs_it(labs):
    if "nft" not in os.path.realpath(shutil.which("iptables") or ""):
        pytest.skip("the machine's plain iptables is not iptables-nft")
    lab = labs.name("lf")
    path, _ = labs.up(TOPOLOGY.format(lab=lab), env=LEGACY)
    n1 = f"{lab}-n1"
    assert ":FORWARD ACCEPT" in saved(n1, "legacy")

    broke = netlab("break", "--lab", lab, "forward-policy-drop", "--target", "n1", env=LEGACY).stdout
    assert f"  ip netns exec {n1} iptables-legacy -t filter -P FORWARD DROP; ip netns exec {n1} iptables-legacy " \
           "-t filter -D FORWARD " in broke, broke
    assert ":FORWARD DROP" in saved(n1, "legacy")

    code, report = traced(lab, "a", "b")
    assert code == 1, report
    fix = report["lost"]["fix"]
    assert fix.startswith(f"ip netns exec {n1} iptables-legacy -P FORWARD ACCEPT && ip netns exec {n1} "
                          "iptables-legacy -A FORWARD "), fix
    subprocess.run(["bash", "-c", fix], check=True)  # as a person pastes it
    assert ":FORWARD ACCEPT" in saved(n1, "legacy")
    nft_tables = in_netns(n1, "nft", "list", "tables", check=True).stdout
    assert "ip filter" not in nft_tables, nft_tables  # nothing made in the ruleset the lab is not in
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert traced(lab, "a", "b")[0] == 0

    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
