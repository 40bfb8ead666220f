"""Status's CLI reads a big lab's namespaces ahead (lab/readahead.py, kernel/readmany.Ahead), without root:
the sysctls it reads cover what status asks, a snapshot read ahead becomes one read as asked, and the
parts the forked readers took come back through the parent's digest."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from netlab.kernel import readmany, readns
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import LinkMsg
from netlab.lab import readahead
from netlab.lab.status import asked_sysctls
from netlab.model.lab import resolve
from netlab.plan.sysctls import interface_setting, ipv6_interface
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.realize.expect import expected
from test_services_plan import TOPO, lab_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))


def labs():
    for path in EXAMPLES:
        yield path.name, resolve(load_topology(str(path)))
    data = yaml.safe_load(TOPO.read_text())  # Services, internet hosts, a load balancer
    yield "services+internet", lab_of(data)
    data["cluster"] = {**data.get("cluster", {}), "kubeProxyMode": "nftables"}
    yield "services+internet, nftables", lab_of(data)


@pytest.mark.parametrize("name, lab", list(labs()), ids=[name for name, _ in labs()])
def test_every_sysctl_file_status_asks_is_read_ahead(name, lab):
    """Each namespace is read ahead with every file status asks of it, once, and a pod without the nodes'
    (kube-proxy's) files."""
    want = expected(build_plan(lab))
    saved = {"netns": {ns: "created" for ns in want},
             "topology": lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)}
    ahead = readahead.ahead_sysctls(lab.name, saved)
    assert set(ahead) == set(want)
    for ns in want:
        files = {key for key in asked_sysctls(want, ns)  # an interface's (its IPv6 switch too): its link
                 if interface_setting(key) is None and ipv6_interface(key) is None}
        assert files and files <= set(ahead[ns]), (ns, files - set(ahead[ns]))
        assert len(set(ahead[ns])) == len(ahead[ns])  # each file read once
    for pod in lab.pods:
        assert not set(readahead.NODE_SYSCTLS) & set(ahead[pod.netns])
    assert all(set(readahead.NODE_SYSCTLS) <= set(ahead[node.netns]) for node in lab.nodes)


def link(name: str, index: int, **conf: str) -> LinkMsg:
    return LinkMsg(index=index, name=name, kind=None, up=True, mtu=1500, mac="", master=None, peer=None,
                   peer_netnsid=None, alias=None, group=0, txqlen=1000, inet_conf=dict(conf))


def snapshot() -> Snapshot:
    snap = Snapshot(netns="x-p1", links={"lo": link("lo", 1, tag="7"), "eth0": link("eth0", 2, rp_filter="0")})
    snap.sysctls = {"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.tag": "5", "net.ipv4.conf.lo.tag": "7"}
    snap.tables = {"": {"nat": "*nat\n"}}
    snap.nft_tables = [("ip", "nat")]
    return snap


def test_an_interfaces_ipv6_switch_is_read_from_its_link_where_it_has_ipv6():
    """QA q62k 2: net.ipv6.conf.<dev>.disable_ipv6 comes with the link dump (IFLA_INET6_CONF), no file read; a
    link without IPv6 there (under 1280 bytes, a kernel without it) is read as a file, a missing link is None."""
    snap = snapshot()
    snap.links["eth0"] = replace(snap.links["eth0"], inet6_conf={"disable_ipv6": "0"})
    snap.links["flannel.1"] = link("flannel.1", 3)
    snap.sysctls["net.ipv6.conf.flannel.1.disable_ipv6"] = "1"  # read ahead as a file
    asked = ["net.ipv6.conf.eth0.disable_ipv6", "net.ipv6.conf.flannel.1.disable_ipv6", "net.ipv6.conf.eth1.disable_ipv6"]
    assert readns.as_asked(snap, asked, True)
    assert snap.sysctls == {asked[0]: "0", asked[1]: "1", asked[2]: None}
    snap = snapshot()
    snap.links["flannel.1"] = link("flannel.1", 3)
    assert not readns.as_asked(snap, asked[1:2], True)  # no IPv6 on the link, its file not read ahead


