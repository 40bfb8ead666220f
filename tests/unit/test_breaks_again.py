"""`netlab break` of a scenario that is in place already (broken before, not repaired since), and a target given
empty, against the fake kernel (no root).

Breaking the same way twice was one scenario's "broke" again (ip-forward-off: a sysctl written twice), another's
exit 4 "apply failed" (vxlan-arp-missing: the neighbour deleted twice is ENOENT; forward-policy-drop: iptables
-D of a rule that is gone fails the restore). Now every scenario says it is broken already, changes nothing and
exits 0. `--target ""` broke the scenario's default target, exit 0: an empty name is a name no node or pod has.
"""

from __future__ import annotations

import pytest
from fake_lab import status, up
from test_breaks_catalogue import SHAPES

from netlab.api.topology import load
from netlab.breaks import already, catalogue, quiz, run as break_run
from netlab.breaks.changes import Action
from netlab.errors import UsageError
from netlab.kernel import live
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state_dir


def _fake_lab(tmp_path, monkeypatch, shape: str):
    """The shipped topology of ``shape`` up on a fake kernel, state in the test's tmp dir; break_lab's kernel
    door is that kernel."""
    import shutil

    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    path = tmp_path / "t.yaml"
    source = SHAPES[shape]
    if source is None:
        from netlab.breaks.run import __file__ as here  # the built-in lab: netlab/data/default.yaml

        source = here.replace("breaks/run.py", "data/default.yaml")
    shutil.copy(source, path)
    lab = resolve(load_topology(str(path)))
    k = FakeKernel()
    up(lab, k)
    k.close = lambda: None  # type: ignore[method-assign]  # one kernel for every door break_lab opens
    monkeypatch.setattr(live, "LiveKernel", lambda *a, **kw: k)
    return lab, k


def _targets(s, lab):
    out = []
    for item in lab.nodes if s.target == "node" else lab.pods:
        try:
            out.append(catalogue.resolve_target(s, lab, item.name))
        except ValueError:
            continue
    return out


@pytest.mark.parametrize("shape", ["default", "services", "host-gw-3node"])
def test_every_kernel_scenario_again_is_broken_already_and_changes_nothing(tmp_path, monkeypatch, shape):
    """Each scenario the quiz may pick on the lab whose change is the kernel's (the pod and conntrack ones are
    the root test's), on its default target: the first break changes the kernel; the second says broken
    already, changes nothing, names no change (it was "broke" again, or ApplyFailed); up repairs once."""
    lab, k = _fake_lab(tmp_path, monkeypatch, shape)
    seen: list[str] = []
    for s in quiz.candidates(lab):
        target = catalogue.resolve_target(s, lab, None)
        steps = break_run.steps_of(s.name, lab, target)
        if any(isinstance(step, Action) for step in steps):
            continue
        seen.append(s.name)
        first = break_run.break_lab(lab.name, s.name)
        assert not getattr(first, "already", False) and first.done, s.name
        drift = status(lab, k).drift
        assert drift, s.name
        k.log.clear()
        again = break_run.break_lab(lab.name, s.name)
        assert (getattr(again, "already", False), again.done, k.log) == (True, [], []), (s.name, again, k.log)
        assert again.to_json()["already"] is True and again.to_json()["changes"] == []
        assert status(lab, k).drift == drift, s.name
        up(lab, k)
        assert status(lab, k).ok, s.name
    assert len(seen) >= 5, seen


@pytest.mark.parametrize("shape", ["default", "services"])
def test_a_clean_lab_is_not_broken_already_for_any_target(tmp_path, monkeypatch, shape):
    """Nothing is "in place" on a lab as planned (the check must not skip a real break), on every target."""
    lab, k = _fake_lab(tmp_path, monkeypatch, shape)
    for s in quiz.candidates(lab):
        for target in _targets(s, lab):
            ops = [op for op in break_run.steps_of(s.name, lab, target) if isinstance(op, Op)]
            if ops:
                assert not already.in_effect(ops, already.read(k, ops)), (s.name, target.name)


def test_another_target_broken_is_not_this_one(tmp_path, monkeypatch):
    """ip-forward-off on n1 does not make ip-forward-off on the other node "broken already"."""
    lab, k = _fake_lab(tmp_path, monkeypatch, "vxlan-3node")
    first, second = lab.nodes[0].name, lab.nodes[1].name
    assert not break_run.break_lab(lab.name, "ip-forward-off", first).already
    other = break_run.break_lab(lab.name, "ip-forward-off", second)
    assert not other.already and other.done


def test_an_empty_target_is_refused_in_one_line():
    """`--target ""` and `--target=` give the name "" (the CLI passes it on): refused as any unknown name, exit 2."""
    lab = load(None).lab
    for name in ("ip-forward-off", "vxlan-arp-missing", "bridge-port-down"):
        s = catalogue.scenario(name)
        with pytest.raises(ValueError) as err:
            catalogue.resolve_target(s, lab, "")
        assert "has no node ''" in str(err.value) or "has no pod ''" in str(err.value)
        assert "\n" not in str(err.value)
        with pytest.raises(UsageError):
            break_run.check(name, lab, "")


