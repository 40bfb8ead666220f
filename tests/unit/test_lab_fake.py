"""The lab's lifecycle against the fake kernel (no root): order, idempotence, repair, rollback scope.

The same code paths as `netlab up`/`down`/`status` on the real kernel
(netlab.lab), with netlab.kernel.fake.FakeKernel behind the Kernel protocol.
The root integration tests (tests/integration/test_repair.py and friends)
check the same behaviour on real namespaces. A failed or interrupted up's rollback is
test_lab_fake_rollback.py's.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from fake_lab import make_lab, status, up

from netlab.errors import ApplyFailed
from netlab.kernel.base import Op, TableText
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown, up as lab_up
from netlab.plan.build import ORDER as build_ORDER, build_plan, place
from netlab.plan.resources import Address, Bridge, Fdb, Link, Resource, Route, Rule, Sysctl, Veth
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def test_a_namespace_deleted_while_status_reads_is_missing_and_the_rest_compared(lab):
    """A namespace deleted after status listed the lab and before it read it (the kernel's snapshot_many
    leaves it out): "missing", as one deleted before; the others are compared as usual."""
    k = FakeKernel()
    up(lab, k)
    read = k.snapshot_many

    def deleted_meanwhile(asks, meanwhile=None, digest=None):
        k.delete_netns("fk-b")  # after status asked for it
        return read(asks, meanwhile, digest)

    k.snapshot_many = deleted_meanwhile  # type: ignore[method-assign]
    drift = status(lab, k).drift
    assert "missing: namespace fk-b" in drift
    assert [d for d in drift if "fk-a" in d or "fk-n1" in d] == []  # a and its node are as planned


def test_a_namespace_deleted_while_up_reads_the_lab_fails_the_run_in_one_line(lab):
    """up reads every namespace of a running lab before it repairs; one deleted between the look and the
    read (the kernel's snapshot raises NetnsGone) is an ApplyFailed naming it, not an OSError."""
    k = FakeKernel()
    up(lab, k)
    read = k.snapshot

    def deleted_meanwhile(netns, *args, **kwargs):
        if netns == "fk-b":
            k.delete_netns(netns)
        return read(netns, *args, **kwargs)

    k.snapshot = deleted_meanwhile  # type: ignore[method-assign]
    with pytest.raises(ApplyFailed, match="namespace fk-b vanished while the lab was read"):
        up(lab, k)


def _sent_place(r: Resource) -> tuple:
    """The plan's place (build.place), but a node's cni0 and its ports after its VTEP, as a real Flannel node makes
    them (flanneld before the first pod's ADD: realize/repair.py's KIND_RANK)."""
    later = isinstance(r, Bridge) and r.name == "cni0" or isinstance(r, Veth) and r.master == "cni0"
    kind, sub = place(r)
    return (build_ORDER.index("vxlan"), 1 + int(isinstance(r, Veth)), sub) if later else (kind, 0, sub)


def test_up_of_a_fresh_lab_issues_the_planned_ops_in_kernel_order(lab):
    k = FakeKernel()
    result = up(lab, k)
    plan = build_plan(lab)
    assert sorted(k.ns) == sorted(plan.netns) and result.created_netns == plan.netns
    # every object once; within each namespace (the kernel sends them namespace by namespace, nodes
    # first), in the plan's kernel order (links, addresses, ARP, FDB, routes, a pod's eth0 sysctl; tables, then
    # the node's conntrack sysctls)
    for ns in plan.netns:
        mine = [op.res for op in k.log if op.netns == ns]
        places = [_sent_place(r) for r in mine if isinstance(r, Resource)]
        assert places == sorted(places), ns
        tables = [i for i, r in enumerate(mine) if isinstance(r, TableText)]
        conntrack = [i for i, r in enumerate(mine) if isinstance(r, Sysctl) and r.name.startswith("net.netfilter.")]
        assert not conntrack or (tables and min(conntrack) > max(tables)), ns
    sent = [op.netns for op in k.log]
    assert sent == sorted(sent, key=plan.netns.index)
    made = {op.res.key for op in k.log if op.verb in ("add", "replace")}
    want = {r.key for r in plan.resources if r.kind not in ("netns", "sysctl", "nat")}
    assert made == want
    # the sysctls whose file exists only later (eth0's, nf_conntrack's): written once it does, each once
    written = [op.res.key for op in k.log if op.verb == "write"]
    assert sorted(written) == sorted(r.key for r in plan.of_kind("sysctl")
                                     if r.name.endswith(".arp_notify") or r.name.startswith("net.netfilter."))
    assert status(lab, k).ok


def test_each_sysctl_is_written_once_its_file_exists(lab):
    """A pod's eth0 arp_notify (the CNI bridge plugin's) exists once eth0 does; the nodes' conntrack timeouts
    (kube-proxy's) once nf_conntrack is loaded, which a kernel with it as a module does when the node's rules
    first use it. A fresh up writes each then, and status reads back the plan's values."""
    k = FakeKernel()
    k.conntrack_loaded = False
    up(lab, k)
    assert status(lab, k).ok
    for pod in ("fk-a", "fk-b"):
        assert k.snapshot(pod, ["net.ipv4.conf.eth0.arp_notify"]).sysctls == {"net.ipv4.conf.eth0.arp_notify": "1"}
    for node in ("fk-n1", "fk-n2"):
        got = k.snapshot(node, ["net.netfilter.nf_conntrack_tcp_timeout_established",
                                "net.netfilter.nf_conntrack_tcp_timeout_close_wait", "net.ipv4.conf.all.arp_notify",
                                "net.ipv4.conf.eth0.arp_notify"]).sysctls
        assert got == {"net.netfilter.nf_conntrack_tcp_timeout_established": "86400",
                       "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",
                       "net.ipv4.conf.all.arp_notify": "0", "net.ipv4.conf.eth0.arp_notify": "0"}, node


def test_a_pods_veth_pair_made_again_gets_its_eth0_setting_back(lab):
    """The pair deleted by hand: up makes it again from the node, and the new eth0 (which starts from the
    namespace's default, 0) gets arp_notify=1 once it exists."""
    def breaker(k):
        veth = next(r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth) and r.peer_netns == "fk-a")
        k.apply([Op("del", veth)])
        assert k.snapshot("fk-a", ["net.ipv4.conf.eth0.arp_notify"]).sysctls["net.ipv4.conf.eth0.arp_notify"] is None

    ops = break_and_repair(lab, FakeKernel(), breaker)
    writes = [i for i, op in enumerate(ops) if op.verb == "write"]
    assert [ops[i].res for i in writes] == [Sysctl(netns="fk-a", name="net.ipv4.conf.eth0.arp_notify", value="1")]
    assert writes[0] > [op.res.kind for op in ops].index("veth")  # once the new eth0 is there


