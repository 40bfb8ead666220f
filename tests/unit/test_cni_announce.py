"""A pod ``up`` ADDs through a user's CNI plugins to a running lab is announced; one of a lab made now is not
(QA q38 #5; cni/announce.py says why). The real plugin and the node's neighbour table:
tests/integration/test_cni_reattach_announced.py."""

from __future__ import annotations

from ipaddress import IPv4Address

import test_cni_reattach
from test_cni_reattach import up

from netlab.cni import announce as cni_announce
from netlab.errors import NetnsGone
from netlab.kernel import live
from netlab.kernel.base import Snapshot
from netlab.kernel.fake import FakeKernel

world = test_cni_reattach.world  # the fixture: fake plugins, a conflist lab (pods a, b on n1)


class Sender:
    """Stands in for LiveKernel: which links run, and each gratuitous ARP sent."""

    sent: list[tuple[str, str, IPv4Address]] = []
    stopped: set[tuple[str, str]] = set()
    gone: set[str] = set()
    read: set[str] = set()

    def running_links(self, netns):
        if netns in self.gone:
            raise NetnsGone(netns, f"/run/netns/{netns}")
        return {"eth0", "vetha", "vethb"} - {dev for ns, dev in self.stopped if ns == netns}

    def announce(self, netns, dev, address):
        if netns in self.gone:
            raise NetnsGone(netns, f"/run/netns/{netns}")
        self.sent.append((netns, dev, address))

    def snapshot(self, netns, sysctls=(), tables=True):  # cni/verify.address_missing: no pod to read here
        if netns in self.read:  # announce: which links a namespace has
            return Snapshot(netns, links=dict.fromkeys(["eth0", "vetha", "vethb"]))
        raise NetnsGone(netns, f"/run/netns/{netns}")

    def close(self):
        pass


def sender(monkeypatch):
    monkeypatch.setattr(live, "LiveKernel", Sender)
    Sender.sent, Sender.stopped, Sender.gone, Sender.read = [], set(), set(), set()
    return Sender


def test_a_re_attached_pod_is_announced_and_a_new_labs_pods_are_not(world, monkeypatch):
    lab, plugins = world
    sent = sender(monkeypatch).sent
    k = FakeKernel()
    up(lab, k)
    assert sent == []  # every namespace new: no neighbour table holds an entry yet
    plugins.broken.add("a")  # a re-attach: same address, new MAC
    result = up(lab, k)
    assert any(f.startswith("re-attached pod a ") for f in result.fixed)
    assert sent == [("fkqc-a", "eth0", IPv4Address("10.244.0.2"))]


def test_a_link_that_does_not_run_is_said_and_a_gone_pod_is_not(monkeypatch):
    s = sender(monkeypatch)
    monkeypatch.setattr(cni_announce, "WAIT", 0.02)
    s.stopped = {("n1", "vetha")}
    s.gone = {"c"}
    ip = IPv4Address("10.244.0.2")
    assert cni_announce.announce([("a", "eth0", ip, "n1", "vetha"), ("b", "eth0", IPv4Address("10.244.0.3"), "n1",
                                  "vethb"), ("c", "eth0", IPv4Address("10.244.0.4"), "n1", None)]) == [
        "a: 10.244.0.2 on eth0 not announced (gratuitous ARP): vetha in n1, which the CNI result names, does not run "
        "after 0.02s"]
    assert s.sent == [("b", "eth0", IPv4Address("10.244.0.3"))]
    s.sent, s.stopped = [], {("a", "eth0")}
    assert cni_announce.announce([("a", "eth0", ip, "n1", "vetha")]) == [
        "a: 10.244.0.2 on eth0 not announced (gratuitous ARP): eth0 in a does not run after 0.02s"]


def test_a_host_interface_that_does_not_exist_is_named_and_not_waited_for(monkeypatch):
    """QA q42 4: a CNI result naming a host interface the node does not have: the warning said "10.244.0.2 on eth0
    not announced: the link does not run after 3s", eth0 running, after waiting the 3 s for a link that never
    comes. Now it names the missing one at once; the pod's own eth0, also missing, is named first."""
    s = sender(monkeypatch)
    s.read = {"a", "n1"}
    asked = []
    running = s.running_links
    monkeypatch.setattr(s, "running_links", lambda self, ns: asked.append(ns) or running(self, ns))
    ip = IPv4Address("10.244.0.2")
    assert cni_announce.announce([("a", "eth0", ip, "n1", "nosuch0")]) == [
        "a: 10.244.0.2 on eth0 not announced (gratuitous ARP): nosuch0 in n1, which the CNI result names, does not "
        "exist"]
    assert cni_announce.announce([("a", "eth9", ip, "n1", "nosuch0")]) == [
        "a: 10.244.0.2 on eth9 not announced (gratuitous ARP): eth9 in a does not exist"]
    assert s.sent == [] and asked == ["a", "n1", "a", "a", "n1"]  # n1 asked once: nosuch0 not polled for WAIT
