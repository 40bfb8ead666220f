"""A pod whose CNI plugins gave its eth0 an on-link prefix wider than its node's podCIDR (a conflist's host-local
range 10.244.0.0/16 on every node, its addresses inside the node's /24): the pod takes the pods of other nodes in
that prefix for neighbours on eth0 and ARPs for them, and nobody answers (its node's bridge carries only its own
pods), so traffic between nodes fails. probe and trace showed it; status said "all as planned". Now status says it,
one line per pod, as a warning: the kernel is as the plugins made it, and no `up` changes that (fake kernel and
plugins here; Debian's bridge and host-local: tests/integration/test_cni_wide_prefix.py)."""

from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from cni_fakes import VethPlugins, cni_topo, kernel_lab_world, up
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.plan.resources import Address, Veth
from netlab.realize import state as state_mod

TOPO = cni_topo("fkwp", nodes=3) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n2, ip: 10.244.1.2}
"""


class Plugins(VethPlugins):
    """A veth per pod, its eth0 given the address CNI_ARGS asks for with the prefix length ``plen``; the result
    names the node's bridge cni0 beside the veth (the bridge plugin's), or the veth alone (``bridge`` False: ptp's,
    whose pods route the prefix via their gateway)."""

    plen = 24
    bridge = True

    def add(self, pod, ip, env, *, node_netns, netns, host):
        self.kernel.apply([Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1],
                                          peer_netns=netns, peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1])),
                           Op("add", Address(netns=netns, dev="eth0",
                                             address=IPv4Interface(f"{ip}/{type(self).plen}")))])
        ifaces = [{"name": "cni0"}] * type(self).bridge + [{"name": host}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}]
        return {"cniVersion": "1.0.0", "interfaces": ifaces,
                "ips": [{"address": f"{ip}/{type(self).plen}", "interface": len(ifaces) - 1}]}


world = kernel_lab_world(TOPO, Plugins)


def wide(pod: str, ip: str, node: str, cidr: str, others: str, flannel: str) -> str:
    return (f"pod {pod}'s eth0 {ip}/16 (from its CNI plugins) is on-link wider than node {node}'s podCIDR {cidr}: "
            f"it ARPs on eth0 for the pods of {others} in 10.244.0.0/16 and nobody answers (its node's bridge "
            f"carries only its own pods), so it reaches no pod of theirs, nor they it, nor those nodes themselves (a "
            f"node's own packets to a pod on another node, to a Service whose endpoint is there too, leave from its "
            f"flannel.1 address, {flannel}, inside the prefix) (the plugins' IPAM must give the node's podCIDR's "
            f"prefix, /24)")


WIDE = [wide("a", "10.244.0.2", "n1", "10.244.0.0/24", "nodes n2 (10.244.1.0/24), n3 (10.244.2.0/24)",
             "10.244.1.0 on n2, 10.244.2.0 on n3"),
        wide("b", "10.244.1.2", "n2", "10.244.1.0/24", "nodes n1 (10.244.0.0/24), n3 (10.244.2.0/24)",
             "10.244.0.0 on n1, 10.244.2.0 on n3")]


def test_a_pod_prefix_wider_than_its_nodes_pod_cidr_is_a_status_warning_not_drift(world, monkeypatch):
    lab, k = world
    monkeypatch.setattr(Plugins, "plen", 16)
    up(lab, k)
    st = state_mod.load_state(lab.name)
    got = lab_status.status(st, k, [ModuleFeature(lifecycle)])
    assert got.drift == [] and got.ok  # as the plugins made it: nothing for up to repair
    assert sorted(got.warnings) == WIDE
    teardown.down(lab.name, k, [])


def test_up_says_a_pod_prefix_wider_than_its_nodes_pod_cidr_from_the_cni_result(world, monkeypatch):
    """up said nothing of it (status alone did): the result's address, 10.244.0.2/16, holds the prefix."""
    lab, k = world
    monkeypatch.setattr(Plugins, "plen", 16)
    got = up(lab, k)
    assert [w for w in got.warnings if "on-link wider" in w] == WIDE
    saved = state_mod.load_state(lab.name).extra["cni"]["pods"]
    assert [saved[p]["attachment"]["prefixlen"] for p in "ab"] == [16, 16]
    teardown.down(lab.name, k, [])


@pytest.mark.parametrize("prefix", [24, 25])
def test_a_pod_prefix_as_narrow_as_its_nodes_pod_cidr_says_nothing(world, monkeypatch, prefix):
    lab, k = world
    monkeypatch.setattr(Plugins, "plen", prefix)
    said = up(lab, k)
    got = lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)])
    assert got.drift == [] and got.warnings == [] and not [w for w in said.warnings if "on-link" in w]
    teardown.down(lab.name, k, [])


def test_a_wide_prefix_beside_no_bridge_is_not_said(world, monkeypatch):
    """ptp's result names the veth alone: the pod routes its /16 via its gateway, the node's end of the veth
    (ptp deletes the connected route), and reaches every node's pods; macvlan's names no veth at all, its eth0
    on the underlay's L2 with the other nodes' pods. up and status said each pod ARPed in vain on eth0."""
    lab, k = world
    monkeypatch.setattr(Plugins, "plen", 16)
    monkeypatch.setattr(Plugins, "bridge", False)
    got = up(lab, k)
    assert [w for w in got.warnings if "on-link wider" in w] == []
    st = lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)])
    assert st.ok and [w for w in st.warnings if "on-link wider" in w] == []
    teardown.down(lab.name, k, [])