def test_a_snapshot_read_ahead_becomes_one_read_as_asked():
    snap = snapshot()
    asked = ["net.ipv4.conf.eth0.rp_filter", "net.ipv4.conf.all.tag", "net.ipv4.conf.eth1.arp_ignore",
             "net.ipv4.conf.lo.tag"]
    assert readns.as_asked(snap, asked, True)
    assert list(snap.sysctls.items()) == [("net.ipv4.conf.eth0.rp_filter", "0"), ("net.ipv4.conf.all.tag", "5"),
                                          ("net.ipv4.conf.eth1.arp_ignore", None), ("net.ipv4.conf.lo.tag", "7")]
    assert snap.tables and snap.nft_tables  # asked with the tables: kept

    snap = snapshot()
    assert readns.as_asked(snap, ["net.ipv4.ip_forward"], False)
    assert snap.sysctls == {"net.ipv4.ip_forward": "0"} and not snap.tables and not snap.nft_tables

    snap = snapshot()
    assert not readns.as_asked(snap, ["net.ipv4.conf.default.rp_filter"], True)  # a file not read ahead


@pytest.fixture
def two_readers(monkeypatch):
    monkeypatch.setattr(readmany, "MIN_SHARE", 1)
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: 2)


def read(where: str):
    """A reader that reads each namespace it is dealt as a snapshot with a file sysctl, and says who read it."""
    def reader(parts):
        out = {}
        for part in parts:
            for ns in part:
                snap = Snapshot(netns=ns, sysctls={"net.ipv4.ip_forward": "1"})
                snap.links = {"lo": link("lo", 1)}
                out[ns] = ((where, os.getpid(), snap), {"lo": 1})
        return out

    def there(parts):  # a child's entries are raw snapshots
        return {ns: (entry[2], index) for ns, (entry, index) in reader(parts).items()}

    return reader, there


def test_what_the_children_read_ahead_is_digested_here_and_only_what_is_asked(two_readers):
    names = [f"x-{i}" for i in range(40)]
    here, there = read("here")
    ahead = readmany.Ahead(names, there)
    asks = {ns: (["net.ipv4.ip_forward"], True) for ns in names[:30]}
    asks["x-5"] = (["net.ipv4.conf.all.rp_filter"], True)  # a file the children did not read
    asks["y-new"] = (["net.ipv4.ip_forward"], True)  # not in the state file: not read ahead
    digested = []

    def loading() -> None:  # this process is busy until the child has taken most parts (10 s at most)
        deadline = time.monotonic() + 10
        while ahead.readers.dealer.left() > 3 and time.monotonic() < deadline:
            time.sleep(0.002)

    got = ahead.finish(asks, here, loading, lambda ns, snap: digested.append(ns) or ("digested", os.getpid(), snap))
    children = {ns for ns, (entry, _) in got.items() if entry[0] == "digested"}
    assert len(children) >= 20 and "x-5" not in children  # read here (as asked), or left to the caller
    assert set(got) <= set(asks) - {"y-new"} and set(got) | {"x-5", "y-new"} == set(asks)
    assert sorted(digested) == sorted(children) and all(got[ns][0][1] == os.getpid() for ns in children)
    assert all(got[ns][1] == {"lo": 1} for ns in got)
    assert ahead.readers.dealer.fd == -1 and not ahead.readers.streams  # reaped, closed


def test_the_readers_stop_when_the_command_fails_before_it_asks(two_readers):
    here, there = read("here")
    ahead = readmany.Ahead([f"x-{i}" for i in range(40)], there)
    pids = [stream.child.pid for stream in ahead.readers.streams]
    assert pids
    ahead.stop()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A state directory holding lab "big" (its state.json is each test's to write)."""
    from netlab.realize import state_dir

    root = tmp_path / "state"
    (root / "big").mkdir(parents=True, mode=0o700)
    (root / "big" / "netlab-lab").write_bytes(b"")  # netlab's mark: a lab's folder whatever its state holds
    root.chmod(0o700)
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(root))
    return root


