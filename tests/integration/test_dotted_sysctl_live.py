"""flannel.1's own sysctls as sysctl(8) takes them (net.ipv4.conf.flannel/1.rp_filter): the name `status` and `up`
print works with `sysctl`, as the command `status`'s JSON gives. QA: they printed net.ipv4.conf.flannel.1.rp_filter,
which `sysctl -w` refuses ("cannot stat /proc/sys/net/ipv4/conf/flannel/1/rp_filter")."""

from __future__ import annotations

import json
import re

import pytest

from helpers import as_planned_here, in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_a_sysctl_of_flannel_1_is_said_and_repaired_in_sysctl8s_words(tmp_path):
    name = unique_lab("nd")
    path = write_topology(tmp_path, f"name: {name}\nnetwork: {{mode: vxlan}}\nnodes:\n  - name: n1\n  - name: n2\n"
                                    f"pods:\n  - {{name: a, node: n1}}\n")
    node = f"{name}-n1"
    with lab_up(path, name, in_process=True):
        in_netns(node, "sysctl", "-w", "net.ipv4.conf.flannel/1.rp_filter=1", check=True)
        drift = netlab("status", "--lab", name, check=False)
        assert drift.returncode == 1
        assert f"different: sysctl net.ipv4.conf.flannel/1.rp_filter in {node} (is 1, want 0)" in drift.stdout, \
            drift.stdout
        (detail,) = json.loads(netlab("status", "--lab", name, "-o", "json", check=False).stdout)["details"]
        assert detail["resource"]["name"] == "net.ipv4.conf.flannel.1.rp_filter"  # the key netlab keeps
        shown = detail["resource"]["sysctl"]
        assert in_netns(node, "sysctl", "-n", shown, check=True).stdout.strip() == "1"  # sysctl(8) takes it
        fixed = netlab("up", "-t", path)
        assert re.search(rf"sysctl net\.ipv4\.conf\.flannel/1\.rp_filter in {node}", fixed.stdout), fixed.stdout
        assert in_netns(node, "sysctl", "-n", shown, check=True).stdout.strip() == "0"
        assert as_planned_here(name)
