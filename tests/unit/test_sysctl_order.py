"""A sysctl is written when its file exists (no root): an interface's once its link is made, nf_conntrack's
once the node's rule tables have had the kernel load the module; the live kernel still restores every node's
tables side by side, the conntrack sysctls after them."""

from __future__ import annotations

from netlab.kernel import live
from netlab.kernel.base import NftText, Op, TableText
from netlab.plan.resources import Sysctl
from netlab.realize.repair import ordered, stages


def step(res, run: bool = True) -> live._Step:
    return live._Step(res.netns, Op("write" if isinstance(res, Sysctl) else "restore", res), True, "x",
                      msg=None if run else b"m", run=(lambda: None) if run else None)


NAT = TableText("n1", "nat", "*nat\nCOMMIT\n", noflush=True)
NFT = NftText("n1", "ip", "kube-proxy", "add table ip kube-proxy\n", ("table ip kube-proxy",))
TIMEOUT = Sysctl(netns="n1", name="net.netfilter.nf_conntrack_tcp_timeout_established", value="86400")
FORWARD = Sysctl(netns="n1", name="net.ipv4.ip_forward", value="1")
NOTIFY = Sysctl(netns="p1", name="net.ipv4.conf.eth0.arp_notify", value="1")


def test_the_conntrack_sysctls_run_with_the_tables_after_every_namespaces_links():
    netlink = step(FORWARD, run=False)  # any netlink message of the node's
    steps = [netlink, step(NAT), step(NFT), step(TIMEOUT)]
    assert live._table_tail(steps) == steps[1:]
    # a namespace's own sysctl stays in its group: the links made after it copy its "default"
    assert live._table_tail([step(FORWARD)]) == []


def test_repairs_write_each_sysctl_where_its_file_exists():
    table = Op("restore", NAT)
    ops = ordered([Op("write", TIMEOUT), table, Op("write", NOTIFY), Op("write", FORWARD)])
    assert ops == [Op("write", FORWARD), Op("write", NOTIFY), table, Op("write", TIMEOUT)]
    assert stages(ops) == [[Op("write", FORWARD)], [Op("write", NOTIFY), table, Op("write", TIMEOUT)]]
