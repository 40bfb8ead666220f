"""The one parser of an interface's sysctl names (netlab/model/sysctl_names.py), and its users agreeing on the odd
ones: a device with dots (flannel.1, a VLAN's eth0.100, which sysctl(8) writes eth0/100), all and default."""

from __future__ import annotations

import pytest

from netlab.kernel.procsys import SYSCTL_ROOT, sysctl_path
from netlab.model.sysctl_names import ConfName, conf_name, interface_of
from netlab.plan import sysctls
from netlab.plan.resources import Sysctl
from netlab.realize import expect


@pytest.mark.parametrize("name, parsed", [
    ("net.ipv4.conf.eth0.rp_filter", ConfName("ipv4", "conf", "eth0", "rp_filter")),
    ("net.ipv4.conf.flannel.1.arp_ignore", ConfName("ipv4", "conf", "flannel.1", "arp_ignore")),
    ("net.ipv4.conf.eth0.100.rp_filter", ConfName("ipv4", "conf", "eth0.100", "rp_filter")),
    ("net.ipv4.conf.eth0/100.rp_filter", ConfName("ipv4", "conf", "eth0.100", "rp_filter")),  # sysctl(8)'s
    ("net.ipv4.conf.a.b.c.forwarding", ConfName("ipv4", "conf", "a.b.c", "forwarding")),
    ("net.ipv6.conf.cni0.disable_ipv6", ConfName("ipv6", "conf", "cni0", "disable_ipv6")),
    ("net.ipv6.conf.vlan/7.disable_ipv6", ConfName("ipv6", "conf", "vlan.7", "disable_ipv6")),
    ("net.ipv4.conf.all.rp_filter", ConfName("ipv4", "conf", "all", "rp_filter")),
    ("net.ipv6.conf.default.disable_ipv6", ConfName("ipv6", "conf", "default", "disable_ipv6")),
    ("net.ipv4.ip_forward", None), ("net.ipv4.conf.rp_filter", None), ("net.ipv4.conf..rp_filter", None),
    ("net.ipv4.conf.eth0.", None), ("net.ipv4.conf.eth0..100.rp_filter", None), ("net.ipv5.conf.eth0.x", None),
    ("net.core.conf.eth0.x", None), ("kernel.conf.eth0.x.y", None), ("net.ipv4.neigh.eth0.gc_stale_time", None),
    ("net.netfilter.nf_conntrack_max", None), ("", None),
])
def test_names(name, parsed):
    assert conf_name(name) == parsed


def test_all_and_default_are_no_interface():
    assert not conf_name("net.ipv4.conf.all.rp_filter").own and not conf_name("net.ipv4.conf.default.x").own
    assert conf_name("net.ipv4.conf.eth0.100.rp_filter").own
    assert interface_of("net.ipv4.conf.all.rp_filter") is None and interface_of("net.ipv4.conf.default.x") is None
    assert interface_of("net.ipv4.conf.eth0/100.rp_filter") == "eth0.100"
    assert interface_of("net.ipv6.conf.eth0.100.disable_ipv6", "ipv6", "disable_ipv6") == "eth0.100"
    assert interface_of("net.ipv6.conf.eth0.100.forwarding", "ipv6", "disable_ipv6") is None
    assert interface_of("net.ipv4.conf.eth0.100.rp_filter", "ipv6") is None


def test_spellings():
    c = conf_name("net.ipv4.conf.eth0/100.rp_filter")
    assert (c.dotted, c.shown, c.path) == ("net.ipv4.conf.eth0.100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter",
                                           "net/ipv4/conf/eth0.100/rp_filter")
    assert conf_name("net.ipv4.neigh.eth0.100.gc_stale_time", ("conf", "neigh")).path == \
        "net/ipv4/neigh/eth0.100/gc_stale_time"


@pytest.mark.parametrize("name", ["net.ipv4.conf.eth0.100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"])
def test_the_users_agree_on_a_vlan_device(name):
    """plan/sysctls, realize/expect and procsys's path: the device is eth0.100 whichever spelling."""
    assert sysctls.interface_setting(name) == ("eth0.100", "rp_filter")
    assert expect.interface_of(Sysctl(netns="x", name=name, value="0")) == "eth0.100"
    assert sysctl_path(name) == f"{SYSCTL_ROOT}/net/ipv4/conf/eth0.100/rp_filter"
    assert sysctls.shown(name) == "net.ipv4.conf.eth0/100.rp_filter"
    assert sysctls.when_written(name) == "link"
    assert not sysctls.copied_by_new_netns(name)


def test_the_users_agree_on_all_and_default():
    for name in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.arp_ignore"):
        assert sysctls.interface_setting(name) is None and sysctls.copied_by_new_netns(name)
        assert expect.interface_of(Sysctl(netns="x", name=name, value="0")) is None
        assert sysctls.when_written(name) == "netns" and sysctls.shown(name) == name
    assert sysctls.ipv6_interface("net.ipv6.conf.all.disable_ipv6") is None
    assert sysctls.ipv6_interface("net.ipv6.conf.eth0/100.disable_ipv6") == "eth0.100"
    assert not sysctls.copied_by_new_netns("net.ipv6.conf.all.disable_ipv6")
    assert sysctl_path("net.ipv6.neigh.default.gc_stale_time") == f"{SYSCTL_ROOT}/net/ipv6/neigh/default/gc_stale_time"


def test_the_fake_kernel_deletes_a_links_own_sysctls_and_no_other_links():
    """A link's own settings go with it, and only its: deleting ``vx`` left ``vx.1``'s (they were taken with it:
    the fake read ``net.ipv4.conf.vx.`` as a prefix), a sysctl spelled with slashes is the same file."""
    from netlab.kernel.base import Op
    from netlab.kernel.fake import FakeKernel
    from netlab.plan.resources import Bridge

    k = FakeKernel()
    k.create_netns("fs-n1", "t", [])
    bridges = [Bridge(netns="fs-n1", name=name, mtu=1500, mac=f"02:00:00:00:00:0{i}")
               for i, name in enumerate(("vx", "vx.1"), 1)]
    k.apply([Op("add", b) for b in bridges])
    k.apply([Op("write", Sysctl(netns="fs-n1", name=f"net.ipv4.conf.{name}.rp_filter", value="1"))
             for name in ("vx", "vx.1")])
    k.apply([Op("del", bridges[0])])
    assert k.ns["fs-n1"].sysctl("net.ipv4.conf.vx.rp_filter") is None  # no such interface
    assert k.ns["fs-n1"].sysctl("net.ipv4.conf.vx.1.rp_filter") == "1"
    assert k.ns["fs-n1"].sysctl("net.ipv4.conf.vx/1.rp_filter") == "1"