def test_a_second_up_issues_no_op(lab):
    k = FakeKernel()
    up(lab, k)
    k.log.clear()
    result = up(lab, k)
    assert k.log == [] and not result.changed


def break_and_repair(lab, k, breaker) -> list[Op]:
    up(lab, k)
    breaker(k)
    assert not status(lab, k).ok
    k.log.clear()
    up(lab, k)
    assert status(lab, k).ok, status(lab, k).drift
    return list(k.log)


def test_a_link_that_is_only_down_is_set_up_and_its_routes_put_back(lab):
    def breaker(k):
        k.apply([Op("set", replace(link(k, "fk-a", "eth0"), up=False), old=link(k, "fk-a", "eth0"))])
    ops = break_and_repair(lab, FakeKernel(), breaker)
    # The pod's two routes (the cluster pod CIDR and the default, both via cni0) went with the link.
    assert [(op.verb, op.res.kind) for op in ops] == [("set", "veth-peer"), ("replace", "route"), ("replace", "route")]


@pytest.mark.parametrize("late", [False, True])
def test_up_waits_for_the_links_it_brought_up_to_run_and_says_which_did_not(lab, monkeypatch, late):
    """A pod's eth0 set up again: up asks the kernel whether it and its other end (the node's bridge port) run;
    one whose carrier does not come within the bound is named in a warning, and up still succeeds."""
    from netlab.lab import carrier

    monkeypatch.setattr(carrier, "CARRIER_WAIT", 0.05)
    k = FakeKernel()
    up(lab, k)
    k.apply([Op("set", replace(link(k, "fk-a", "eth0"), up=False), old=link(k, "fk-a", "eth0"))])
    port = k.ns["fk-a"].links["eth0"].peer
    asked = []
    running = k.running_links
    monkeypatch.setattr(k, "running_links", lambda ns: asked.append(ns) or running(ns))
    if late:
        k.no_carrier.add(port)
    result = up(lab, k)
    assert set(asked) == {"fk-a", port[0]}
    if late:
        assert result.warnings == [f"{port[1]} in {port[0]} is up but not running yet (no carrier after 0.05s): "
                                   "traffic through it is dropped until it is"]
        assert asked.count(port[0]) > 1  # it asked again until the bound
    else:
        assert result.warnings == [] and len(asked) == 2
    # A repair that brings no link up asks nothing.
    asked.clear()
    up(lab, k)
    assert asked == []


