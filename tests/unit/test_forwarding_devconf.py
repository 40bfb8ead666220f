"""A host that forwards (Docker's, a CI VM's: net.ipv4.ip_forward=1) gives every new namespace ip_forward=1 and
the kernel's all.accept_redirects=0 of a forwarding namespace (devinet.c, inet_forward_change). A namespace the
plan makes forward (nodes, the gateway, the load balancer, pods) ends with what the kernel's own ip_forward=1
gives (all.accept_redirects 0, default 1), one that does not (the underlay, the internet's hosts) with 1 and 1,
whatever the host has. Was: accept_redirects counted as a host's change, set back to 1 in every namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_lab import make_lab, status, up

from netlab.kernel.fake import FakeKernel
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.plan.resources import Sysctl
from netlab.plan.sysctls import KERNEL_DEVCONF, devconf_keys, to_restore
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")

KERNEL = {name: value for key, values in KERNEL_DEVCONF.items() for name, value in zip(devconf_keys(key), values)}
# What a new namespace copies from a host that wrote ip_forward=1 and changed nothing else.
FORWARDING_HOST = dict(KERNEL, **{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.accept_redirects": "0"})
# A hardened host (CIS benchmark): no ICMP redirects accepted, all and default, and no forwarding.
HARDENED_HOST = dict(KERNEL, **{"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.accept_redirects": "0",
                                "net.ipv4.conf.default.accept_redirects": "0"})
REDIRECTS = devconf_keys("accept_redirects")
GOLDEN = Path(__file__).parent / "golden" / "services_topology.yaml"  # nodes, pods, gateway, a host


def test_a_forwarding_hosts_accept_redirects_is_the_kernels_and_nothing_is_set_back():
    assert to_restore(FORWARDING_HOST) == ()
    # the same values without forwarding are a host's own change; so is accept_redirects=1 with forwarding
    assert to_restore(dict(FORWARDING_HOST, **{"net.ipv4.ip_forward": "0"})) == ("accept_redirects",)
    assert to_restore(dict(FORWARDING_HOST, **{REDIRECTS[0]: "1"})) == ("accept_redirects",)
    assert to_restore(HARDENED_HOST) == ("accept_redirects",)


def test_set_back_accept_redirects_is_the_kernels_of_each_namespaces_forwarding():
    lab = resolve(load_topology(str(GOLDEN))).with_restored(("accept_redirects",))
    sysctls = [r for r in build_plan(lab).resources if isinstance(r, Sysctl)]
    forward = {r.netns: r.value for r in sysctls if r.name == "net.ipv4.ip_forward"}
    got = {ns: tuple(r.value for name in REDIRECTS for r in sysctls if (r.netns, r.name) == (ns, name))
           for ns in forward}
    routers = {"golden-minikube", "golden-minikube-m02", "golden-gateway",
               *(pod.netns for pod in lab.pods)}
    assert {ns for ns, value in forward.items() if value == "1"} == routers
    assert set(forward) == set(build_plan(lab).netns)  # every namespace says whether it forwards
    assert got == {ns: ("0", "1") if ns in routers else ("1", "1") for ns in forward}


def test_up_on_a_forwarding_host_gives_routers_the_kernels_forwarding_values(lab):
    k = FakeKernel(host_devconf=FORWARDING_HOST)
    up(lab, k)
    assert "restored_devconf" not in state_mod.load_state(lab.name).extra
    routers = {"fk-n1", "fk-n2", *(pod.netns for pod in lab.pods)}
    for name, ns in k.ns.items():
        want = ("0", "1") if name in routers else ("1", "1")  # the underlay wrote ip_forward=0: the kernel's 1
        assert tuple(ns.sysctls[key] for key in REDIRECTS) == want, name
    assert status(lab, k).ok


@pytest.mark.parametrize("host", [FORWARDING_HOST, HARDENED_HOST], ids=["forwarding", "hardened"])
def test_ip_forward_off_on_a_node_is_one_drift_whatever_the_host(lab, host):
    k = FakeKernel(host_devconf=host)
    up(lab, k)
    assert k.ns["fk-n1"].sysctls[REDIRECTS[0]] == "0" and status(lab, k).ok
    k.ns["fk-n1"].write_sysctl("net.ipv4.ip_forward", "0")  # the break: the kernel sets accept_redirects 1
    assert k.ns["fk-n1"].sysctls[REDIRECTS[0]] == "1"
    assert status(lab, k).drift == ["different: sysctl net.ipv4.ip_forward in fk-n1 (is 0, want 1)"]
    up(lab, k)
    assert status(lab, k).ok and k.ns["fk-n1"].sysctls[REDIRECTS[0]] == "0"
