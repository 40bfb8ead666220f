"""A node's cni0 comes with its first pod and stays, as the bridge plugin makes it (fake kernel, no root; QA fl59 9).

On a real Flannel node cni0 appears at the first pod's CNI ADD: the bridge plugin makes it and gives it the pod
CIDR's gateway (10.244.X.1/24, and with it the connected route). It never deletes it: the last pod's DEL takes the
pod's veth, cni0 stays with its address. netlab gave every node cni0 from the start, a node without pods too. Now
a node has cni0 once a pod was planned there while the lab ran (Held.bridge_nodes, saved with the lab's
addresses); the same file brought up afresh has it only where a pod is. An older netlab's record: every node of its
topology, which that netlab made it on.
"""

from __future__ import annotations

import json

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize.state_dir import STATE_REVISION
from netlab.plan.build import build_plan
from netlab.plan.resources import Address, Bridge, Veth
from netlab.realize import state as state_mod
from netlab.realize import state_dir


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))


def write(tmp_path, pods: str, mode: str = "vxlan") -> str:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: fbc\nnetwork: {{mode: {mode}}}\n"
                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                    "  - {name: a, node: n1}\n" + pods)
    return str(path)


def up(path: str, kernel) -> None:
    lab_up.up(resolve(load_topology(path)), kernel, features=(), source=path, journal=Journal(kernel))


def cni0(lab) -> set[str]:
    """The nodes whose plan has cni0 and its address."""
    res = build_plan(lab).resources
    bridges = {r.netns for r in res if isinstance(r, Bridge) and r.name == "cni0"}
    addrs = {r.netns for r in res if isinstance(r, Address) and r.dev == "cni0"}
    assert bridges == addrs
    return {ns.removeprefix("fbc-") for ns in bridges}


def kernel_cni0(k) -> set[str]:
    return {name.removeprefix("fbc-") for name in ("fbc-n1", "fbc-n2") if "cni0" in k.ns[name].links}


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_a_node_without_a_pod_has_no_cni0(tmp_path, mode):
    lab = resolve(load_topology(write(tmp_path, "", mode)))
    assert cni0(lab) == {"n1"}
    k = FakeKernel()
    up(write(tmp_path, "", mode), k)
    assert kernel_cni0(k) == {"n1"}
    assert not [r for r in k.ns["fbc-n2"].all_routes() if r.dev == "cni0"]
    assert lab_status.status(state_mod.load_state("fbc"), k).ok


def test_cni0_comes_with_the_first_pod_and_stays_after_the_last(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, ""), k)
    assert state_mod.load_state("fbc").held().bridge_nodes == frozenset({"n1"})
    up(write(tmp_path, "  - {name: b, node: n2}\n"), k)
    assert kernel_cni0(k) == {"n1", "n2"}
    assert "10.244.1.1/24" in {str(a.address) for a in k.ns["fbc-n2"].addrs if a.dev == "cni0"}
    up(write(tmp_path, ""), k)  # b goes: its veth with it, cni0 and its address stay
    state = state_mod.load_state("fbc")
    assert kernel_cni0(k) == {"n1", "n2"} and state.held().bridge_nodes == frozenset({"n1", "n2"})
    assert cni0(state.resolved()) == {"n1", "n2"} and lab_status.status(state, k).ok
    # the same file brought up afresh (no running lab): cni0 only where a pod is
    assert cni0(resolve(load_topology(write(tmp_path, "")))) == {"n1"}


def test_held_bridge_nodes_survive_the_state_file_and_an_older_record_holds_every_node(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, ""), k)
    rec = state_mod.load_state("fbc").extra[state_mod.ADDRESSES]
    assert Held.from_json(json.loads(json.dumps(rec))).bridge_nodes == frozenset({"n1"})
    state = state_mod.load_state("fbc")
    del state.extra[state_mod.ADDRESSES]["bridge_nodes"]  # an older netlab's record: it made cni0 on every node
    state.save()
    older = state_mod.load_state("fbc")
    assert older.held().bridge_nodes == frozenset({"n1", "n2"}) and cni0(older.resolved()) == {"n1", "n2"}
    from netlab.realize.state_schema import AddressesRecord

    AddressesRecord.model_validate({"pods": {}, "services": [], "bridge_nodes": ["n1"]})
    for bad in (["N1"], "n1", [1]):
        with pytest.raises(ValueError):
            AddressesRecord.model_validate({"pods": {}, "services": [], "bridge_nodes": bad})


