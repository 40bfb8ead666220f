"""A pod ``up`` makes anew (put on another node, or given another address) whose run fails or is stopped after its
old namespace went, against the fake kernel (no root): the rollback makes it again as the lab's last good run had it
(lab/remake.py). tests/integration/test_held_addresses.py checks the same on real namespaces, with traffic."""

from __future__ import annotations

import os
import signal

import pytest
from fake_lab import TOPO, IdleFeature, make_lab, status, up

from netlab.errors import ApplyFailed, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def moved(lab, tmp_path):
    """The lab with pod b on n1 (its file's other pods as they are)."""
    path = tmp_path / "moved.yaml"
    path.write_text(TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}", "{name: b, node: n1, ip: 10.244.0.3}"))
    return resolve(load_topology(str(path))), str(path)


class Containers(IdleFeature):
    """A feature that says which pods it stopped and, at each start, the address of each pod it started for."""

    def __init__(self):
        self.stopped: list[str] = []
        self.started: list[dict[str, str]] = []

    def start(self, lab, state, early=None):
        from netlab.feature import StartResult

        self.started.append({p.name: str(p.ip) for p in lab.pods})
        return StartResult()

    def stop(self, state, netns_names, everything=False, early=None):
        self.stopped += netns_names
        return []


def b_address(k) -> list[str]:
    """Pod b's eth0 addresses, then the namespace that holds its veth's other end (if it is there), as the fake
    kernel has them."""
    from netlab.plan.build import build_plan

    plan = build_plan(state_mod.load_state("fk").resolved())
    veth = next(r for r in plan.of_kind("veth") if r.peer_netns == "fk-b")
    addresses = [str(a.address) for a in k.ns["fk-b"].addrs if a.dev == "eth0"]
    return addresses + ([veth.netns] if veth.name in k.ns[veth.netns].links else [])


REMADE = {
    "moved": {"{name: b, node: n2, ip: 10.244.1.3}": "{name: b, node: n1, ip: 10.244.0.3}"},
    "podCIDR": {"podCIDR: 10.244.1.0/24": "podCIDR: 10.244.9.0/24", "{name: b, node: n2, ip: 10.244.1.3}":
                "{name: b, node: n2}"},
}


@pytest.mark.parametrize("change", sorted(REMADE))
def test_an_interrupted_change_makes_the_pod_it_had_begun_to_make_anew_again(lab, tmp_path, change):
    """Pod b made anew (put on n1, or its node's block changed), the run stopped by SIGTERM at each step in turn.
    Its old namespace and containers went first, and the rollback could not bring them back: "rolled back, but
    for pod b, which it had begun to make anew", the lab without b until `up --lab fk`. Now the rollback makes it
    again from the topology it puts back: its old address on eth0, its veth on n2, its containers started for
    that address, status clean, and the plain "rolled back". A second signal during the rollback waits for it."""
    k = FakeKernel()
    up(lab, k)
    path = tmp_path / "remade.yaml"
    text = TOPO
    for was, now in REMADE[change].items():
        text = text.replace(was, now)
    path.write_text(text)
    new = resolve(load_topology(str(path)))
    real_create, second = k.create_netns, []

    def create(name, tag, sysctls):  # in the rollback, pod b's namespace made again: a second Ctrl-C
        if name == "fk-b" and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            second.append(name)
            os.kill(os.getpid(), signal.SIGINT)
        return real_create(name, tag, sysctls)

    k.create_netns = create
    remade = 0
    for at in range(1, 40):
        feature = Containers()
        try:
            lab_up.up(new, k, features=(feature,), source=str(path), reconfigure=True,
                      journal=Journal(k, signal_at=at))
        except rollback.Interrupted as exc:
            assert str(exc) == "interrupted by SIGTERM; rolled back" and exc.exit_code == 143, (at, str(exc))
        else:
            assert at > 3 and status(new, k).ok
            break
        assert status(lab, k).drift == [], (at, status(lab, k).drift)
        assert b_address(k) == ["10.244.1.3/24", "fk-n2"], at
        if "fk-b" in feature.stopped:  # its old containers stopped: started again, for its old address
            remade += 1
            assert feature.started[-1] == {"a": "10.244.0.2", "b": "10.244.1.3"}, (at, feature.started)
    else:
        raise AssertionError("up never got past the injected signals")
    assert remade >= 3 and len(second) == remade, (remade, second)


