"""The watcher's rounds without root: a deletion read with a repair's echo, a repair that converges, its lines in
words, each run's exit (restartPolicy and back-off: test_watch_backoff.py; the kernel's notifications and exit
records: test_watch_kernel_events.py)."""

from __future__ import annotations

import pytest

from netlab.api.watch import Watcher
from netlab.errors import netlab_command
from netlab.kernel import events
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.workload.tasks import EXITED, SANDBOX_REMADE


class _Queued:
    """A listener whose sockets had these notifications queued when the watcher listened again."""

    def __init__(self, namespaces, events_):
        self.namespaces, self.events, self.closed = sorted(namespaces), events_, False

    def drain(self):
        out, self.events = self.events, []
        return out

    def close(self):
        self.closed = True


def test_a_deletion_read_with_a_repairs_echo_is_said_with_the_repair_or_kept_for_the_next_round(monkeypatch):
    """The repair that made w-a again answered its deletion (said in its line); w-b's deletion came while the
    repair ran and w-b is still gone (kept: the next round repairs it); the rest is the repair's echo, which the
    next round checks once more (a change by hand may hide in it), and a namespace the lab no longer has is not
    its business."""
    import netlab.api.watch_listen as listen_mod

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: a, node: n}\n  - {name: b, node: n}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    names = ["w-underlay", "w-n", "w-a", "w-b"]  # every namespace of the lab
    old = _Queued(names, [events.Event("w-a", "namespace deleted"), events.Event("w-a", "namespace added"),
                          events.Event("w-b", "namespace deleted"), events.Event("w-n", "link cni0 up"),
                          events.Event("w-gone", "namespace deleted")])
    opened = []
    monkeypatch.setattr(listen_mod.kevents, "Listener", lambda ns: opened.append(sorted(ns)) or _Queued(ns, []))
    monkeypatch.setattr(listen_mod.nsmod, "is_netns_mount", lambda name: name == "w-a")
    w = Watcher(None, "w", lambda line: None)
    w.listener = old
    assert w._relisten(lab, ["w-a"]) == ["namespace deleted in w-a"]
    # ... and the rest, the repair's echo (or a change by hand in it), is read once more by the next round.
    assert w.pending == ["namespace deleted in w-b", "namespace added in w-a", "link cni0 up in w-n"]
    assert old.closed and opened == [sorted(names)]  # w-a is another namespace now: listened to anew
    # Nothing made: the sockets stay, and what they queued is sorted the same way.
    w.pending = []
    w.listener.events = [events.Event("w-b", "namespace deleted"), events.Event("w-a", "namespace deleted")]
    monkeypatch.setattr(listen_mod, "SETTLE", 0)
    assert w._relisten(lab, []) == [] and w.pending == ["namespace deleted in w-b"] and len(opened) == 1


def test_the_sockets_in_a_terminal_pods_namespace_go_once_it_is_gone_and_its_deletion_is_no_drift(monkeypatch):
    """A terminal pod whose stopped sandbox's namespace up removed (cni/terminated.py): the watcher listens there no
    more (a socket left in it kept the namespace alive, nameless, as long as the watcher ran), and the deletion
    its sockets queued is the repair's own, not a namespace to make again."""
    import netlab.api.watch_listen as listen_mod

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: a, node: n}\n  - {name: b, node: n}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml"))).with_terminal(frozenset({"a"}))
    old = _Queued(["w-underlay", "w-n", "w-a", "w-b"], [events.Event("w-a", "namespace deleted")])
    opened = []
    monkeypatch.setattr(listen_mod.kevents, "Listener", lambda ns: opened.append(sorted(ns)) or _Queued(ns, []))
    monkeypatch.setattr(listen_mod.nsmod, "is_netns_mount", lambda name: name != "w-a")
    monkeypatch.setattr(listen_mod, "SETTLE", 0)
    w = Watcher(None, "w", lambda line: None)
    w.listener = old
    assert w._relisten(lab, []) == [] and w.pending == []
    assert old.closed and opened == [sorted(["w-underlay", "w-n", "w-b"])]