def test_without_a_running_lab_the_nodes_with_a_pod(tmp_path):
    lab = resolve(load_topology(write(tmp_path, "")))
    assert lab.held_before is None and lab.bridge_nodes() == frozenset({"n1"}) == lab.held().bridge_nodes
    assert Held().bridge_nodes == frozenset()


def test_a_node_without_a_pod_has_no_cni0_to_impair(tmp_path):
    from netlab.errors import TopologyError

    path = tmp_path / "i.yaml"
    path.write_text("name: fbi\nnodes:\n  - name: n1\n  - name: n2\n    impair:\n      cni0: {rate: 10mbit}\n"
                    "      eth0: {rate: 10mbit}\npods: [{name: a, node: n1}]\n")
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    assert [str(p) for p in info.value.problems] == [
        f"{path}:6: nodes[1].impair.cni0: node n2 has no pod, so no cni0 to impair (the CNI bridge plugin makes it "
        "at the node's first pod; after its last, it has no port)"]


def test_impair_of_a_running_lab_s_node_without_cni0_is_refused(tmp_path, monkeypatch):
    from netlab.api import impair as impair_api
    from netlab.errors import UsageError
    from netlab.model.impair import Impairment

    k = FakeKernel()
    up(write(tmp_path, ""), k)
    state = state_mod.load_state("fbc")
    with pytest.raises(UsageError) as info:
        impair_api._edited(state, "n2", "cni0", Impairment(rate="10mbit"))
    assert str(info.value) == ("n2 has no cni0: no pod ran there yet (the CNI bridge plugin makes it at the "
                               "node's first pod); use one of eth0, flannel.1")
    impair_api._edited(state, "n1", "cni0", Impairment(rate="10mbit"))  # n1's is there


def _veth(mtu: int, master: str | None = "cni0") -> Veth:
    return Veth(netns="fbc-n2", name="veth1", mtu=mtu, mac="02:00:00:00:00:01", peer_netns="fbc-b",
                peer_name="eth0", peer_mac="02:00:00:00:00:02", master=master, hairpin=True)


@pytest.mark.parametrize("have_mtu,ports_now,planned_ports,drift", [
    (1500, [], [], False),  # the last pod's DEL left it: the kernel's MTU of a bridge without a port
    (1450, [], [], False),  # made by an older netlab, never a port
    (1450, [1450], [], False),  # its last port goes in this run: the kernel sets 1500 then
    (1500, [], [1450], False),  # its first port comes in this run: the kernel takes the port's
    (9000, [1450], [1450], True),  # set by hand: the kernel adjusts it no more
    (1500, [1450], [1450], True),
])
def test_a_bridge_s_mtu_is_the_kernel_s_of_its_ports(have_mtu, ports_now, planned_ports, drift):
    """br_mtu_auto_adjust: a bridge whose MTU no one set takes its ports' smallest, 1500 (ETH_DATA_LEN) without
    one; the bridge plugin makes cni0 with its MTU in the request (not 'set by user'), so the last pod's DEL leaves
    it at 1500 on a real node (measured: ip link add cni0 mtu 1450 type bridge, a port in, the port deleted)."""
    from netlab.realize.diff import diff_netns
    from netlab.realize.observe import Observed

    want = Bridge(netns="fbc-n2", name="cni0", mtu=1450, mac="02:00:00:00:00:09")
    have = Bridge(netns="fbc-n2", name="cni0", mtu=have_mtu, mac="02:00:00:00:00:09")
    obs = Observed(netns="fbc-n2")
    obs.add(have)
    for mtu in ports_now:
        obs.add(_veth(mtu))
    planned = [want] + [_veth(mtu) for mtu in planned_ports]
    found = [d for d in diff_netns(planned, obs) if d.resource.key == want.key]
    assert bool(found) == drift, found


