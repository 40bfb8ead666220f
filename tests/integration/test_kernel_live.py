"""netlab.kernel.live against the real kernel, in scratch namespaces (root).

What the LiveKernel reads must be what the kernel's own tools show, and what
it makes must be what they then see. Each test makes its own namespaces
(``kl<random>-...``) and deletes them.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
import uuid
from ipaddress import IPv4Interface

import pytest

from helpers import in_netns, ip_json
from netlab.kernel import netns as nsmod
from netlab.kernel.base import Op
from netlab.kernel.live import LiveKernel
from netlab.plan.resources import Address, Bridge, Veth

pytestmark = pytest.mark.root


@pytest.fixture
def pair():
    tag = f"kl{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-a", f"{tag}-b"]
    k = LiveKernel()
    try:
        for name in names:
            k.create_netns(name, nsmod.make_tag(tag, uuid.uuid4().hex), [("net.ipv4.ip_forward", "1")])
        yield k, names
    finally:
        for name in names:
            if nsmod.exists(name):
                k.delete_netns(name)
        k.close()


def sysctl(netns: str, key: str) -> str:
    return in_netns(netns, "sysctl", "-n", key, check=True).stdout.strip()


def test_interface_sysctls_read_from_the_link_dump_equal_proc(pair):
    k, (a, b) = pair
    k.apply([Op("add", Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                            peer_mac="02:00:00:00:00:0b"))], order=[a, b])
    in_netns(b, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=2", "net.ipv4.conf.eth0.rp_filter=1",
             "net.ipv4.conf.eth0.arp_announce=1", "net.ipv4.conf.eth0.forwarding=0", check=True)
    keys = [f"net.ipv4.conf.eth0.{x}" for x in ("arp_ignore", "rp_filter", "arp_announce", "arp_filter",
                                                "forwarding", "tag")]
    keys += ["net.ipv4.conf.all.arp_ignore", "net.ipv4.ip_forward", "net.ipv4.conf.nosuch.arp_ignore"]
    snap = k.snapshot(b, keys)
    for key in keys[:-1]:
        assert snap.sysctls[key] == sysctl(b, key), key
    assert snap.sysctls["net.ipv4.conf.nosuch.arp_ignore"] is None


def test_running_links_are_those_ip_link_shows_running(pair):
    """A veth set up on one side only has no carrier; both up, both run once the link watch has seen them, as
    ``ip link`` says (operstate UP, flag LOWER_UP; running_links reads IFF_RUNNING) and as lab/carrier.py waits."""
    from dataclasses import replace

    from netlab.lab.carrier import wait_running

    k, (a, b) = pair
    veth = Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                peer_mac="02:00:00:00:00:0b")
    k.apply([Op("add", replace(veth, up=False))], order=[a, b])
    in_netns(b, "ip", "link", "set", "eth0", "up", check=True)  # the far end alone: no carrier on either
    assert "va" not in k.running_links(a) and "eth0" not in k.running_links(b) and "lo" in k.running_links(a)
    k.apply([Op("set", veth, old=replace(veth, up=False))], order=[a])
    assert wait_running(k, [(a, "va"), (b, "eth0")], timeout=5.0) == []
    for ns, name in ((a, "va"), (b, "eth0")):
        (shown,) = ip_json("link", "show", name, netns=ns)
        assert shown["operstate"] == "UP" and "LOWER_UP" in shown["flags"]
        assert name in k.running_links(ns)
    # The peer down: the carrier goes at once, the running state when the link watch runs (as it came).
    in_netns(b, "ip", "link", "set", "eth0", "down", check=True)
    deadline = time.monotonic() + 5.0
    while "va" in k.running_links(a) and time.monotonic() < deadline:
        time.sleep(0.01)
    (shown,) = ip_json("link", "show", "va", netns=a)
    assert shown["operstate"] in ("DOWN", "LOWERLAYERDOWN") and "NO-CARRIER" in shown["flags"]
    assert wait_running(k, [(a, "va"), (b, "eth0")], timeout=0.1) == [(a, "va"), (b, "eth0")]  # in vain


def test_the_tag_is_where_ip_link_does_not_show_it(pair):
    k, (a, _) = pair
    tag = k.read_tag(a)
    assert tag is not None and tag.startswith("netlab:")
    (lo,) = ip_json("-d", "link", "show", "lo", netns=a)
    assert "ifalias" not in lo and "netlab" not in subprocess.run(
        ["ip", "-n", a, "-d", "addr"], capture_output=True, text=True, check=True).stdout
    lab_hash, run_hash = nsmod.tag_values(tag)
    assert (int(sysctl(a, "net.ipv4.conf.all.tag")), int(sysctl(a, "net.ipv4.conf.lo.tag"))) == (lab_hash, run_hash)
    subprocess.run(["ip", "netns", "add", f"{a}x"], check=True)
    try:
        assert k.read_tag(f"{a}x") is None  # a namespace netlab did not make has no tag
    finally:
        subprocess.run(["ip", "netns", "del", f"{a}x"], check=True)


def test_tags_read_by_forked_children_are_the_tags(pair, monkeypatch):
    """read_tags (down): with a reader per namespace allowed, the children's answers are read_tag's, and a
    name that is no namespace has none."""
    from netlab.kernel import readmany

    k, (a, b) = pair
    monkeypatch.setattr(readmany, "MIN_SHARE", 1)
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: 3)
    started = []
    real = readmany.start_child
    monkeypatch.setattr(readmany, "start_child", lambda *args, **kw: started.append(1) or real(*args, **kw))
    got = k.read_tags([a, b, f"{a}-nosuch"])
    assert got == {a: k.read_tag(a), b: k.read_tag(b), f"{a}-nosuch": None} and got[a] and started == [1, 1]


def test_delete_veths_takes_every_veth_and_its_peer_at_once(pair):
    k, (a, b) = pair
    ops = [Op("add", Bridge(netns=a, name="br0", mtu=1500, mac="02:00:00:00:01:00"))]
    ops += [Op("add", Veth(netns=a, name=f"v{i}", mtu=1500, mac=f"02:00:00:00:02:0{i}", peer_netns=b,
                           peer_name=f"e{i}", peer_mac=f"02:00:00:00:03:0{i}", master="br0")) for i in range(4)]
    ops.append(Op("add", Address(netns=a, dev="br0", address=IPv4Interface("10.9.0.1/24"))))
    k.apply(ops, order=[a, b])
    assert len([x for x in ip_json("link", netns=b) if x["ifname"].startswith("e")]) == 4
    assert all(x.get("group", "default") == "default" for x in ip_json("-d", "link", netns=a))
    k.delete_veths(a)
    assert [x["ifname"] for x in ip_json("link", netns=a)] == ["lo", "br0"]
    assert [x["ifname"] for x in ip_json("link", netns=b)] == ["lo"]


def test_a_program_runs_in_the_namespace_and_the_thread_comes_back(pair):
    """run_in_netns: the thread enters, the child is born there, the thread returns (also when the program
    fails, or the namespace does not exist)."""
    import os

    _, (a, _b) = pair
    home = os.readlink("/proc/thread-self/ns/net")
    inside = f"net:[{os.stat(nsmod.netns_path(a)).st_ino}]"
    assert inside != home
    out = nsmod.run_in_netns(a, ["/usr/bin/readlink", "/proc/self/ns/net"]).stdout.decode().strip()
    assert out == inside
    with pytest.raises(subprocess.CalledProcessError):
        nsmod.run_in_netns(a, ["/usr/bin/false"])
    with pytest.raises(FileNotFoundError):
        nsmod.run_in_netns(f"{a}-nosuch", ["/usr/bin/true"])
    assert os.readlink("/proc/thread-self/ns/net") == home


def test_namespaces_read_by_a_forked_child_equal_one_read_here(pair, monkeypatch):
    """snapshot_many: with a reader per namespace allowed, and this process busy until a forked child has
    taken every namespace, each snapshot (links, addresses, routes, neighbours, sysctls, iptables tables)
    equals the one read here; the digest ran in the child, and the links' indexes are known here."""
    from netlab.kernel import readmany

    k, (a, b) = pair
    k.apply([Op("add", Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                            peer_mac="02:00:00:00:00:0b")),
             Op("add", Address(netns=b, dev="eth0", address=IPv4Interface("10.9.0.2/24")))], order=[a, b])
    asks = {a: (["net.ipv4.ip_forward"], True), b: (["net.ipv4.conf.eth0.rp_filter"], True)}
    here = LiveKernel().snapshot_many(asks)
    dealers = []

    class Dealer(readmany.Dealer):
        def __init__(self, *args):
            super().__init__(*args)
            dealers.append(self)

    def busy() -> None:  # until the child has taken both namespaces (10 s at most)
        deadline = time.monotonic() + 10
        while dealers[0].left() and time.monotonic() < deadline:
            time.sleep(0.005)

    monkeypatch.setattr(readmany, "MIN_SHARE", 1)
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(readmany, "Dealer", Dealer)
    split = LiveKernel()
    shared = split.snapshot_many(asks, busy, lambda ns, snap: (os.getpid(), snap))
    assert list(shared) == [a, b] and {pid for pid, _ in shared.values()} - {os.getpid()}
    assert len({pid for pid, _ in shared.values()}) == 1  # both read by the child
    for ns in (a, b):
        for field in ("links", "addrs", "routes", "neighs", "sysctls", "tables", "nft_tables", "rules"):
            assert getattr(shared[ns][1], field) == getattr(here[ns], field), (ns, field)
    assert "10.9.0.2" in repr(shared[b][1].addrs) and shared[b][1].links["eth0"].kind == "veth"  # not empty reads
    assert split.index(b, "eth0") == here[b].links["eth0"].index  # known here, though the child read it
    split.close()