def test_an_applys_own_deletion_of_a_moved_pods_namespace_is_not_said_as_seen(monkeypatch):
    """QA q39 5: an edit moved pod a to another node; the apply deleted w-a and made it again, and the watcher's
    line read "saw: t.yaml changed; namespace deleted in w-a". That deletion is its own work: one deletion of
    each namespace the apply remade is dropped; a second (someone else's, answered by the same apply) is said."""
    import netlab.api.watch_listen as listen_mod

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: a, node: n}\n  - {name: b, node: n}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    names = ["w-underlay", "w-n", "w-a", "w-b"]
    monkeypatch.setattr(listen_mod.kevents, "Listener", lambda ns: _Queued(ns, []))
    monkeypatch.setattr(listen_mod.nsmod, "is_netns_mount", lambda name: True)
    w = Watcher(None, "w", lambda line: None)
    w.listener = _Queued(names, [events.Event("w-a", "namespace deleted"), events.Event("w-a", "namespace added")])
    assert w._relisten(lab, ["w-a"], ["w-a"]) == [] and w.pending == ["namespace added in w-a"]
    w.pending = []
    w.listener = _Queued(names, [events.Event("w-a", "namespace deleted"), events.Event("w-b", "namespace deleted"),
                                 events.Event("w-a", "namespace deleted")])
    assert w._relisten(lab, ["w-a", "w-b"], ["w-a"]) == ["namespace deleted in w-b", "namespace deleted in w-a"]


def test_what_a_round_saw_while_a_retry_waits_is_said_by_the_retry(monkeypatch):
    """A check failed (a reader that failed, say) and waits 0.5 s; a deletion's notification
    wakes the watcher before that: the drift is not repaired yet, and what was seen is kept for the retry's
    line instead of being lost (which made the retry say "a periodic check")."""
    import types

    import netlab.api.watch as watch_mod

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: a, node: n}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    now = [100.0]
    lines: list[str] = []
    w = Watcher(None, "w", lines.append, clock=lambda: now[0])
    w.retry_at = now[0] + 0.5
    w.deferred = ["link cni0 up in w-n"]  # what the failed round saw
    state = types.SimpleNamespace(resolved=lambda: lab, extra={})
    monkeypatch.setattr(watch_mod.watch_repair, "drift", lambda state_: ["missing: namespace w-a"])
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    applied = []
    monkeypatch.setattr(Watcher, "_apply", lambda self, *a, **k: applied.append(a))
    assert w._converge(state, ["namespace deleted in w-a"]) is None
    assert not applied and not lines  # still backing off: nothing done, nothing said
    assert w.deferred == ["link cni0 up in w-n", "namespace deleted in w-a"]