def test_a_break_traced_to_a_podless_peer_goes_to_an_address_it_has(tmp_path):
    """A node's fault is traced across the pod network to its peer: to a podless peer's flannel.1 address in VXLAN
    mode (it has no cni0 before its first pod); in host-gw mode such a peer has no address of its pod CIDR, so the
    node is no target (its peer is: traced from it to the pods)."""
    from netlab.breaks import catalogue, symptoms

    s = catalogue.scenario("pod-cidr-route-missing")
    vx = resolve(load_topology(write(tmp_path, "")))
    check = symptoms.trace_check(s, vx, vx.node("n1"))
    assert (check.src, check.dst) == ("a", str(vx.node("n2").vtep_ip))
    hg = resolve(load_topology(write(tmp_path, "", "host-gw")))
    assert catalogue.target_problem(s, hg, hg.node("n1")) == (
        "pod-cidr-route-missing is traced from a node across the pod network to its peer: node n1's, n2, has no pod, "
        "nor cni0 before its first one, nor flannel.1 in host-gw")
    assert catalogue.default_target(s, hg) == "n2"
    assert catalogue.target_problem(s, hg, hg.node("n2")) is None
    check = symptoms.trace_check(s, hg, hg.node("n2"))
    assert (check.src, check.dst) == ("n2", "a")


def test_trace_to_the_cni0_address_of_a_node_without_cni0_is_refused(tmp_path):
    """10.244.1.1 is n2's cni0 address once a pod ran there; before, n2 has no such address: trace named it "n2
    cni0" and sent the packet, which n2 routed out of its default route to the underlay, lost there "as the lab
    plans it". Its node is not the one holding it (policy.node_of), nor is it an ARP answerer's (arploss)."""
    from ipaddress import IPv4Address

    from netlab.errors import UsageError
    from netlab.trace.arploss import answerers
    from netlab.trace.policy import node_of
    from netlab.trace.targets import lab_map, resolve_source, resolve_target

    lab = resolve(load_topology(write(tmp_path, "")))
    src = resolve_source(lab, "a")
    with pytest.raises(UsageError) as info:
        resolve_target(lab, "10.244.1.1", None, None, src)
    assert str(info.value) == ("10.244.1.1 is the cni0 address node n2 would have, but n2 has no cni0: no pod ran "
                               "there yet (the CNI bridge plugin makes it at a node's first pod)")
    assert "10.244.1.1" not in lab_map(lab).ip_names and "10.244.1.1" not in answerers(lab)
    assert node_of(lab, IPv4Address("10.244.1.1")) is None and node_of(lab, IPv4Address("10.244.0.1")) == "n1"
    assert resolve_target(lab, "10.244.0.1", None, None, src).name == "n1 cni0"
    k = FakeKernel()
    up(write(tmp_path, "  - {name: b, node: n2}\n"), k)
    up(write(tmp_path, ""), k)  # b goes, n2 keeps cni0 and its address
    kept = state_mod.load_state("fbc").resolved()
    assert resolve_target(kept, "10.244.1.1", None, None, resolve_source(kept, "a")).name == "n2 cni0"


def test_impair_shows_no_cni0_of_a_node_without_it(tmp_path, monkeypatch):
    """`netlab impair` listed "n2:cni0: no such interface (the lab's topology says none: `netlab up` puts it so)"
    for every podless node of a fresh lab, nothing impaired: up makes no cni0 there; `impair n2:cni0` asked for it
    alone, and `--clear` of it recorded a run-time impairment the listing then showed as set."""
    from netlab.api import impair as impair_api
    from netlab.errors import UsageError
    from netlab.impair import show

    monkeypatch.setattr(show.nsmod, "is_netns_mount", lambda ns: False)  # no namespace: each one "no such interface"
    lab = resolve(load_topology(write(tmp_path, "")))
    targets = {s.target for s in show.read(lab, {})}
    assert "n1:cni0" in targets and "n2:eth0" in targets and "n2:cni0" not in targets
    k = FakeKernel()
    up(write(tmp_path, ""), k)
    monkeypatch.setattr(impair_api, "running", lambda name: state_mod.load_state(name))
    said = ("n2 has no cni0: no pod ran there yet (the CNI bridge plugin makes it at the node's first pod); "
            "use one of eth0, flannel.1")
    with pytest.raises(UsageError) as info:
        impair_api.show("fbc", "n2:cni0")
    assert str(info.value) == said
    with pytest.raises(UsageError) as info:
        impair_api._edited(state_mod.load_state("fbc"), "n2", "cni0", None)
    assert str(info.value) == said


