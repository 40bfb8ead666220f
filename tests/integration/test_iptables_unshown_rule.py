"""A rule in nft's own words in iptables-nft's table (root, real nf_tables): QA q62k 4.

``nft insert rule ip filter FORWARD ... numgen random mod 2 0 drop`` in a node makes iptables-save print only
"# Table `filter' is incompatible" and none of the table's rules; status called every planned filter rule
missing. Now it says the table holds a rule iptables cannot show, names it as nft prints it, and calls no rule
missing; up writes the table again, after which iptables-save shows it whole and nft has no such rule.
"""

from __future__ import annotations

import pytest

from helpers import in_netns, lab_up, netlab, two_node_topology, unique_lab, write_topology
from netlab.kernel import iptables

pytestmark = pytest.mark.root

RULE = ["ip", "saddr", "10.244.0.2", "udp", "dport", "8080", "numgen", "random", "mod", "2", "0", "drop"]


@pytest.mark.skipif(iptables.default_backend() != "nft", reason="a lab of iptables-nft's tables")
def test_a_rule_iptables_cannot_show_is_named_not_every_rule_missing(tmp_path):
    lab = unique_lab("fkb")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1), f"{lab}.yaml")
    with lab_up(path, lab):
        node = f"{lab}-minikube"
        assert "FLANNEL-FWD" in in_netns(node, "iptables-save", "-t", "filter", check=True).stdout
        in_netns(node, "nft", "insert", "rule", "ip", "filter", "FORWARD", *RULE, check=True)
        saved = in_netns(node, "iptables-save", "-t", "filter").stdout
        assert "Table `filter' is incompatible" in saved and "FLANNEL-FWD" not in saved, saved  # the kernel's view
        st = netlab("status", "--lab", lab, check=False)
        assert st.returncode == 1, st.stdout + st.stderr
        assert f"iptables filter rules in {node} (table filter holds a rule iptables cannot show (chain FORWARD: " \
               "ip saddr 10.244.0.2 udp dport 8080 numgen random mod 2 0 drop)" in st.stdout, st.stdout
        assert "missing rule" not in st.stdout, st.stdout
        up = netlab("up", "--lab", lab, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        saved = in_netns(node, "iptables-save", "-t", "filter", check=True).stdout
        assert "incompatible" not in saved and "FLANNEL-FWD" in saved, saved
        assert "numgen" not in in_netns(node, "nft", "list", "table", "ip", "filter", check=True).stdout
        st = netlab("status", "--lab", lab, check=False)
        assert st.returncode == 0, st.stdout + st.stderr