def test_namespaces_read_ahead_by_a_forked_child_equal_one_read_here_as_asked(pair, monkeypatch):
    """read_ahead (status's CLI): a child reads both namespaces with one list of sysctl files before
    anything is asked; snapshot_many then takes them as asked (an interface's sysctl from its link), and
    reads again here a namespace asked a file the child did not read."""
    from netlab.kernel import readmany

    k, (a, b) = pair
    k.apply([Op("add", Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                            peer_mac="02:00:00:00:00:0b"))], order=[a, b])
    in_netns(b, "sysctl", "-qw", "net.ipv4.conf.default.arp_ignore=2", check=True)
    asks = {a: (["net.ipv4.ip_forward", "net.ipv4.conf.va.rp_filter"], True),
            b: (["net.ipv4.ip_forward", "net.ipv4.conf.default.arp_ignore"], True)}
    here = LiveKernel().snapshot_many(asks)
    assert here[b].sysctls["net.ipv4.conf.default.arp_ignore"] == "2"
    monkeypatch.setattr(readmany, "MIN_SHARE", 1)
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: 2)
    ahead = LiveKernel()
    ahead.read_ahead({a: ["net.ipv4.ip_forward"], b: ["net.ipv4.ip_forward"]})
    dealer = ahead._ahead.readers.dealer

    def busy() -> None:  # until the child has taken both namespaces (10 s at most)
        deadline = time.monotonic() + 10
        while dealer.left() and time.monotonic() < deadline:
            time.sleep(0.005)

    got = ahead.snapshot_many(asks, busy, lambda ns, snap: (os.getpid(), snap))
    assert list(got) == [a, b] and all(pid == os.getpid() for pid, _ in got.values())  # digested here
    for ns in (a, b):
        for field in ("links", "addrs", "routes", "neighs", "sysctls", "tables", "nft_tables", "rules"):
            assert getattr(got[ns][1], field) == getattr(here[ns], field), (ns, field)
    assert a not in ahead._conns and b in ahead._conns  # a: the child's read; b: read again here (no socket for a)
    assert ahead.index(b, "eth0") == here[b].links["eth0"].index and ahead._ahead is None
    ahead.close()