def test_the_links_a_repair_brings_up_are_those_made_or_set_up_from_down_with_their_veths_other_end():
    from netlab.plan.resources import Bridge, Veth, VethPeer
    from netlab.realize.repair import links_brought_up

    veth = Veth(netns="n", name="vethA", mtu=1450, mac="aa:00:00:00:00:01", peer_netns="p", peer_name="eth0",
                peer_mac="aa:00:00:00:00:02", master="cni0")
    peer = VethPeer(netns="p", name="eth0", mtu=1450, mac="aa:00:00:00:00:02")
    bridge = Bridge(netns="n", name="cni0", mtu=1450, mac="aa:00:00:00:00:03")
    down = [replace(x, up=False) for x in (veth, peer, bridge)]
    assert links_brought_up([Op("add", veth)], [veth]) == [("n", "vethA"), ("p", "eth0")]
    assert links_brought_up([Op("set", peer, old=down[1])], [veth]) == [("p", "eth0"), ("n", "vethA")]
    assert links_brought_up([Op("set", bridge, old=down[2])], [veth]) == [("n", "cni0")]
    assert links_brought_up([Op("set", bridge, old=down[2]), Op("add", bridge)], []) == []  # no port, no carrier
    # Up already (another MTU, enslaved again), set down, or taken away: no carrier comes.
    assert links_brought_up([Op("set", replace(veth, mtu=1400), old=veth), Op("set", down[0], old=veth),
                             Op("del", veth)], [veth]) == []


def link(k, ns, name) -> Link:
    from netlab.plan.resources import VethPeer

    f = k.ns[ns].links[name]
    return VethPeer(netns=ns, name=name, mtu=f.mtu, mac=f.mac, up=f.up, txqlen=f.txqlen)


@pytest.mark.parametrize("what", ["extra route", "changed fdb", "extra rule", "sysctl", "missing address",
                                  "missing route", "txqlen", "arp_notify", "conntrack"])