@pytest.mark.parametrize("other, follows, drift, restart, repaired", [
    (None, True, [], False, "read"),  # nobody changed the lab since the check: the repair it decided
    ("b", True, [], False, None),  # another up made pod b's lab meanwhile, and left nothing to repair
    ("b", True, ["missing: route"], False, "now"),  # ... and left drift: repaired to what that up made
    ("b", True, [], True, "now"),  # ... a container to restart: restarted, in the lab that up made
    ("b", False, [], False, "refused"),  # another topology's lab: not repaired (the watcher stops)
])
def test_a_repair_converges_to_the_lab_as_it_is_once_it_holds_it(monkeypatch, other, follows, drift, restart,
                                                                  repaired):
    """Another `up` may take the lab's lock between the watcher's check and its repair: the repair reads the
    lab's state again once it holds the lock, and does not apply the lab as read before (it undid that up)."""
    import types

    from netlab.api import watch_repair
    from netlab.realize.state import LabState

    def topo(*pods: str) -> dict:
        return {"name": "w", "nodes": [{"name": "n"}], "pods": [{"name": p, "node": "n"} for p in pods]}

    read = LabState(lab="w", run_id="r", topology=topo("a"), source="/t.yaml", phase="up")
    now = LabState(lab="w", run_id="r", topology=topo("a", other) if other else topo("a"), source="/t.yaml",
                   phase="up")
    lab = resolve(validate_source(parse_yaml("name: w\nnodes: [{name: n}]\npods: [{name: a, node: n}]\n", "t")))
    applied: list = []
    monkeypatch.setattr(watch_repair, "LiveKernel", lambda: types.SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(watch_repair, "load_state", lambda name: now)
    monkeypatch.setattr(watch_repair, "drift", lambda state: drift)
    monkeypatch.setattr(watch_repair.lab_up, "up_held",
                        lambda lab_, k, f, source, heard=None: applied.append(lab_) or "done")
    if repaired == "refused":
        with pytest.raises(watch_repair.NotFollowed, match="made from another topology meanwhile"):
            watch_repair.repair(read, lab, lambda st: follows, restart, [], [])
        assert not applied
        return
    waited: list[str] = []
    state, lab_now, done = watch_repair.repair(read, lab, lambda st: follows, restart, [], waited)
    assert waited == []  # nobody held the lab
    if repaired is None:
        assert done is None and not applied and state is now
    else:
        assert done == "done" and applied == [lab_now]
        assert [p.name for p in lab_now.pods] == (["a", "b"] if repaired == "now" else ["a"])
        assert state is (now if repaired == "now" else read)


@pytest.mark.parametrize("saw, fixed, did", [
    # The exit the line saw is not said again by the restart (it read "... (it had exited with code 137)").
    (["container a/main exited (exit 137)"], ["restarted container a/main (it had exited with code 137)"],
     "restarted container a/main"),
    (["container e1/main exited (exit 137)", "container e2/main exited (exit 137)"],
     ["restarted container e1/main (it had exited)", "restarted container e2/main (it had exited)"],
     "restarted container e1/main; restarted container e2/main"),
    (["container a/main was stopped"], ["restarted container a/main (it was stopped)"], "restarted container a/main"),
    # What the restart adds stays: a code the watcher did not know, another container, a reason not seen.
    (["container a/main exited"], ["restarted container a/main (it had exited with code 3)"],
     "restarted container a/main (it had exited with code 3)"),
    (["container a/main exited (exit 1)"], ["restarted container a/main (it had exited with code 13)"],
     "restarted container a/main (it had exited with code 13)"),
    (["container a/main2 exited (exit 1)"], ["restarted container a/main (it had exited)"],
     "restarted container a/main (it had exited)"),
    (["a periodic check"], ["restarted container a/main (its command changed)"],
     "restarted container a/main (its command changed)"),
])
def test_a_watchers_line_says_a_containers_exit_once(saw, fixed, did):
    from netlab.api.watch_lines import did_words
    from netlab.lab.up import UpResult

    assert did_words(UpResult("l", fixed=fixed), "nothing to change", saw) == did


@pytest.mark.parametrize("made, words", [(["l-a"], "created 1 namespace"), (["l-a", "l-b"], "created 2 namespaces")])
def test_a_watchers_line_counts_namespaces_in_the_singular_and_plural(made, words):
    from netlab.api.watch_lines import did_words
    from netlab.lab.up import UpResult

    assert did_words(UpResult("l", created_netns=made), "nothing to change") == words


@pytest.mark.parametrize("why, alive, words", [
    ("it had exited", False, "exited"), ("it was stopped", True, "was stopped"),
    ("it had failed to start", False, "failed to start"), ("it had exited", True, "runs outside its pod's namespace"),
    (SANDBOX_REMADE, True, "runs outside its pod's namespace"),
])
def test_a_container_due_for_a_restart_in_the_watchers_words(why, alive, words):
    # A stopped container (SIGSTOP) lives in its pod: it was said to "run outside its pod's namespace".
    from netlab.api.watch_lines import state_words

    assert state_words(why, alive) == words


def test_a_container_that_cannot_start_is_said_by_the_apply_that_tried_it_not_by_every_repair_after():
    """A watcher's lines name each container that could not start (UpResult.failed) when an apply first finds
    it, and again when a restart tried it again; a repair of something else does not repeat it."""
    from netlab.lab.up import UpResult

    bad = "pod a container bad: could not start: [Errno 2] No such file or directory: '/nonexistent'"
    watcher = Watcher(None, "w", log=lambda line: None)
    assert watcher._did(UpResult("l", failed=[bad]), "it was up") == bad
    assert watcher._did(UpResult("l", fixed=["replace route x"], failed=[bad]), "nothing", ["route x deleted"]) \
        == "replace route x"
    assert watcher._did(UpResult("l", failed=[bad]), "nothing", ["container a/bad failed to start"]) == bad
    assert watcher._did(UpResult("l"), "nothing to change") == "nothing to change"  # it was fixed meanwhile


def test_an_exit_belongs_to_its_run_never_to_a_later_one(monkeypatch):
    """The watcher saw run (10, 100) of p/main exit 4; the record now names run (11, 200), which a plain `up`
    started and which exited unseen by the watcher. Its code is not 4: OnFailure asks the lab's echo server
    for that very run (0: completed, held), and the line says no code it does not know."""
    from netlab.api.watch_children import Children
    from netlab.workload import exits
    from netlab.workload.tasks import EXITED

    kids = Children()
    kids.exit_codes["p/main"] = ((10, 100), 4)
    old, new = {"pid": 10, "start": 100}, {"pid": 11, "start": 200}
    assert kids.exit_code("p/main", old) == 4 and kids.code("p/main", old) == " (exit 4)"
    assert kids.exit_code("p/main", new) is None and kids.code("p/main", new) == ""
    asked = []
    monkeypatch.setattr(exits, "exit_codes", lambda lab, records: asked.append(dict(records)) or {"p/main": 0})
    text = "name: w\nnodes: [{name: a}]\npods:\n  - {name: p, node: a, restartPolicy: OnFailure}\n"
    pod = resolve(validate_source(parse_yaml(text, "t.yaml"))).pods[0]
    watcher = Watcher(None, "w", log=lambda line: None)
    watcher.kids = kids
    c = pod.containers[0].model_copy(update={"command": ["sh", "-c", "exit 0"]})
    assert watcher.hold(pod, c, new, EXITED) == "restartPolicy OnFailure"
    assert asked == [{"p/main": new}] and kids.code("p/main", new) == " (exit 0)"


def test_each_exit_of_a_container_in_back_off_is_said_once_every_cycle(monkeypatch):
    """A container that exits at once (`sh -c "echo hi; exit 0"`, restartPolicy Always) with a 2 s back-off:
    every exit is one line ("exited ...; did: nothing (back-off: restart in Ns)") before its restart, in every
    cycle, not only the first; a round that sees the same exit again says nothing more. The watcher never saw
    the container run between a restart and its next exit, and kept the first cycle's "back-off" as said."""
    import types

    import netlab.api.watch_restart as wr
    from netlab.workload.tasks import EXITED

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: p, node: n, containers: [{name: s, command: [sh]}]}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    pod = lab.pods[0]
    now = [100.0]
    run = {"pid": 10, "start": 1}  # the container's record: this run's process
    exits: dict[int, float] = {}  # pid -> when it exited: when first seen
    w = Watcher(None, "w", log=lambda line: None, backoff_base=2, clock=lambda: now[0])
    w.kids = types.SimpleNamespace(reaped_now=lambda: None, reap_untracked=lambda key, crec: None,
                                   code=lambda key, crec: " (exit 0)", exit_code=lambda key, crec: 0,
                                   ask_lab=lambda *a: 0, exited_at=lambda key, crec: exits.setdefault(crec["pid"], now[0]))
    w.waiting = types.SimpleNamespace(hold=lambda waiting: None, restarted=lambda key: None)
    monkeypatch.setattr(wr.workload, "containers", lambda lab_, state: [(pod, pod.containers[0], dict(run))])
    monkeypatch.setattr(wr.workload, "why_replace", lambda crec, argv, netns: EXITED)  # never seen running
    monkeypatch.setattr(wr.tasks, "alive", lambda crec: False)

    def restart() -> None:  # what the apply does with a container _held names due: hold() commits, a new run
        assert w.hold(pod, pod.containers[0], dict(run), EXITED) is None
        run.update(pid=run["pid"] + 1, start=run["start"] + 1)

    said: list[str] = []
    for delay in (0.0, 2.0, 4.0, 8.0):  # the first restart at once, then 2 s doubling
        due, lines, next_due = w._held(lab, None)  # type: ignore[arg-type]
        if delay:
            assert due == [] and next_due is not None, (delay, due)
            said += lines
            assert w._held(lab, None)[1] == []  # type: ignore[arg-type]  # the same exit, seen again: said once
            now[0] = next_due
            due, lines, _ = w._held(lab, None)  # type: ignore[arg-type]
        assert due == ["container p/s exited (exit 0)"] and lines == [], (delay, due, lines)
        restart()
    assert said == [f"saw: container p/s exited (exit 0); did: nothing (back-off: restart in {d:.1f}s)"
                    for d in (2.0, 4.0, 8.0)]


