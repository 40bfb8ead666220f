"""Kernel-visible names: generated, length-checked, safe alphabet, deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab.model import naming
from netlab.model.lab import resolve
from netlab.model.load import load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_netns_name():
    assert naming.netns_name("demo", "fedora-1") == "demo-fedora-1"
    assert naming.netns_name("a" * 24, "b" * 38) == "a" * 24 + "-" + "b" * 38


@pytest.mark.parametrize("lab,name", [
    ("demo", "../etc"), ("demo", "a/b"), ("demo", ".."), ("demo", "a b"), ("demo", "a\nb"), ("demo", "A"),
    ("demo", "x%"), ("demo", "café"), ("demo", ""), ("demo", "x-"), ("demo", "x" * 59), ("", "x"), ("demo", "a\0b"),
    ("demo", "x\n"),
])
def test_unsafe_netns_names_are_refused(lab, name):
    with pytest.raises(ValueError, match="unsafe namespace name"):
        naming.netns_name(lab, name)


def test_veth_names():
    name = naming.veth_name("demo", "pod/fedora-1")
    assert name == naming.veth_name("demo", "pod/fedora-1")
    assert len(name) == 12 and name.startswith("veth") and int(name[4:], 16) >= 0
    assert name != naming.veth_name("demo", "pod/fedora-2")
    assert name != naming.veth_name("demo2", "pod/fedora-1")
    assert naming.veth_name("demo", "pod/x") != naming.veth_name("demo", "node/x")


def test_vxlan_name_follows_flannel_and_fits():
    assert naming.vxlan_name(1) == "flannel.1"
    assert naming.vxlan_name(9_999_999) == "flannel.9999999"
    with pytest.raises(ValueError):
        naming.vxlan_name(10_000_000)


@pytest.mark.parametrize("name", ["", "x" * 16, "a/b", "a b", "a:b", ".", "..", "-x", "é", "eth0\n"])
def test_unsafe_interface_names_are_refused(name):
    with pytest.raises(ValueError, match="unsafe interface name"):
        naming.check_ifname(name)


@pytest.mark.parametrize("name", ["eth0", "cni0", "br0", "flannel.1", "x" * 15])
def test_safe_interface_names(name):
    assert naming.check_ifname(name) == name


def test_chain_names():
    assert naming.check_chain("KUBE-SVC-ABCDEF0123456789") == "KUBE-SVC-ABCDEF0123456789"
    assert naming.check_chain("CNI-DN-3e9a3d0f9583cdc0e7133") == "CNI-DN-3e9a3d0f9583cdc0e7133"  # portmap's hex
    for bad in ["", "K" * 29, "KUBE SVC", "KUBE\nSVC", "KUBE\n", "-KUBE", "KUBE:X", "KUBE-\u00c9"]:
        with pytest.raises(ValueError, match="unsafe iptables chain name"):
            naming.check_chain(bad)


def test_hashes_and_macs_are_stable():
    assert naming.short_hash("a", "b") == naming.short_hash("a", "b")
    assert naming.short_hash("a", "b") != naming.short_hash("ab")
    assert len(naming.short_hash("a", length=16)) == 16
    mac = naming.mac_from_hash("demo", "eth0", "minikube")
    assert mac == naming.mac_from_hash("demo", "eth0", "minikube")
    assert mac != naming.mac_from_hash("demo", "eth0", "minikube-m02")
    octets = mac.split(":")
    assert len(octets) == 6 and all(len(o) == 2 and int(o, 16) >= 0 for o in octets)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_macs_are_locally_administered_unicast(parts):
    """The kernel's eth_random_addr form: multicast bit clear, locally administered bit set."""
    first = int(naming.mac_from_hash(*parts).split(":")[0], 16)
    assert first & 0x01 == 0 and first & 0x02 == 0x02


def test_macs_spread_over_the_first_octet():
    """Not a fixed 02: prefix: the first octet varies like a random address's."""
    firsts = {naming.mac_from_hash("demo", "pod-eth0", f"p{i}").split(":")[0] for i in range(64)}
    assert len(firsts) > 16


DNS_LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(lab=DNS_LABEL, name=st.text(max_size=40))
def test_netns_names_are_either_safe_or_refused(lab, name):
    try:
        out = naming.netns_name(lab, name)
    except ValueError:
        return
    assert "/" not in out and ".." not in out and out.isascii() and len(out) <= naming.NETNS_MAX
    assert not any(ch.isspace() for ch in out)


@settings(max_examples=100, deadline=None)
@given(lab=DNS_LABEL, owner=st.text(max_size=80))
def test_veth_names_are_always_safe(lab, owner):
    name = naming.veth_name(lab, owner)
    assert len(name.encode()) <= naming.IFNAMSIZ and name.isascii() and name.isalnum()


@pytest.mark.parametrize("path", [None] + sorted(str(p) for p in (ROOT / "topologies").glob("*.yaml")))
def test_every_name_of_a_valid_lab_passes_the_checks(path):
    lab = resolve(load_topology(path))
    for netns in lab.netns_names():
        naming.check_netns(netns)
    for node in lab.nodes:
        naming.check_ifname(node.underlay_veth)
    for pod in lab.pods:
        naming.check_ifname(pod.host_veth)
