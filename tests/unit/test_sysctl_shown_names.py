"""An interface's sysctl whose name has a dot (flannel.1) is shown as sysctl(8) takes it, the dots of the interface
name as slashes (net.ipv4.conf.flannel/1.rp_filter): `sysctl -w net.ipv4.conf.flannel.1.rp_filter=0` fails."""

from __future__ import annotations

from netlab.plan.resources import Sysctl
from netlab.plan.sysctls import shown
from netlab.trace import faults


def test_a_dotted_interfaces_sysctl_is_shown_with_slashes_and_others_as_they_are():
    assert shown("net.ipv4.conf.flannel.1.rp_filter") == "net.ipv4.conf.flannel/1.rp_filter"
    assert shown("net.ipv4.conf.eth0.rp_filter") == "net.ipv4.conf.eth0.rp_filter"
    assert shown("net.ipv4.conf.all.rp_filter") == "net.ipv4.conf.all.rp_filter"
    assert shown("net.ipv4.ip_forward") == "net.ipv4.ip_forward"


def test_status_up_and_plan_say_it_in_sysctl8s_form_and_json_keeps_the_name():
    s = Sysctl(netns="l-n1", name="net.ipv4.conf.flannel.1.rp_filter", value="0")
    assert s.describe() == "sysctl net.ipv4.conf.flannel/1.rp_filter in l-n1"
    assert s.command() == "ip netns exec l-n1 sysctl -w net.ipv4.conf.flannel/1.rp_filter=0"
    js = s.to_json()
    assert js["name"] == "net.ipv4.conf.flannel.1.rp_filter" and js["sysctl"] == "net.ipv4.conf.flannel/1.rp_filter"
    assert "sysctl" not in Sysctl(netns="l-n1", name="net.ipv4.ip_forward", value="1").to_json()


class Kernel:
    def __init__(self, values):
        self.values = values

    def sysctl(self, netns, key):
        return self.values.get(key)

    def route_get(self, netns, dst):
        raise OSError("no route")


def test_traces_fix_for_a_strict_rp_filter_on_flannel_1_is_a_command_sysctl_takes():
    k = Kernel({"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.flannel.1.rp_filter": "1"})
    why, fix = faults.refused(k, "l-n1", "flannel.1", "10.244.1.2", "10.244.0.2", "invalid cross-device link")
    assert "net.ipv4.conf.flannel/1.rp_filter = 1" in why
    assert fix.startswith("ip netns exec l-n1 sysctl -w net.ipv4.conf.flannel/1.rp_filter=0")


def test_an_interfaces_ipv6_switch_is_expected_on_every_link_with_ipv6_and_shown_as_sysctl_takes_it():
    """QA q62k 2: each planned link's disable_ipv6, as default's (1), on links of IPv6's minimum MTU or more."""
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.plan.build import build_plan
    from netlab.realize.expect import expected

    assert shown("net.ipv6.conf.flannel.1.disable_ipv6") == "net.ipv6.conf.flannel/1.disable_ipv6"
    assert shown("net.ipv6.conf.cni0.disable_ipv6") == "net.ipv6.conf.cni0.disable_ipv6"
    lab = resolve(Topology.model_validate({"name": "l", "network": {"mode": "vxlan"},
                                           "nodes": [{"name": "n1"}, {"name": "n2"}],
                                           "pods": [{"name": "a", "node": "n1"}]}))
    want = expected(build_plan(lab))
    six = {(s.netns, s.name, s.value) for items in want.values() for s in items
           if isinstance(s, Sysctl) and s.name.startswith("net.ipv6.conf.") and ".all." not in s.name
           and ".default." not in s.name}
    assert {("l-n1", "net.ipv6.conf.cni0.disable_ipv6", "1"), ("l-n1", "net.ipv6.conf.flannel.1.disable_ipv6", "1"),
            ("l-n1", "net.ipv6.conf.eth0.disable_ipv6", "1"), ("l-a", "net.ipv6.conf.eth0.disable_ipv6", "1")} <= six
    assert not any(name.endswith(".lo.disable_ipv6") for _, name, _ in six)