def test_each_drift_is_repaired_with_the_minimal_ops(lab, what):
    extra_route = Route(netns="fk-n1", dst=IPv4Network("10.55.0.0/16"), gateway=None, dev="eth0", scope="link")
    wrong_fdb = None

    def breaker(k):
        nonlocal wrong_fdb
        if what == "extra route":
            k.apply([Op("replace", extra_route)])
        elif what == "changed fdb":
            (dev, mac, dst) = k.ns["fk-n1"].fdb[0]
            k.ns["fk-n1"].fdb[0] = (dev, mac, "192.168.122.99")
            wrong_fdb = Fdb(netns="fk-n1", dev=dev, lladdr=mac, dst=IPv4Address("192.168.122.99"))
        elif what == "extra rule":
            k.apply([Op("add", Rule(netns="fk-a", priority=10, table=100))])
        elif what == "sysctl":
            k.ns["fk-n1"].sysctls["net.ipv4.ip_forward"] = "0"
        elif what == "missing address":
            k.apply([Op("del", Address(netns="fk-n1", dev="cni0", address=IPv4Interface("10.244.0.1/24")))])
        elif what == "missing route":
            k.ns["fk-n1"].routes = [r for r in k.ns["fk-n1"].routes if r.dev != "flannel.1"]
        elif what == "txqlen":  # `ip link set flannel.1 txqueuelen 1000`: status names it, up sets it back
            k.ns["fk-n1"].links["flannel.1"].txqlen = 1000
        elif what == "arp_notify":  # the pod's eth0 as netlab made it before the CNI plugins' setting
            k.ns["fk-a"].sysctls["net.ipv4.conf.eth0.arp_notify"] = "0"
        elif what == "conntrack":  # the kernel's 5 days, not kube-proxy's day
            k.ns["fk-n2"].sysctls["net.netfilter.nf_conntrack_tcp_timeout_established"] = "432000"

    ops = break_and_repair(lab, FakeKernel(), breaker)
    verbs = [(op.verb, op.res.kind) for op in ops]
    expect = {"extra route": [("del", "route")], "changed fdb": [("del", "fdb"), ("add", "fdb")],
              "extra rule": [("del", "rule")], "sysctl": [("write", "sysctl")],
              "missing address": [("add", "address")], "missing route": [("replace", "route")],
              "txqlen": [("set", "vxlan")], "arp_notify": [("write", "sysctl")],
              "conntrack": [("write", "sysctl")]}[what]
    assert sorted(verbs) == sorted(expect)
    if what == "extra route":
        # deleted with what the kernel matches on: its table, scope and protocol
        (op,) = ops
        assert (op.res.table, op.res.scope, op.res.proto) == (254, "link", "boot")
    if what == "changed fdb":
        assert Op("del", wrong_fdb, missing_ok=True) in ops
    if what == "txqlen":
        assert ops[0].describe() == "set txqlen of link flannel.1 in fk-n1" and ops[0].res.txqlen == 0


def test_down_deletes_only_tagged_namespaces_listed_by_the_state(lab):
    k = FakeKernel()
    up(lab, k)
    k.create_netns("fk-decoy", "someone-else", [])
    st = state_mod.load_state(lab.name)
    st.netns["fk-decoy"] = "created"  # an edited state names someone else's namespace
    st.save()
    k.ns["fk-b"].tag = None  # remade by hand under the lab's name
    result = teardown.down(lab.name, k)
    assert sorted(k.ns) == ["fk-b", "fk-decoy"]
    assert any("fk-b" in line for line in result.skipped) and any("fk-decoy" in line for line in result.skipped)


def test_new_namespaces_with_kernel_links_are_numbered_after_them(lab):
    k = FakeKernel(fallback_links=("sit0", "tunl0"))
    up(lab, k)
    assert status(lab, k).ok  # the kernel's links are recorded, not reported as extra
    assert state_mod.load_state(lab.name).extra["kernel_links"]["fk-a"] == ["sit0", "tunl0"]


# A host that is a Kubernetes node (kube-proxy's route_localnet=1) and a hardened router (no redirects sent).
K8S_HOST = {"net.ipv4.conf.all.route_localnet": "1", "net.ipv4.conf.default.route_localnet": "1",
            "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.default.send_redirects": "1"}