def test_the_namespaces_come_from_the_state_file_and_only_safe_names(root, monkeypatch):
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    (root / "big" / "state.json").write_text(json.dumps(
        {"netns": {"big-n1": "created", "big-p1": "created", "../etc": "created", "Big": "created"}}))
    every = readahead.SYSCTLS
    assert readahead.saved_netns("big") == {"big-n1": every, "big-p1": every}
    assert readahead.saved_netns(None) == {"big-n1": every, "big-p1": every}  # the only lab
    assert readahead.saved_netns("../etc") == {} and readahead.saved_netns("nosuch") == {}
    (root / "big" / "state.json").write_text("{not json")
    assert readahead.saved_netns("big") == {}
    (root / "two").mkdir(mode=0o700)
    (root / "two" / "netlab-lab").write_bytes(b"")
    (root / "two" / "state.json").write_text("{}")
    assert readahead.saved_netns(None) == {}  # two labs: the command asks which
    (root / "two" / "state.json").write_text(json.dumps({"netns": {"two-p1": "created"}}))
    monkeypatch.setenv("NETLAB_LAB", "two")
    assert readahead.saved_netns(None) == {"two-p1": every}  # $NETLAB_LAB names the lab, as for every command


def test_the_nodes_of_the_saved_topology_are_read_ahead_with_kube_proxys_sysctls(root):
    topology = {"nodes": [{"name": "n1"}, {"name": ["n2"]}, "n3", {"name": "../x"}], "pods": [{"name": "p1"}]}
    (root / "big" / "state.json").write_text(json.dumps(
        {"netns": {"big-n1": "created", "big-p1": "created", "big-n3": "created"}, "topology": topology}))
    node = readahead.SYSCTLS + readahead.NODE_SYSCTLS
    assert readahead.saved_netns("big") == {"big-n1": node, "big-p1": readahead.SYSCTLS,
                                            "big-n3": readahead.SYSCTLS}  # n3: no node's entry names it
    for topology in (None, [], {"nodes": {"n1": {}}}):
        assert readahead.ahead_sysctls("big", {"netns": {"big-n1": "created"}, "topology": topology}) == {
            "big-n1": readahead.SYSCTLS}


def test_the_settings_a_lab_sets_back_are_read_ahead_and_only_known_ones(root):
    (root / "big" / "state.json").write_text(json.dumps(
        {"netns": {"big-n1": "created"}, "extra": {"restored_devconf": ["route_localnet", "../../x", "proxy_arp"]}}))
    assert readahead.saved_netns("big") == {"big-n1": readahead.SYSCTLS + (
        "net.ipv4.conf.all.proxy_arp", "net.ipv4.conf.default.proxy_arp",
        "net.ipv4.conf.default.route_localnet")}  # all's is read of every namespace: a pod copies its node's
    (root / "big" / "state.json").write_text(json.dumps({"netns": {"big-n1": "created"}, "extra": {
        "restored_devconf": "route_localnet"}, "topology": {"nodes": [{"name": "n1"}]}}))
    assert readahead.saved_netns("big") == {"big-n1": readahead.SYSCTLS + readahead.NODE_SYSCTLS}  # not a list


def test_a_namespace_a_child_cannot_read_is_left_to_the_caller_and_a_child_that_dies_is_a_kernel_error(
        two_readers):
    from netlab.kernel.base import KernelError

    here, there = read("here")

    def flaky(parts):
        (part,) = list(parts)
        if part == ["x-3"]:
            raise FileNotFoundError(2, "no such namespace", "/run/netns/x-3")
        return there(iter([part]))

    names = [f"x-{i}" for i in range(40)]
    ahead = readmany.Ahead(names, flaky)

    def loading() -> None:  # until the child has taken every part (10 s at most)
        deadline = time.monotonic() + 10
        while ahead.readers.dealer.left() and time.monotonic() < deadline:
            time.sleep(0.002)

    got = ahead.finish({ns: (["net.ipv4.ip_forward"], True) for ns in names}, lambda parts: {}, loading, None)
    assert sorted(got) == sorted(set(names) - {"x-3"})  # all from the child, but the one it could not read

    ahead = readmany.Ahead(names, lambda parts: os._exit(3))
    pids = [stream.child.pid for stream in ahead.readers.streams]
    parts = -(-len(names) // ahead.readers.dealer.size)  # all of them, before any child took one

    def until_taken() -> None:  # until the child has taken a part, and died of it (10 s at most)
        deadline = time.monotonic() + 10
        while ahead.readers.dealer.left() == parts and time.monotonic() < deadline:
            time.sleep(0.002)

    with pytest.raises(KernelError, match="reading namespaces:.*exit code 3"):
        ahead.finish({ns: (["net.ipv4.ip_forward"], True) for ns in names}, lambda parts: {}, until_taken, None)
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