def test_a_failed_batch_leaves_no_wrong_index_behind(pair):
    """A veth whose peer is named like a link the other namespace has (a pod's eth0) fails with EEXIST; the
    batch had given the peer's name its own index already, so the next op on the real eth0 (a rollback putting
    its address back) failed "no such device", and the pod kept no address."""
    from netlab.kernel.base import KernelError

    k, (a, b) = pair
    k.apply([Op("add", Veth(netns=a, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=b, peer_name="eth0",
                            peer_mac="02:00:00:00:00:0b"))], order=[a, b])
    k.index(b, "eth0")  # the index cache holds b's links now
    with pytest.raises(KernelError, match="exists"):
        k.apply([Op("add", Veth(netns=a, name="vz", mtu=1500, mac="02:00:00:00:00:1a", peer_netns=b,
                                peer_name="eth0", peer_mac="02:00:00:00:00:1b"))], order=[a, b])
    k.apply([Op("add", Address(netns=b, dev="eth0", address=IPv4Interface("10.9.0.2/24")))], order=[b])
    assert [x["local"] for x in ip_json("-4", "addr", "show", "eth0", netns=b)[0]["addr_info"]] == ["10.9.0.2"]


SIOCGSKNS = 0x894C  # linux/sockios.h: a descriptor of a socket's network namespace


def test_a_new_namespace_keeps_the_socket_it_was_set_up_with(pair, monkeypatch):
    """create_netns leaves the kernel the netlink socket it set the namespace up with: the links' messages that
    follow go there, with no switch into the namespace and back to open another."""
    k, names = pair

    def entered(name):
        raise AssertionError(f"entered {name}")

    monkeypatch.setattr("netlab.kernel.live.nsmod.entered", entered)
    for name in names:
        ns = fcntl.ioctl(k.conn(name).sock.fileno(), SIOCGSKNS)
        try:
            assert os.fstat(ns).st_ino == os.stat(nsmod.netns_path(name)).st_ino
        finally:
            os.close(ns)