def test_a_never_pods_container_the_watcher_stopped_is_not_said_again_as_its_exit(monkeypatch):
    """QA qw 4: the repair that made a Never pod's namespace again stopped its container ("stopped container nev/c
    (...; restartPolicy Never)"); its exit, read next, was said again: "saw: container nev/c exited (exit 0); did:
    nothing (restartPolicy Never)". Said once; a later run's exit is said."""
    import types

    import netlab.api.watch_restart as wr

    text = ("name: w\nnodes: [{name: n}]\npods:\n  - {name: nev, node: n, restartPolicy: Never, "
            "containers: [{name: c, command: [sh]}]}\n")
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    pod = lab.pods[0]
    run = {"pid": 10, "start": 1}
    w = Watcher(None, "w", log=lambda line: None, clock=lambda: 100.0)
    w.kids = types.SimpleNamespace(reaped_now=lambda: None, reap_untracked=lambda key, crec: None,
                                   code=lambda key, crec: " (exit 0)", exit_code=lambda key, crec: 0,
                                   ask_lab=lambda *a: 0, exited_at=lambda key, crec: 100.0)
    w.waiting = types.SimpleNamespace(hold=lambda waiting: None, restarted=lambda key: None)
    monkeypatch.setattr(wr.workload, "containers", lambda lab_, state: [(pod, pod.containers[0], dict(run))])
    monkeypatch.setattr(wr.workload, "why_replace", lambda crec, argv, netns: EXITED)
    monkeypatch.setattr(wr.tasks, "alive", lambda crec: False)
    assert w.hold(pod, pod.containers[0], dict(run, pid=run["pid"]), SANDBOX_REMADE) == "restartPolicy Never"
    assert w._held(lab, None)[1] == []  # type: ignore[arg-type]  # the repair's line said it
    run.update(pid=11, start=2)  # another run (a plain `up` after the pod went out of the file and back), exited
    assert w._held(lab, None)[1] == [  # type: ignore[arg-type]
        "saw: container nev/c exited (exit 0); did: nothing (restartPolicy Never)"]