def test_impair_of_the_cni0_a_node_kept_after_its_last_pod_is_refused_as_its_file_is(tmp_path):
    """The file refuses an impairment of a podless node's cni0 (checks.py); so does impair, also of the cni0 a node
    kept after its last pod went: it has no port, nothing to shape. Clearing one is not refused."""
    from netlab.api import impair as impair_api
    from netlab.errors import UsageError
    from netlab.model.impair import Impairment

    k = FakeKernel()
    up(write(tmp_path, "  - {name: b, node: n2}\n"), k)
    up(write(tmp_path, ""), k)
    state = state_mod.load_state("fbc")
    with pytest.raises(UsageError) as info:
        impair_api._edited(state, "n2", "cni0", Impairment(rate="10mbit"))
    assert str(info.value) == ("n2 has no pod: its cni0, kept since its last pod went, has no port to impair; use "
                               "one of eth0, flannel.1")
    impair_api._edited(state, "n2", "cni0", None)


def test_an_older_netlabs_lab_keeps_cni0_on_every_node_and_converges(tmp_path):
    """A lab an older netlab brought up (state revision 2: no bridge_nodes; it made cni0 on every node, a podless
    one too): status finds it as planned, up changes nothing of its bridges and saves them held (revision 3)."""
    k = FakeKernel()
    up(write(tmp_path, "  - {name: b, node: n2}\n"), k)
    up(write(tmp_path, ""), k)  # n2 without a pod, its cni0 there: as the older netlab left it
    path = state_dir.state_file("fbc")
    with open(path) as f:
        data = json.load(f)
    del data["extra"][state_mod.ADDRESSES]["bridge_nodes"]
    data["revision"] = 2
    with open(path, "w") as f:
        json.dump(data, f)
    older = state_mod.load_state("fbc")
    assert older.held().bridge_nodes == frozenset({"n1", "n2"}) and lab_status.status(older, k).ok
    links = {ns: dict(k.ns[ns].links) for ns in ("fbc-n1", "fbc-n2")}
    up(write(tmp_path, ""), k)
    assert {ns: dict(k.ns[ns].links) for ns in ("fbc-n1", "fbc-n2")} == links and kernel_cni0(k) == {"n1", "n2"}
    with open(path) as f:
        data = json.load(f)
    assert data["revision"] == STATE_REVISION and data["extra"][state_mod.ADDRESSES]["bridge_nodes"] == ["n1", "n2"]
    assert lab_status.status(state_mod.load_state("fbc"), k).ok


def test_get_nodes_and_graph_say_a_node_has_no_cni0_yet_and_a_kept_one_s_address(tmp_path, monkeypatch):
    """get nodes -o wide: CNI0 "<none: no pod yet>" (JSON null) where no pod ran, cni0's address where one ran and
    went; graph: the node's box says it has no cni0 yet."""
    from netlab import graph
    from netlab.api import views
    from netlab.cli import get

    monkeypatch.setattr(views, "_created", lambda netns: None)
    monkeypatch.setattr(views, "_missing", lambda *a: None)
    fresh = resolve(load_topology(write(tmp_path, "")))
    infos = {n.name: n for n in views.nodes(fresh)}
    assert (infos["n1"].cni0, infos["n2"].cni0) == ("10.244.0.1/24", None)
    rows = {r[0]: r for r in get._nodes(tuple(infos.values()), wide=True)[1]}
    assert (rows["n1"][6], rows["n2"][6]) == ("10.244.0.1/24", "<none: no pod yet>")
    boxes = {b.id: b.label for g in graph.build(fresh).groups for b in g.boxes}
    labels = {n: next(v for k, v in boxes.items() if "cni0" in k and n in k) for n in ("n1", "n2")}
    assert labels["n1"].startswith("cni0 (bridge)\n10.244.0.1/24") and labels["n2"].startswith("no cni0 yet"), labels
    k = FakeKernel()
    up(write(tmp_path, "  - {name: b, node: n2}\n"), k)
    up(write(tmp_path, ""), k)
    kept = state_mod.load_state("fbc").resolved()
    assert {n.name: n.cni0 for n in views.nodes(kept)}["n2"] == "10.244.1.1/24"
    boxes = {b.id: b.label for g in graph.build(kept).groups for b in g.boxes}
    assert next(v for k, v in boxes.items() if "cni0" in k and "n2" in k).startswith("cni0 (bridge)\n10.244.1.1/24")