def test_a_signal_as_the_old_pods_containers_stop_starts_them_again(lab, tmp_path):
    """SIGTERM while the moved pod's containers stop, before its namespace goes: the namespace stays, and the
    rollback starts its containers again (they stayed stopped, and the error said "rolled back")."""
    class SignalledStop(Containers):
        def stop(self, state, netns_names, everything=False, early=None):
            super().stop(state, netns_names, everything, early)
            if netns_names == ["fk-b"] and len(self.stopped) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return []

    k = FakeKernel()
    up(lab, k)
    old_b = k.ns["fk-b"]
    new, path = moved(lab, tmp_path)
    feature = SignalledStop()
    with pytest.raises(rollback.Interrupted, match=r"^interrupted by SIGTERM; rolled back$"):
        lab_up.up(new, k, features=(feature,), source=path, reconfigure=True)
    assert k.ns["fk-b"] is old_b and status(lab, k).ok
    assert feature.started == [{"a": "10.244.0.2", "b": "10.244.1.3"}]


def test_a_pod_the_kernel_refuses_to_make_again_is_named_and_tried_once(lab, tmp_path):
    """The kernel refuses pod b's new veth, and would refuse it again in the rollback: one attempt there, then
    what it made goes again (no half-made pod), and the error names b with the command that makes it."""
    k = FakeKernel()
    up(lab, k)
    new, path = moved(lab, tmp_path)
    refused = []

    def refuse(op):
        if op.verb == "add" and getattr(op.res, "peer_netns", None) == "fk-b":
            refused.append(op.netns)
            return 1  # EPERM
        return None

    k.fail = refuse
    with pytest.raises(ApplyFailed) as info:
        lab_up.up(new, k, features=(), source=path, reconfigure=True)
    assert str(info.value).endswith("; rolled back, but for pod b, which it had begun to make anew: its old "
                                    f"namespace is gone (`{netlab_command('up --lab fk')}` makes it again, with its old "
                                    "address)"), str(info.value)
    assert refused == ["fk-n1", "fk-n2"]  # the new pod's veth on n1, then the old one's on n2, once
    assert "fk-b" not in k.ns and "fk-b" not in state_mod.load_state(lab.name).netns
    assert "missing: namespace fk-b" in status(lab, k).drift
    k.fail = lambda op: None
    up(lab, k)  # what the message says
    assert status(lab, k).ok and b_address(k) == ["10.244.1.3/24", "fk-n2"]


def test_containers_that_cannot_start_in_a_pod_made_again_are_named(lab, tmp_path):
    """The pod is back but its container cannot start: the error names it (not another pod's, which failed
    before the run too), rather than a plain "rolled back"."""
    from netlab.feature import StartResult

    class Failing(Containers):
        def start(self, lab, state, early=None):
            super().start(lab, state, early)
            return StartResult(failed=["pod a container web: could not start: gone", "pod b container web: could "
                                       "not start: No such file or directory"])

    k = FakeKernel()
    up(lab, k)
    new, path = moved(lab, tmp_path)
    with pytest.raises(ApplyFailed) as info:
        lab_up.up(new, k, features=(Failing(),), source=path, reconfigure=True, journal=Journal(k, fault_at=2))
    assert str(info.value).endswith("; rolled back, but for pod b container web: could not start: No such file or "
                                    f"directory, in the pods it made again (`{netlab_command('up --lab fk')}` starts "
                                    "them)")
    assert status(lab, k).ok


def test_a_pod_made_again_starts_only_what_ran_in_it_and_nothing_in_other_pods(lab, tmp_path):
    """The rollback that makes pod b again starts b's containers, not the lab's: a container a user had stopped
    in pod a stays stopped. The features' lab-wide start is not called; their start_again is, for b alone, with
    what ran in b before the run stopped it (taken before that stop)."""
    class PerPod(Containers):
        def __init__(self):
            super().__init__()
            self.again: list[tuple[list[str], object]] = []

        def running(self, state, netns_names):
            return {"taken before the stop of": list(netns_names), "stopped then": list(self.stopped)}

        def start_again(self, lab, state, netns_names, running):
            from netlab.feature import StartResult

            self.again.append((list(netns_names), running))
            return StartResult()

    k = FakeKernel()
    up(lab, k)
    new, path = moved(lab, tmp_path)
    feature = PerPod()
    with pytest.raises(ApplyFailed, match="; rolled back$"):
        lab_up.up(new, k, features=(feature,), source=path, reconfigure=True, journal=Journal(k, fault_at=3))
    assert "fk-b" in feature.stopped and status(lab, k).ok
    assert feature.started == []  # no lab-wide start: pod a's stopped container stays stopped
    assert feature.again == [(["fk-b"], {"taken before the stop of": ["fk-b"], "stopped then": []})]


