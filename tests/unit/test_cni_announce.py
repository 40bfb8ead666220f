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
from netlab.kernel.fake import FakeKernel

world = test_cni_reattach.world  # the fixture: fake plugins, a conflist lab (pods a, b on n1)


class Sender:
    """Stands in for LiveKernel: which links run, and each gratuitous ARP sent."""

    sent: list[tuple[str, str, IPv4Address]] = []
    stopped: set[tuple[str, str]] = set()
    gone: set[str] = set()

    def running_links(self, netns):
        if netns in self.gone:
            raise NetnsGone(netns, f"/run/netns/{netns}")
        return {"eth0", "vetha", "vethb"} - {dev for ns, dev in self.stopped if ns == netns}

    def announce(self, netns, dev, address):
        if netns in self.gone:
            raise NetnsGone(netns, f"/run/netns/{netns}")
        self.sent.append((netns, dev, address))

    def snapshot(self, netns, sysctls=(), tables=True):  # cni/verify.address_missing: no pod to read here
        raise NetnsGone(netns, f"/run/netns/{netns}")

    def close(self):
        pass


def sender(monkeypatch):
    monkeypatch.setattr(live, "LiveKernel", Sender)
    Sender.sent, Sender.stopped, Sender.gone = [], set(), set()
    return Sender


def test_a_re_attached_pod_is_announced_and_a_new_labs_pods_are_not(world, monkeypatch):
    lab, plugins = world
    sent = sender(monkeypatch).sent
    k = FakeKernel()
    up(lab, k)
    assert sent == []  # every namespace new: no neighbour table holds an entry yet
    plugins.fail |= {("a", "chain", "CHECK")}  # a re-attach: same address, new MAC
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
        "a: 10.244.0.2 on eth0 not announced (gratuitous ARP): the link does not run after 0.02s"]
    assert s.sent == [("b", "eth0", IPv4Address("10.244.0.3"))]