def test_the_last_line_names_an_edit_of_the_file_that_no_apply_took(tmp_path):
    """The loop starts no apply once a signal came: an edit saved while a repair ran (or as Ctrl-C came) is said
    not applied, with the `up` that applies it; one applied (or said not valid: its id is the one read) is not."""
    path = tmp_path / "topo.yaml"
    path.write_text("name: w\n")
    w = Watcher(str(path), "w", lambda line: None)
    w.file_id = w._file_id()  # as the last apply read it
    assert w.unapplied() == ""
    path.write_text("name: w\nnodes: []\n")
    assert w.unapplied() == (f"; {path} changed since its last apply, not applied "
                             f"(`{netlab_command(f'up -t {path}')}` applies it)")
    assert Watcher(None, "w", lambda line: None).unapplied() == ""  # the built-in default: no file
    saved = Watcher(str(path), "w", lambda line: None, saved=True)
    assert saved.unapplied() == ""  # `up --watch --lab L`: no file followed


def test_a_watchers_line_names_the_processes_of_yours_a_removal_stopped_as_up_does():
    """qa55: a watcher that removed a pod said `warning: stopped a process of yours in l-b: 6730 (sleep 1010)`,
    where `up` says them beside what it removed."""
    from netlab.api.watch_lines import did_words
    from netlab.kernel.kill import Stopped
    from netlab.kernel.processes import ProcId
    from netlab.lab.up import UpResult

    done = UpResult("l", removed_netns=["l-b"], warnings=["something else"],
                    stopped=[Stopped(ProcId(6730, 1), "l-b", "sleep 1010")])
    assert did_words(done, "nothing to change") == \
        "removed l-b; also stopped 1 process of yours in them: 6730 sleep 1010 in l-b; warning: something else"