def test_settings_a_host_gives_new_namespaces_are_set_back_recorded_and_checked(lab):
    k = FakeKernel(host_devconf=K8S_HOST)
    up(lab, k)
    assert state_mod.load_state(lab.name).extra["restored_devconf"] == ["route_localnet", "send_redirects"]
    # the kernel's values, in every namespace; a node keeps kube-proxy's, and its pods their copy of the node's
    kube_proxys = {"fk-n1", "fk-n2", *(pod.netns for pod in lab.pods)}
    for name, ns in k.ns.items():
        assert ns.sysctls["net.ipv4.conf.all.route_localnet"] == ("1" if name in kube_proxys else "0")
        assert ns.sysctls["net.ipv4.conf.default.route_localnet"] == "0"
        assert ns.sysctls["net.ipv4.conf.all.send_redirects"] == "1"
    assert status(lab, k).ok
    k.ns["fk-a"].sysctls["net.ipv4.conf.all.route_localnet"] = "0"  # drift: status checks what the pod copies
    k.ns["fk-a"].sysctls["net.ipv4.conf.default.route_localnet"] = "1"  # and what the lab set back
    assert status(lab, k).drift == ["different: sysctl net.ipv4.conf.all.route_localnet in fk-a (is 0, want 1)",
                                    "different: sysctl net.ipv4.conf.default.route_localnet in fk-a (is 1, want 0)"]
    k.host_devconf = {}  # the host changed back: a repair that makes no namespace keeps what the lab records
    up(lab, k)
    assert status(lab, k).ok and k.ns["fk-a"].sysctls["net.ipv4.conf.default.route_localnet"] == "0"
    assert state_mod.load_state(lab.name).extra["restored_devconf"] == ["route_localnet", "send_redirects"]


def test_a_host_at_the_kernels_values_adds_nothing_to_the_plan_or_the_state(lab):
    k = FakeKernel()
    up(lab, k)
    assert "restored_devconf" not in state_mod.load_state(lab.name).extra
    # only kube-proxy's, on the nodes, and each pod's copy of its node's
    assert [(r.netns, r.name, r.value) for r in build_plan(lab).of_kind("sysctl") if "route_localnet" in r.name] == [
        ("fk-n1", "net.ipv4.conf.all.route_localnet", "1"), ("fk-n2", "net.ipv4.conf.all.route_localnet", "1"),
        *((pod.netns, "net.ipv4.conf.all.route_localnet", "1") for pod in lab.pods)]


def test_a_stray_eth0_in_a_pod_goes_before_the_node_makes_the_pods_veth_pair(lab):
    """The kernel sends ops namespace by namespace (node before pod): the pod's eth0 of another kind must be
    deleted in an earlier stage, or the veth pair, made from the node with its peer named eth0, is refused."""
    from netlab.plan.resources import Bridge

    def breaker(k):
        peer = link(k, "fk-a", "eth0")
        k.apply([Op("del", peer)])  # the pair goes
        k.apply([Op("add", Bridge(netns="fk-a", name="eth0", mtu=1500, mac=None, up=True))])

    ops = break_and_repair(lab, FakeKernel(), breaker)
    verbs = [(op.verb, op.res.kind, op.res.netns) for op in ops]
    assert verbs.index(("del", "bridge", "fk-a")) < verbs.index(("add", "veth", "fk-n1"))


def test_a_pods_eth0_still_paired_with_a_dying_namespace_goes_before_its_new_pair_is_made(lab):
    """A node's namespace deleted (`ip netns del`): the kernel frees it asynchronously, later under load, and
    until then the pod's eth0 stands, paired with a veth in a namespace without a name. The repair that makes
    the node's veth again, born with its peer eth0, was refused (EEXIST: up --watch's 'add link ... already
    exists'); eth0 goes first."""
    from netlab.plan.resources import Veth

    def breaker(k):
        k.create_netns("fk-dying", "dying", [])
        k.apply([Op("del", link(k, "fk-a", "eth0"))])  # the pair goes with the node's side
        k.apply([Op("add", Veth(netns="fk-dying", name="vdead", mtu=1450, mac=None, up=True, peer_netns="fk-a",
                                peer_name="eth0", peer_mac="02:00:00:00:00:99"))])

    ops = break_and_repair(lab, FakeKernel(), breaker)
    verbs = [(op.verb, op.res.kind, op.res.netns, getattr(op.res, "name", None)) for op in ops]
    gone = verbs.index(("del", "veth-peer", "fk-a", "eth0"))
    assert gone < next(i for i, v in enumerate(verbs) if v[:3] == ("add", "veth", "fk-n1"))


