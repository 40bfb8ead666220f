"""`netlab up --watch` of a lab whose conflist is edited in place while its pods run (cni/edited.py): the watcher's
repair is a plain up, which refuses such a lab, so every resync logged the same "repair failed" and backed off, for
ever. The kubelet leaves running pods on the config they were attached with; the watcher says once what changed and
the one command that re-attaches them (`up -t FILE --reconfigure`: `up --watch` takes no --reconfigure), then says
nothing more of it until something else changes; a reconfigure by that command ends it. The real plugins:
tests/integration/test_cni_edited_live.py."""

from __future__ import annotations

from pathlib import Path

from netlab.api import watch_repair
from netlab.api.watch import Watcher
from netlab.cni import edited, lifecycle
from netlab.errors import netlab_command
from netlab.feature import ModuleFeature
from netlab.lab import status as lab_status
from netlab.realize.lab_lock import lab_lock_stamp
from netlab.realize.state import load_state
from test_cni_edited import up, world  # noqa: F401 - the fixture: lab fked up, its conflist edited since


def reconfigure() -> str:
    """The lab came from no file (status names FILE alike); under the test's state folder (errors.netlab_command)."""
    return netlab_command("up --lab fked --reconfigure")  # no file: the lab by name


def test_the_watcher_says_once_that_the_conflist_changed_and_how_to_re_attach(world, monkeypatch):  # noqa: F811
    lab, k, plugins, path = world
    monkeypatch.setattr(watch_repair, "drift", lambda state: lab_status.status(
        state, k, [ModuleFeature(lifecycle)]).drift)
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    applied = []

    def apply(self, work):  # what the repair's plain up does with the lab: refused (UsageError)
        applied.append(work)
        edited.check(lab, load_state(lab.name), False)

    monkeypatch.setattr(Watcher, "_apply", apply)
    lines: list[str] = []
    w = Watcher(None, lab.name, lines.append)
    w.lock_stamp = lab_lock_stamp(lab.name)  # as the watcher's start looks at it
    for _ in range(3):  # three resyncs
        assert w._converge(load_state(lab.name), []) is None
    assert applied == [] and w.retry_at is None  # no repair tried, none backing off
    assert lines == [
        f"saw: a periodic check (cni: conflist {path} changed since pods a, b were attached with it: their CHECK runs "
        f"with the config they were attached with; `{reconfigure()}` re-attaches them with the new one); did: nothing: "
        f"a plain up refuses a lab whose pods were attached with a config edited since; `{reconfigure()}` re-attaches "
        f"them (this watcher follows it), or put the old config back; until then the watcher repairs nothing of the "
        f"lab"]
    w._converge(load_state(lab.name), ["route deleted in fked-n1"])  # the same drift: nothing new to say
    assert len(lines) == 1
    up(lab, k, reconfigure=True)  # the command the line named
    w.lock_stamp = lab_lock_stamp(lab.name)  # the round that saw it let go of the lab looked (_held_since)
    w._converge(load_state(lab.name), [])
    assert len(lines) == 1 and w.refused is None and applied == []
    Path(path).write_text(Path(path).read_text().replace('"new"', '"newer"'))
    w._converge(load_state(lab.name), [])  # edited again: said again
    assert len(lines) == 2 and "pods a, b were attached with it" in lines[1] and applied == []


def test_other_drift_is_repaired_as_before(world, monkeypatch):  # noqa: F811
    lab, k, plugins, path = world
    up(lab, k, reconfigure=True)
    monkeypatch.setattr(watch_repair, "drift", lambda state: ["missing: route 10.244.1.0/24 in fked-n1"])
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    applied = []
    monkeypatch.setattr(Watcher, "_apply", lambda self, work: applied.append(work) or (load_state(lab.name), lab,
                                                                                        None))
    w = Watcher(None, lab.name, [].append)
    w._converge(load_state(lab.name), [])
    assert len(applied) == 1


def test_what_another_command_holding_the_lab_does_meanwhile_is_not_said(world, monkeypatch):  # noqa: F811
    """Read while another command (the `up --reconfigure` the line names) holds the lab, the drift is its work half
    done (a pod detached, the others not yet): no line, the next round looks again once it is done."""
    import netlab.api.watch_converge as converge_mod  # where the watcher's round looks the holder up

    lab, k, plugins, path = world
    monkeypatch.setattr(watch_repair, "drift", lambda state: lab_status.status(
        state, k, [ModuleFeature(lifecycle)]).drift)
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    monkeypatch.setattr(converge_mod, "lab_lock_holder", lambda name: "pid 1 (netlab up)")
    lines: list[str] = []
    w = Watcher(None, lab.name, lines.append)
    w._converge(load_state(lab.name), ["link eth0 down in fked-a"])
    assert lines == [] and w.pending == ["link eth0 down in fked-a"] and w.refused is None