def test_the_catalogue_words_pod_cidr_route_missing_for_host_gw_and_the_mtu_symptom_for_the_nodes():
    """pod-cidr-route-missing applies to host-gw labs, whose route is `via <peer node IP> dev eth0`: its change and
    fix said only flannel.N and the peer's VTEP. pod-mtu-too-big's symptom left out the flows of the nodes
    themselves that probe --mtu reports failing (the node to the other nodes' pods, and back)."""
    from netlab.breaks import symptoms
    from netlab.breaks.changes import peer_node

    s = catalogue.scenario("pod-cidr-route-missing")
    hostgw = load(SHAPES["host-gw-3node"]).lab
    node = catalogue.resolve_target(s, hostgw, None)
    [op] = break_run.steps_of(s.name, hostgw, node)
    assert (op.res.dev, str(op.res.gateway)) == ("eth0", str(peer_node(hostgw, node).ip))
    for words in (s.change, s.fix):
        assert "via <peer node IP> dev eth0" in words and "host-gw" in words, words
        assert "via <peer VTEP> dev flannel.N onlink" in words, words
    m = catalogue.scenario("pod-mtu-too-big")
    lab = load(None).lab
    node = catalogue.resolve_target(m, lab, None)
    peer = peer_node(lab, node)
    verdict = symptoms.expect(m, lab, node)
    row = {"protocol": "mtu", "service": None}
    assert verdict({**row, "source": node.name, "destination": lab.pods_on(peer.name)[0].name}) == "fail"
    assert verdict({**row, "source": peer.name, "destination": lab.pods_on(node.name)[0].name}) == "fail"
    assert "from the node to the other nodes' pods and from the other nodes to the node's pods" in m.symptom


def test_ip_forward_off_expects_every_clusterip_flow_of_the_nodes_pods_to_fail_and_wrong_vni_says_what_up_does():
    """ip-forward-off's `expect:` named only flows between nodes, while probe's verdict (and the kernel) fails
    every ClusterIP flow of the node's pods too, also to an endpoint on its own bridge: the node DNATs, then
    routes it. vxlan-wrong-vni's fix was "sudo netlab up does": what is wrong where, and what up changes."""
    from netlab.breaks import symptoms

    s = catalogue.scenario("ip-forward-off")
    assert s.symptom.startswith("every flow the node would forward fails, not only the one a trace shows")
    assert "every ClusterIP flow from the node's pods, whichever endpoint" in s.symptom
    # QA q26 3: probe (and curl) fail its pods' egress and outside NodePort/LoadBalancer flows it takes in too
    assert ("its pods' egress to internet hosts, and every NodePort or LoadBalancer flow from outside that comes in "
            "on the node") in s.symptom
    lab = load(SHAPES["services"]).lab
    node = catalogue.resolve_target(s, lab, None)
    verdict = symptoms.expect(s, lab, node)
    own = [p.name for p in lab.pods_on(node.name)]
    for end in lab.pods:  # one endpoint at a time: on the node's own bridge, or on another node
        svc = {"via": "ClusterIP", "endpoints": [{"pod": end.name, "node": end.node}]}
        for src in own:
            assert verdict({"source": src, "destination": end.name, "protocol": "tcp", "service": svc}) == "fail"
        assert verdict({"source": own[0], "destination": end.name, "protocol": "tcp", "service": None}) == \
            ("pass" if end.node == node.name else "fail")  # to a pod's IP: bridged on its own node
    w = catalogue.scenario("vxlan-wrong-vni")
    assert w.fix.startswith("on the node, delete flannel.N and make it again with the cluster's VNI")
    assert "sudo netlab up does exactly that" in w.fix


def test_a_stopped_pod_is_in_place_and_a_running_one_is_not():
    """endpoint-pod-down and dns-pod-stopped again said "pod web-2 runs no container to stop", exit 4: the check
    read the workload's `running` as a map of pods, which now also holds the served echo containers beside
    them (``{"pods": ..., "served": ...}``), found no pod and called the stop not in place."""
    from netlab.realize.state import LabState
    from netlab.workload.lifecycle import RECORD, RECORD_VERSION

    dead = {"pid": 2 ** 22 + 1, "argv": ["sleep", "infinity"]}  # past pid_max's default: no such process
    pods = {"web-2": {"netns": "l-web-2", "containers": {"main": dead}}}
    state = LabState(lab="l", phase="up", extra={RECORD: {"version": RECORD_VERSION, "pods": pods}})
    stop = Action("stop-pod", "l-web-2", ("web-2",))
    assert break_run._action_in_place(stop, state)
    assert not break_run._action_in_place(Action("stop-pod", "l-other", ("other",)), state)  # no such pod


def test_rp_filter_strict_says_the_peers_tcp_and_udp_fail_the_no_nat_check_by_flannels_port_rewrite():
    """QA q26 2: the symptom said only the peer node's TCP probes fail the no-NAT check, for its eth0 address; UDP
    fails too, and probe says "source port translated": Flannel's MASQUERADE --random-fully of a source outside
    the pod network (the address is the same)."""
    s = catalogue.scenario("rp-filter-strict")
    assert "so its TCP probes" not in s.symptom
    assert "FLANNEL-POSTRTG: MASQUERADE --random-fully, which rewrites the source port), so its TCP and UDP " \
           "probes fail the no-NAT check (source port translated)" in s.symptom


def test_conntrack_stale_entry_says_how_long_the_entry_lives():
    """QA q26 1: each query from the port keeps the stale entry 120 s more; left alone it times out (healed, not
    repaired)."""
    s = catalogue.scenario("conntrack-stale-entry")
    assert "each keeps the entry 120 s more" in s.symptom and "it times out and the fault heals by itself" in s.symptom