def test_the_containers_of_a_pod_made_again_are_those_that_ran_in_it(monkeypatch):
    """workload/again.py: what ran in pod b (web) starts again; what did not (side, exited) keeps its record as it
    was and is held down; pod a is not looked at."""
    from types import SimpleNamespace

    from netlab.workload import again

    monkeypatch.setattr(again, "why_replace", lambda crec, argv, netns, uts: crec.get("why"))
    pods = {"a": {"netns": "fk-a", "containers": {"web": {"argv": ["x"], "why": "it had exited"}}},
            "b": {"netns": "fk-b", "uts": "/u/b", "created": 7.0,
                  "containers": {"web": {"argv": ["x"]}, "side": {"argv": ["y"], "why": "it had exited"}}}}
    was = again.running(pods, ["fk-b"])
    assert list(was) == ["b"] and was["b"]["running"] == ["web"]
    pods.pop("b")  # the run's stop dropped b's records
    lab = SimpleNamespace(pods=[SimpleNamespace(name="a", netns="fk-a"), SimpleNamespace(name="b", netns="fk-b")])
    only, hold = again.put_back(lab, pods, ["fk-b"], was)
    assert only == {"b"}
    assert pods["b"] == {"created": 7.0, "containers": {"side": {"argv": ["y"], "why": "it had exited"}}}
    pod_b = SimpleNamespace(name="b")
    assert hold(pod_b, SimpleNamespace(name="side"), {}, "it had exited") == again.NOT_RUNNING
    assert hold(pod_b, SimpleNamespace(name="web"), {}, "never started") is None


def test_a_repair_stopped_leaves_what_the_pod_had_before_it_in_the_namespace_it_made_again(lab):
    """Pod b's namespace deleted by hand (its containers run on in the old sandbox), then a repair stopped by
    SIGTERM once it had made the namespace again. Its rollback stopped pod b by name, as `down` does: the old
    sandbox's containers, its UTS namespace, records and logs went, though the run had not made them. Now the
    rollback deletes the namespace it made and stops only what runs in it (the features' stop_made)."""
    class Stops(Containers):
        def __init__(self):
            super().__init__()
            self.made: list[str] = []

        def stop_made(self, state, netns_names):
            self.made += netns_names
            return []

    k = FakeKernel()
    up(lab, k)
    k.delete_netns("fk-b")
    for at in range(2, 12):
        feature = Stops()
        try:
            lab_up.up(lab, k, features=(feature,), journal=Journal(k, signal_at=at))
        except rollback.Interrupted:
            pass
        else:
            break
        assert "fk-b" not in k.ns and "fk-b" not in feature.stopped, (at, feature.stopped)
        if feature.made:
            assert feature.made == ["fk-b"], (at, feature.made)
            break
    else:
        raise AssertionError("no run was stopped after it made fk-b again")


def test_a_name_another_process_takes_before_the_rollback_makes_the_pod_again_is_left_to_it(lab, tmp_path):
    """The rollback makes pod b's namespace again, and finds its name taken (EEXIST): another process made a
    namespace of that name after the run deleted b's. That namespace is the other's: the rollback leaves it where
    it is (it deleted it, as the half-made pod of its own it would have been), and names b as not back."""
    k = FakeKernel()
    up(lab, k)
    new, path = moved(lab, tmp_path)
    real_create, refused = k.create_netns, []

    def refuse(op):
        if op.verb == "add" and getattr(op.res, "peer_netns", None) == "fk-b":
            refused.append(op.netns)
            return 1  # EPERM: the run fails after b's old namespace went
        return None

    def create(name, tag, sysctls):  # the rollback's: after the refusal, with b's namespace gone again
        if refused and name == "fk-b" and not k.netns_exists(name) and "another's" not in k.ns:
            real_create(name, "another's tag", ())  # the other process, just before this one
            k.ns["another's"] = k.ns[name]
        return real_create(name, tag, sysctls)

    k.fail, k.create_netns = refuse, create
    with pytest.raises(ApplyFailed) as info:
        lab_up.up(new, k, features=(), source=path, reconfigure=True)
    assert "rolled back, but for pod b" in str(info.value), str(info.value)
    assert k.ns.get("fk-b") is k.ns["another's"] and k.ns["fk-b"].tag == "another's tag"
    assert "fk-b" not in state_mod.load_state(lab.name).netns
