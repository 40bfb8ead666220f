"""A pod's or node's new address is announced by a gratuitous ARP (lab/announce.py, kernel/garp.py), against the
fake kernel: once its link runs, only the addresses a run gave, never the gateway's; the frame is the kernel's
own arp_notify packet. tests/integration/test_freed_addresses.py checks the neighbour tables and traffic."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Interface

import pytest
from fake_lab import TOPO, make_lab, up

from netlab.kernel import garp
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import announce
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Address

lab = pytest.fixture(make_lab, name="lab")


def edited(tmp_path, text: str):
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    return resolve(load_topology(str(path)))


def test_a_new_lab_has_no_neighbour_to_tell_and_an_unchanged_one_nothing_to_say(lab):
    k = FakeKernel()
    up(lab, k)
    assert k.announced == []  # every namespace new: no table holds an entry
    up(lab, k)
    assert k.announced == []


def test_a_node_and_its_pod_added_later_announce_from_running_links_and_not_the_gateway(lab, tmp_path):
    k = FakeKernel()
    up(lab, k)
    more = TOPO.replace("pods:\n", "  - {name: n3, ip: 192.168.122.8, podCIDR: 10.244.2.0/24}\npods:\n")
    up(edited(tmp_path, more + "  - {name: c, node: n3, ip: 10.244.2.2}\n"), k)
    assert sorted(k.announced) == [("fk-c", "eth0", IPv4Address("10.244.2.2"), True),
                                   ("fk-n3", "eth0", IPv4Address("192.168.122.8"), True)]


def test_a_pod_added_later_is_announced_alone(lab, tmp_path):
    k = FakeKernel()
    up(lab, k)
    k.announced.clear()
    up(edited(tmp_path, TOPO + "  - {name: c, node: n1, ip: 10.244.0.3}\n"), k)
    assert k.announced == [("fk-c", "eth0", IPv4Address("10.244.0.3"), True)]


def test_an_address_a_repair_puts_back_is_announced(lab):
    k = FakeKernel()
    up(lab, k)
    k.announced.clear()
    k.ns["fk-a"].addrs = [a for a in k.ns["fk-a"].addrs if a.dev != "eth0"]  # ip addr flush dev eth0
    up(lab, k)
    assert k.announced == [("fk-a", "eth0", IPv4Address("10.244.0.2"), True)]


def test_a_link_without_carrier_is_not_announced_but_said(lab, monkeypatch):
    monkeypatch.setattr("netlab.lab.carrier.CARRIER_WAIT", 0.02)
    k = FakeKernel()
    up(lab, k)
    k.announced.clear()
    k.ns["fk-a"].addrs = [a for a in k.ns["fk-a"].addrs if a.dev != "eth0"]
    k.no_carrier.add(("fk-a", "eth0"))
    done = up(lab, k)
    assert k.announced == []
    assert any(w.startswith("fk-a: 10.244.0.2 on eth0 not announced (gratuitous ARP)") for w in done.warnings)


def test_a_failed_send_is_a_warning_not_a_failed_up(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)

    def refused(netns, dev, address):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(k, "announce", refused)
    k.ns["fk-a"].addrs = [a for a in k.ns["fk-a"].addrs if a.dev != "eth0"]
    done = up(lab, k)
    assert any("could not announce 10.244.0.2 on eth0" in w for w in done.warnings)


def test_only_added_pod_and_node_addresses_are_announcements(lab):
    def addr(netns: str, dev: str, address: str) -> Address:
        return Address(netns=netns, dev=dev, address=IPv4Interface(address))

    ops = [Op("add", addr("fk-n1", "cni0", "10.244.0.1/24")), Op("del", addr("fk-a", "eth0", "10.244.0.2/24")),
           Op("add", addr("fk-a", "eth0", "10.244.0.2/24"))]
    assert announce.announcements(lab, ops) == [("fk-a", "eth0", IPv4Address("10.244.0.2"))]


def test_the_frame_is_the_kernels_gratuitous_arp_request():
    """Broadcast, ARP request with the sender's IP as the target's and a zero target MAC (net/ipv4/devinet.c
    inetdev_send_gratuitous_arp -> arp_send), as scapy builds it."""
    from scapy.layers.l2 import ARP, Ether

    mac = "56:d1:ed:41:e2:38"
    want = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(op=1, hwsrc=mac, psrc="10.244.0.3",
                                                          hwdst="00:00:00:00:00:00", pdst="10.244.0.3")
    assert garp.frame(bytes.fromhex(mac.replace(":", "")), IPv4Address("10.244.0.3")) == bytes(want)
    with pytest.raises(ValueError):
        garp.frame(b"\x00" * 4, IPv4Address("10.244.0.3"))