@pytest.mark.parametrize("freed", [True, False])
def test_links_the_kernel_frees_with_a_deleted_node_namespace_after_the_read_are_made_again(lab, freed):
    """`ip netns del` of a node's namespace: it lives on without a name until the kernel frees it (later under
    load), and so do the underlay's veth paired with its eth0 and its pod's eth0. Freed after the repair read the
    lab and before its ops, the deletion of the underlay's veth (to make the pair again) failed, no such device
    (up --watch: "did: repair failed: del link vethN in X-underlay: no such device"): gone is what it asked for.
    Not freed (held open), that veth still goes before its new pair is made (not last, as an extra link)."""
    k = FakeKernel()
    up(lab, k)
    dying = k.ns.pop("fk-n2")  # its name gone, the namespace kept (as under another name here)
    k.ns["fk-n2 (deleted)"] = dying
    for ns in k.ns.values():
        for f in ns.links.values():
            if f.peer and f.peer[0] == "fk-n2":
                f.peer = ("fk-n2 (deleted)", f.peer[1])
    sent = []

    def first_op_frees_it(op):  # the kernel frees it as the repair's first ops are sent
        if freed and not sent:
            k.delete_netns("fk-n2 (deleted)")
        sent.append(op)
        return None

    k.fail = first_op_frees_it
    k.log.clear()
    up(lab, k)
    assert sent and status(lab, k).ok, status(lab, k).drift
    verbs = [(op.verb, op.res.kind, op.res.netns) for op in k.log]
    assert ("add", "veth", "fk-underlay") in verbs and ("add", "veth", "fk-n2") in verbs, verbs


def test_a_repair_that_may_only_repair_never_recreates_a_lab_taken_down(lab, monkeypatch):
    """`up --watch`'s repair (api/watch_repair.py) reads the lab's state under its lock: a `down` it waited for
    is not undone."""
    from netlab.api import watch_repair

    k = FakeKernel()
    monkeypatch.setattr(watch_repair, "LiveKernel", lambda: k)
    monkeypatch.setattr(k, "close", lambda: None)
    up(lab, k)
    read = state_mod.load_state(lab.name)  # as the watcher read it before the down it then waits for
    teardown.down(lab.name, k, ())
    with pytest.raises(lab_up.LabGone, match="taken down meanwhile"):
        watch_repair.repair(read, lab, lambda st: True, False, (), [])
    assert not k.ns and state_mod.load_state(lab.name) is None
    up(lab, k)
    read = state_mod.load_state(lab.name)
    k.apply([Op("del", next(r for r in build_plan(lab).of_kind("route") if r.netns == "fk-n1"))])
    _, _, done = watch_repair.repair(read, lab, lambda st: True, False, (), [])
    assert done is not None
    assert [line for line in done.fixed if line.startswith("add route") or line.startswith("replace route")]
    teardown.down(lab.name, k, ())
    with pytest.raises(lab_up.LabGone):
        watch_repair.repair(read, lab, lambda st: True, False, (), [])
    assert not k.ns


def test_the_links_a_fresh_lab_runs_are_every_veth_end_and_each_bridge_with_a_port(lab):
    """What the watcher waits for before it says it watches (api/watch.py): the fake kernel, as the real one
    once linkwatch has run, lists each of them running after up."""
    from netlab.lab import carrier

    k = FakeKernel()
    up(lab, k)
    plan = build_plan(lab)
    links = carrier.planned_running(plan)
    veths = plan.of_kind("veth")
    assert set(links) == ({(v.netns, v.name) for v in veths} | {(v.peer_netns, v.peer_name) for v in veths}
                          | {(v.netns, v.master) for v in veths if v.master})
    assert carrier.wait_running(k, links, timeout=0.05) == []
    k.no_carrier.add(links[0])
    assert carrier.wait_running(k, links, timeout=0.05) == [links[0]]