def test_a_portless_bridge_set_down_is_set_up_and_its_mtu_left_to_the_kernel():
    """A kept cni0 without a port, at 1500 (the kernel's), set down by hand: the drift is its being down, and the
    repair sets it up alone. It said "set up, mtu of link cni0" and set 1450 by hand, the MTU the kernel then
    stops adjusting (test_repair.py's bridge without ports)."""
    from netlab.kernel.base import link_changes
    from netlab.realize.diff import diff_netns
    from netlab.realize.observe import Observed

    want = Bridge(netns="fbc-n2", name="cni0", mtu=1450, mac="02:00:00:00:00:09")
    obs = Observed(netns="fbc-n2")
    obs.add(Bridge(netns="fbc-n2", name="cni0", mtu=1500, mac="02:00:00:00:00:09", up=False))
    [found] = [d for d in diff_netns([want], obs) if d.resource.key == want.key]
    assert (found.state, found.detail) == ("different", "down")
    assert link_changes(found.live, want) == ["up"]


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_graph_draws_a_podless_nodes_routes_from_the_node_not_from_its_absent_cni0(tmp_path, mode):
    """The routes to the other pod CIDRs are the node's own where it has no cni0 yet: the line that carries them
    left the "no cni0 yet" box (a bridge that is not there routing pods that are not there)."""
    from netlab import graph

    g = graph.build(resolve(load_topology(write(tmp_path, "", mode))))
    ids = {b.id: b.label for grp in g.groups for b in grp.boxes}
    cni0 = {n: next(i for i in ids if "cni0" in i and f"_{n}_" in i) for n in ("n1", "n2")}
    eth0 = {n: next(i for i in ids if "eth0" in i and f"_{n}_" in i) for n in ("n1", "n2")}
    routed = [link for link in g.links if "10.244." in link.label and link.style == "internal"]
    assert {link.src for link in routed} == {cni0["n1"]} | ({eth0["n2"]} if mode == "vxlan" else set()), routed
    assert not [link for link in g.links if cni0["n2"] in (link.src, link.dst)], g.links
    if mode == "host-gw":
        assert ids[eth0["n2"]].endswith("host-gw routes:\n10.244.0.0/24 via 192.168.122.2"), ids[eth0["n2"]]
    else:
        (own,) = [link for link in routed if link.src == eth0["n2"]]
        assert own.label.startswith("the node's routes\n10.244.0.0/24 via 10.244.0.0 onlink"), own.label


def test_a_conflists_pod_side_is_named_only_on_nodes_with_a_pod(tmp_path, monkeypatch):
    """With a user's conflist the plugins make the bridge (and the pods' gateway) at a node's first pod's ADD:
    get nodes named the gateway on a node with no pod, and graph drew the plugins' side there."""
    from netlab import graph
    from netlab.api import views

    from helpers import CONFLIST, write_conflist

    monkeypatch.setattr(views, "_created", lambda netns: None)
    monkeypatch.setattr(views, "_missing", lambda *a: None)
    write_conflist(tmp_path, [{"type": "bridge", "bridge": "cni0", "isGateway": True,
                               "ipam": {"type": "host-local", "subnet": "usePodCidr"}}])
    text = open(write(tmp_path, "")).read().replace("network: {mode: vxlan}",
                                                    f"network: {{mode: vxlan, cni: {CONFLIST}}}")
    (tmp_path / "t.yaml").write_text(text)
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    assert lab.cni == "conflist"
    assert {n.name: n.cni0 for n in views.nodes(lab)} == {"n1": "10.244.0.1/24", "n2": None}
    boxes = {b.id: b.label for g in graph.build(lab).groups for b in g.boxes}
    labels = {n: next(v for k, v in boxes.items() if "cni0" in k and f"_{n}_" in k) for n in ("n1", "n2")}
    assert labels["n1"].startswith("made by the CNI plugins") and labels["n2"].startswith("nothing yet"), labels
