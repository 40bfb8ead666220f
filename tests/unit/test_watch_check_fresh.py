"""`netlab up --watch` of a lab where one pod's chained plugin fails the CHECK of its own fresh ADD (review
cnicheck2 1): that pod's failure backed off every repair of the lab, doubling to 5 minutes (a route deleted by hand
on a node was repaired after 23.6 s, not at once), a known-stuck pod's line at each round counted as a new failure
(its back-off never ended), and the events of the round that found it were said again by each later line. Now the
hold is that pod's re-attach alone: other drift is repaired at once, the pod's same failure is no new one, and each
event is said once. Fake plugins, fake kernel; the real chain is tests/integration/test_cni_check_fresh_live.py's."""

from __future__ import annotations

from netlab.api import watch_repair
from netlab.api.watch import Watcher
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature, fresh_check_fix
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize.state import load_state
from test_cni_check_fresh import Saying
from test_cni_reattach import ADD_BOTH, DEL_BOTH, TOPO, up

ROUTE = "missing: route 10.244.1.0/24 in fkqc-n1"  # drift of the lab's own (a route deleted on a node)


def test_one_stuck_pod_holds_back_its_own_re_attach_alone(tmp_path, monkeypatch):
    plugins = Saying()
    from cni_fakes import cni_world, lab_of
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist={
            "cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", "capabilities": {"ipRanges": True}}]}):
        lab, k = lab_of(tmp_path), FakeKernel()
        up(lab, k)
        other: list[str] = []  # the lab's own drift, as a node's route deleted by hand
        monkeypatch.setattr(watch_repair, "drift", lambda state: other + lab_status.status(
            state, k, [ModuleFeature(lifecycle)]).drift)
        monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
        applied: list[str] = []

        def apply(self, work):  # the repair: a plain up of the lab on the fake kernel, which mends the route
            applied.append("up")
            other.clear()
            return load_state(lab.name), lab, up(lab, k)

        monkeypatch.setattr(Watcher, "_apply", apply)
        now = [100.0]
        lines: list[str] = []
        w = Watcher(None, lab.name, lines.append, backoff_base=10.0, clock=lambda: now[0])
        plugins.fail.add(("a", "chain", "CHECK"))
        plugins.calls.clear()
        w._converge(load_state(lab.name), ["link eth0 deleted in fkqc-a"])
        [first] = lines
        assert first.startswith("saw: link eth0 deleted in fkqc-a ") and "repair failed: pod a: CNI plugin chain's " \
            "CHECK fails on its own fresh ADD" in first and "retry in 10.0s" in first, first
        # what puts it right, as plain up's line and status say it (it said only that no ADD mends it), once
        assert first.endswith(f"(of pod a alone, for a failure other than this); {fresh_check_fix('chain')}"), first
        assert first.count('"disableCheck": true') == 1, first
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH
        # Within pod a's hold, a route deleted on the node is repaired at once; the round's line says its own event
        # alone, not the first round's again, and pod a's known failure neither again nor as a new one.
        now[0] += 1
        other.append(ROUTE)
        plugins.calls.clear()
        w._converge(load_state(lab.name), ["route deleted in fkqc-n1"])
        assert applied == ["up", "up"], lines
        assert lines[1].startswith("saw: route deleted in fkqc-n1") and "eth0" not in lines[1], lines[1]
        assert "repair failed" not in lines[1] and "fresh ADD" not in lines[1], lines[1]
        assert plugins.of("a") == []
        # Past the hold, pod a failing as right after its own fresh ADD is nothing to repair: no up, no line.
        now[0] += 60
        w._converge(load_state(lab.name), [])
        assert applied == ["up", "up"] and len(lines) == 2, lines
        # Its chain fails otherwise (drift): re-attached, and held again, longer; meanwhile the other drift is
        # repaired without re-attaching pod a, whose new failure waits for its hold.
        plugins.said["a"] = "route 10.96.0.0/12 is missing"
        w._converge(load_state(lab.name), [])
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH and "retry in 20.0s" in lines[2], lines[2]
        plugins.said["a"] = "route 10.96.0.0/12 is missing again"
        plugins.calls.clear()
        now[0] += 1
        other.append(ROUTE)
        w._converge(load_state(lab.name), ["route deleted in fkqc-n1"])
        assert len(applied) == 4 and plugins.of("a") == [], (applied, plugins.calls)
        assert "repair failed" not in lines[3], lines[3]
        now[0] += 20
        w._converge(load_state(lab.name), [])  # its hold is over: re-attached
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH and "retry in 40.0s" in lines[4], lines[4]
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_the_watchers_first_up_holds_back_a_pod_whose_chain_fails_its_fresh_add(tmp_path, monkeypatch):
    """The watcher's own first `up` re-attached pod a (its chain no longer matched it), and its CHECK failed that
    fresh ADD: the first line said the failure and "watching", and no hold began, so the next round's repair
    re-attached the pod again at once for any other failure of it (its back-off began only then). Now the first
    apply holds the pod back as a repair does, and says when it may be re-attached."""
    import types

    from netlab.api import watch as watch_mod

    plugins = Saying()
    from cni_fakes import cni_world, lab_of
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist={
            "cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", "capabilities": {"ipRanges": True}}]}):
        lab, k = lab_of(tmp_path), FakeKernel()
        up(lab, k)
        plugins.fail.add(("a", "chain", "CHECK"))  # a plugin upgraded under the lab: then the watcher starts
        plugins.calls.clear()
        # start()'s machine: the first apply is the fake kernel's up; no listener, no processes, no waits
        monkeypatch.setattr(watch_mod, "become_subreaper", lambda: None)
        monkeypatch.setattr(watch_mod, "stale", types.SimpleNamespace(watching=lambda name, on=True: None))
        monkeypatch.setattr(watch_mod, "load_running", lambda name: types.SimpleNamespace(
            lab=lab, source=None, origin="its saved topology"))
        monkeypatch.setattr(watch_mod, "lifecycle", types.SimpleNamespace(up=lambda lab_, source, features: up(lab_, k)))
        monkeypatch.setattr(Watcher, "exited_before", lambda self: {})
        monkeypatch.setattr(Watcher, "held_before", lambda self, lab_, state, before: "")
        monkeypatch.setattr(Watcher, "failed_starts", lambda self, lab_, state: [])
        monkeypatch.setattr(Watcher, "_relisten", lambda self, lab_, made, own=(), heard=(): [])
        monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
        monkeypatch.setattr(watch_repair, "drift", lambda state: lab_status.status(
            state, k, [ModuleFeature(lifecycle)]).drift)
        monkeypatch.setattr(Watcher, "_apply", lambda self, work: (load_state(lab.name), lab, up(lab, k)))
        now = [100.0]
        lines: list[str] = []
        w = Watcher(None, lab.name, lines.append, backoff_base=10.0, clock=lambda: now[0], saved=True)
        w.kids = types.SimpleNamespace(listen_for_exits=lambda: None, track=lambda lab_, state: None)
        w.listener = types.SimpleNamespace(drain=lambda: [])
        w.start()
        [first] = lines
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH  # the first up re-attached it once
        # worded as a later round's repair says it (the first line said "failed:" alone)
        assert "; repair failed: pod a: CNI plugin chain's CHECK fails on its own fresh ADD" in first, first
        assert f"retry in 10.0s (of pod a alone, for a failure other than this); {fresh_check_fix('chain')}; watching" \
            in first, first
        assert first.count("fresh ADD") == 1, first
        # Its chain then fails otherwise (drift): within the hold the round re-attaches nothing; past it, it does.
        plugins.said["a"] = "route 10.96.0.0/12 is missing"
        plugins.calls.clear()
        now[0] += 1
        w._converge(load_state(lab.name), [])
        assert plugins.of("a") == [], (plugins.calls, lines)
        now[0] += 10
        w._converge(load_state(lab.name), [])
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH and "retry in 20.0s" in lines[-1], lines[-1]
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
