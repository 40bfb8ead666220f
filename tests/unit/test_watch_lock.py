"""`netlab up --watch` and the lab's lock (no root): whom a wait names, the watcher's line for it, the file read
once the lab is held, and the built-in default's watcher beside a dict lab of its name.

LabLock printed its own "waiting for pid N (netlab ...) to release lab X" in the watcher's log, outside its
"saw: ...; did: ..." form, naming the pid the lock file's text named: a process that took the lock last, not
the one holding it when that one took a shared flock (which writes no name). The watcher's apply of a changed
file read the file before it took the lab's lock; and a watcher of the built-in default guarded a dict lab given
the default's name as its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
import types

import pytest

from helpers import two_node
from netlab.api import watch_converge, watch_repair
from netlab.api.topology import load
from netlab.api.watch import Watcher
from netlab.errors import LabBusy, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.realize import state_dir
from netlab.realize import lab_lock
from netlab.realize.state import LabState, load_state

LAB = "wlock"

HOLD = r"""
import fcntl, os, sys, time
from netlab.realize.state_dir import lab_dir, LOCK_FILE
from netlab.realize.lab_lock import LabLock
lab, how, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if how == "shared":  # as `up --watch` asks whether the lab is held: a shared flock, no name written
    fd = os.open(os.path.join(lab_dir(lab), LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    print("held", flush=True)
    time.sleep(seconds)
else:
    with LabLock(lab, how):
        print("held", flush=True)
        time.sleep(seconds)
"""


@contextlib.contextmanager
def holder(how: str, seconds: float = 30.0):
    """Another process holding the lab's lock: ``how`` "shared", or LabLock's command ("netlab up")."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, LAB, how, str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def stale_name(root, text: str) -> None:
    """The lock file's text, as a holder gone since left it."""
    (root / LAB / state_dir.LOCK_FILE).write_text(text + "\n")


def test_a_wait_never_names_a_pid_the_file_names_that_does_not_hold_the_lab(state_root, caplog):
    """The holder took a shared flock: the file still names the process that took the lock last (here this one,
    as the watcher's own first apply named itself). The wait names the holder the kernel shows."""
    caplog.set_level(logging.WARNING, logger="netlab")
    with holder("shared") as proc:
        stale_name(state_root, f"pid {os.getpid()} (netlab up)")
        with pytest.raises(LabBusy) as err:
            with lab_lock.LabLock(LAB, "netlab up", wait=lab_lock.QUIET_FOR + 0.5):  # told, then busy
                pass
        assert f"pid {os.getpid()} " not in str(err.value)
        assert f"lab {LAB} is in use by pid {proc.pid} (python" in str(err.value), str(err.value)
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and said[0].startswith(f"waiting for pid {proc.pid} (python"), said
        assert lab_lock.lab_lock_holder(LAB) is None  # a shared flock is not a command changing the lab
    stale_name(state_root, "pid 1 (netlab up)")  # nobody holds it now: nobody is named
    fd = os.open(state_root / LAB / state_dir.LOCK_FILE, os.O_RDONLY)
    try:
        from netlab import lockfile

        assert lockfile.holder(fd) is None and lockfile.holder_of(fd) == lockfile.UNKNOWN
    finally:
        os.close(fd)


def test_a_plain_wait_names_the_netlab_command_that_holds_the_lab(state_root, caplog):
    caplog.set_level(logging.WARNING, logger="netlab")
    with holder("netlab up", seconds=0.5) as proc:
        with lab_lock.LabLock(LAB, "netlab down"):
            pass
    assert [r.getMessage() for r in caplog.records] == [f"waiting for pid {proc.pid} (netlab up) to release lab {LAB}"]


def test_a_quiet_lab_lock_tells_nothing_and_keeps_whom_it_waited_for(state_root, caplog):
    caplog.set_level(logging.WARNING, logger="netlab")
    with lab_lock.LabLock(LAB, "netlab up", quiet=True) as lock:
        pass
    assert lock.waited is None and lock.waited_for is None  # nobody held it: no wait
    with holder("netlab up", seconds=0.5) as proc:
        with lab_lock.LabLock(LAB, "netlab up", quiet=True) as lock:
            pass
    assert not caplog.records
    assert lock.waited_for == f"pid {proc.pid} (netlab up)" and 0.2 < lock.waited < 10, lock.waited


def test_the_watchers_repair_says_in_its_line_whom_it_waited_for(state_root, monkeypatch, caplog):
    """Its line, not LabLock's: "saw: ...; waited 0.5s for pid N (netlab up) to release the lab; did: ..."."""
    caplog.set_level(logging.WARNING, logger="netlab")
    topo = {"name": LAB, "nodes": [{"name": "n"}], "pods": [{"name": "a", "node": "n"}]}
    read = LabState(lab=LAB, run_id="r", topology=topo, source="/t.yaml", phase="up")
    monkeypatch.setattr(watch_repair, "LiveKernel", lambda: types.SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(watch_repair, "load_state", lambda name: read)
    monkeypatch.setattr(watch_repair, "drift", lambda state: ["missing: route 10.244.1.0/24"])
    monkeypatch.setattr(watch_repair.lab_up, "up_held", lambda *a, **k: lab_up.UpResult(
        lab=LAB, fixed=["replace route 10.244.1.0/24 in wlock-n"]))
    monkeypatch.setattr(watch_converge, "load_state", lambda name: read)  # read by the round after its repair
    monkeypatch.setattr(Watcher, "_apply", lambda self, work: work())
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    monkeypatch.setattr(Watcher, "_relisten", lambda self, lab_, made, own=(), heard=(): [])
    lines: list[str] = []
    w = Watcher("/t.yaml", LAB, lines.append)
    w.kids = types.SimpleNamespace(track=lambda *a: None)
    with holder("netlab up", seconds=0.5) as proc:
        w._converge(read, ["route 10.244.1.0/24 deleted in wlock-n"])
    assert not caplog.records  # LabLock's own line: none
    assert len(lines) == 1, lines
    saw, waited, did = lines[0].split("; ")
    assert saw == "saw: route 10.244.1.0/24 deleted in wlock-n (missing: route 10.244.1.0/24)"
    assert waited.startswith("waited ") and waited.endswith(f"s for pid {proc.pid} (netlab up) to release the lab")
    assert did.startswith("did: replace route 10.244.1.0/24 in wlock-n in ")


FILE = """name: {name}
nodes:
  - {{name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - {{name: {pod}, node: n1}}
"""


def watched(path, monkeypatch) -> tuple[Watcher, list[str]]:
    """Lab LAB up from ``path`` (pods a and b) on a fake kernel, and its watcher, which has applied the file: its
    lines."""
    path.write_text(FILE.format(name=LAB, pod="b"))
    kernel = FakeKernel()
    kernel.close = lambda: None  # type: ignore[method-assign]
    loaded = load(str(path))
    lab_up.up(loaded.lab, kernel, (), loaded.source)
    monkeypatch.setattr(watch_repair, "LiveKernel", lambda: kernel)
    monkeypatch.setattr("netlab.doctor.required", lambda lab, moot=(): contextlib.nullcontext())
    monkeypatch.setattr("netlab.api.lifecycle.live_kernel", lambda: kernel)
    monkeypatch.setattr("netlab.doctor.require_for", lambda lab: None)
    monkeypatch.setattr(Watcher, "features", lambda self, checked=False: [])
    monkeypatch.setattr(Watcher, "_relisten", lambda self, lab_, made, own=(), heard=(): [])
    lines: list[str] = []
    w = Watcher(str(path), LAB, lines.append)
    w.kids = types.SimpleNamespace(track=lambda *a: None)
    w.file_id = w._file_id()
    return w, lines


def test_a_changed_file_is_read_once_the_watcher_holds_the_lab(state_root, tmp_path, monkeypatch):
    """The file edited again (or the lab changed by another command) while the watcher waited for the lab's
    lock: it applies the file as it is then, not its reading from before the lock; its id is that reading's."""
    path = tmp_path / "t.yaml"
    w, lines = watched(path, monkeypatch)
    path.write_text(FILE.format(name=LAB, pod="c"))  # the edit the watcher sees
    enter = lab_lock.LabLock.__enter__

    def edited_meanwhile(lock):  # the next edit, saved while the watcher waits for the lab
        if not path.read_text().endswith("name: d, node: n1}\n"):
            time.sleep(0.01)  # another mtime, whatever the file system's granularity
            path.write_text(FILE.format(name=LAB, pod="d"))
        return enter(lock)

    monkeypatch.setattr(lab_lock.LabLock, "__enter__", edited_meanwhile)
    w._file_changed()
    state = load_state(LAB)
    assert state is not None and [p["name"] for p in state.topology["pods"]] == ["a", "d"], lines
    assert w.file_id == watch_repair.file_id(str(path))  # nothing left for the next look
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"saw: {path} changed; did: created 1 namespace; removed {LAB}-b"), lines


def test_a_save_begun_as_the_watcher_reads_the_file_is_read_again_once_its_writer_closes_it(state_root, tmp_path,
                                                                                             monkeypatch):
    """A save that truncates the file, then writes it in parts (an editor's in-place save of a larger file), began
    while the watcher waited for the lab's lock: its first part, a valid topology without the save's last pod, was
    applied as the user's edit (pod b removed, and re-made once the save was done). That read is said nothing of,
    and the file is read again once its writer closes it (the kernel's close event)."""
    path = tmp_path / "t.yaml"
    w, lines = watched(path, monkeypatch)
    w.writes.watch(str(path))  # the kernel's events of the file (inotify needs no root)
    whole = FILE.format(name=LAB, pod="b") + "  - {name: c, node: n1}\n"  # the save: pod c added
    cut = whole.index("  - {name: b")  # its first part: pod a alone
    enter = lab_lock.LabLock.__enter__
    writer = []

    def save_begins(lock):  # the save's first part written while the watcher waits for the lab; still open
        if not writer:
            writer.append(open(path, "w"))
            writer[0].write(whole[:cut])
            writer[0].flush()
        return enter(lock)

    monkeypatch.setattr(lab_lock.LabLock, "__enter__", save_begins)
    try:
        w._file_changed()
        state = load_state(LAB)
        assert state is not None and [p["name"] for p in state.topology["pods"]] == ["a", "b"], lines
        assert lines == []
        writer[0].write(whole[cut:])
    finally:
        writer[0].close()
    assert w.writes.read() and w.writes.ready(w.file_id, w._file_id())  # closed: looked at now
    w._file_changed()
    state = load_state(LAB)
    assert state is not None and [p["name"] for p in state.topology["pods"]] == ["a", "b", "c"], lines
    assert len(lines) == 1 and lines[0].startswith(f"saw: {path} changed; did: "), lines
    assert w.file_id == watch_repair.file_id(str(path))

def saved(topology, name: str) -> LabState:
    loaded = load(topology, name)
    return LabState(lab=name, run_id="r", topology=loaded.lab.topo.model_dump(mode="json", by_alias=True,
                                                                              exclude_none=True),
                    source=loaded.source, phase="up")


def test_a_watcher_of_the_built_in_default_stops_when_a_dict_lab_takes_its_name(state_root):
    """The state keeps no file for the built-in default nor for a dict: the watcher told them apart by nothing,
    and guarded the dict's pods as its own lab, saying nothing."""
    lines: list[str] = []
    w = Watcher(None, "demo", lines.append)
    default = saved(None, "demo")
    assert not w._replaced(default)
    pods = default.topology["pods"]
    impaired = LabState(lab="demo", run_id="r", phase="up", topology={  # `netlab impair fedora-1:eth0 --delay ...`
        **default.topology, "pods": [{**pods[0], "impair": {"eth0": {"delay": "10ms"}}}, *pods[1:]]})
    assert not w._replaced(impaired) and not lines
    other = saved(two_node("demo"), "demo")
    assert other.source is None
    assert w._replaced(other) and w.stop
    assert lines == ["saw: lab demo reconfigured from a dict by another netlab up; did: stop watching (the built-in "
                     "default no longer describes it)"]
    assert w.replaced == ("stopped watching lab demo: it is up from a dict now, and stays up "
                          f"(`{netlab_command('up --watch --lab demo')}` watches it)")
    # Its repair, waiting for the lab's lock while that up made it: not applied over the dict's lab
    with pytest.raises(watch_repair.NotFollowed):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(watch_repair, "LiveKernel", lambda: types.SimpleNamespace(close=lambda: None))
            mp.setattr(watch_repair, "load_state", lambda name: other)
            watch_repair.repair(default, default.resolved(), w._follows, False, [], [])



def test_a_command_that_held_the_lab_since_the_watchers_last_look_is_named_once(state_root):
    """QA qw 1: `netlab break endpoint-pod-down` stops an echo container and lets the lab go; the watcher, woken by
    the container's exit a moment later, found nobody holding the lab and named nobody. Whoever took the lab's lock
    since its last look and let it go is named (once); one holding it now is not yet (it is waited for); the
    watcher's own apply is nobody's."""
    w = Watcher(None, LAB, log=lambda line: None)
    with lab_lock.LabLock(LAB, "netlab up"):  # the watcher's first apply (this process)
        (state_root / LAB / "state.json").write_text("{}")  # the lab is up: its folder stays
    w.lock_stamp = lab_lock.lab_lock_stamp(LAB)
    assert w.lock_stamp is not None and w._held_since() is None
    with holder("netlab break endpoint-pod-down", seconds=0.3) as proc:
        assert w._held_since() is None  # at work: _wait_for_other waits for it
        proc.wait()
    assert w._held_since() == f"pid {proc.pid} (netlab break endpoint-pod-down)"
    assert w._held_since() is None  # said by that round, not by the next
    with lab_lock.LabLock(LAB, "netlab up"):  # the watcher's own repair
        pass
    assert w._held_since() is None
