"""QA q52 1 and 3: what is left of a command container's run when its first process has exited is its session's
processes that carry the run's id in their environment (processes.run_members), killed until none is left.

3: a session id is not a run: once the container's pid is handed out again, a daemon whose session leader had it
(started with `netlab exec` in the pod) has that session id, and `up`'s stop_rest stopped it.
1: the echo server scanned once and killed what it found, so a process forked between the scan and the kill lived on.
"""

from __future__ import annotations

import os
import select
import subprocess
import time

from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.workload import stopping
from netlab.workload.echo import EchoLoop
from netlab.workload.echoserver import EchoServer

TOKEN = "cd" * 16
MARK = f"NETLAB_CONTAINER_ID={TOKEN}"


def test_up_stops_only_the_runs_processes_not_a_session_that_took_its_id(monkeypatch):
    """Fake /proc: the container's first process (pid 100) is gone; 301 is the run's background server (its
    session, its id); 300 is a daemon started by `netlab exec` whose session leader got pid 100 again and exited:
    the same session id, no run id. Only 301 is stopped."""
    table = {300: (90, 100, set()), 301: (60, 100, {MARK.encode()}), 302: (70, 555, {MARK.encode()})}
    monkeypatch.setattr(proc, "_pids", lambda: sorted(table))
    monkeypatch.setattr(proc, "start_time", lambda pid: table[pid][0] if pid in table else None)
    monkeypatch.setattr(proc, "session", lambda pid: table[pid][1] if pid in table else None)
    monkeypatch.setattr(proc, "environ_has", lambda pid, entry: entry in table.get(pid, (0, 0, set()))[2])
    monkeypatch.setattr(proc, "ns_identity", lambda path: (1, 1))
    # the fake table's pids are processes, not threads (on the machine, tid 100 may be a thread of another)
    monkeypatch.setattr(proc, "thread_group", lambda tid: tid if tid in table else None)
    stopped: list[int] = []

    def terminate(pids, still_ours, **kw):
        stopped.extend(pid for pid in pids if still_ours(pid))
        return []

    monkeypatch.setattr(kill, "terminate", terminate)
    crec = {"argv": ["sh"], "pid": 100, "start": 50, "id": TOKEN}
    stopping.stop_rest(crec, "ss-pod")
    assert stopped == [301]
    stopped.clear()
    stopping.stop_rest({k: v for k, v in crec.items() if k != "id"}, "ss-pod")  # no run id recorded: nothing
    assert stopped == []


def _exited(pid: int) -> bool:
    """Whether the process (a pidfd opened on it) has exited, waiting at most 5 s for the kill to land."""
    fd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(5000))
    finally:
        os.close(fd)


def test_the_echo_server_kills_what_a_member_forked_after_its_scan_and_only_the_runs(tmp_path, monkeypatch):
    """Real processes: the container's shell started two sleeps of its run and one without its id (as a
    `netlab exec` process has none), then exited. The first /proc scan misses the second sleep (forked after it);
    the server scans again after its kill and kills that one too; the process without the run's id lives."""
    out = tmp_path / "pids"
    main = subprocess.Popen(["sh", "-c", f"sleep 60 & a=$!; sleep 60 & b=$!; env -u NETLAB_CONTAINER_ID sleep 60 & "
                                         f"echo $a $b $! > {out}.tmp; mv {out}.tmp {out}; exec sleep 60"],
                            start_new_session=True, env={**os.environ, "NETLAB_CONTAINER_ID": TOKEN})
    pids: list[int] = []
    try:
        while not out.exists():
            os.sched_yield()
        pids = [int(x) for x in out.read_text().split()]
        first, late, stranger = pids
        # `env -u` drops the id only when it execs sleep: until then the stranger's /proc environ is the shell's,
        # mark included, and it is (rightly) one of the run's processes. The test is about one that has none.
        deadline = time.monotonic() + 5
        while proc.environ_has(stranger, MARK.encode()) and time.monotonic() < deadline:
            os.sched_yield()
        assert not proc.environ_has(stranger, MARK.encode())
        leader = proc.ProcId(main.pid, proc.start_time(main.pid) or 0)
        assert all(proc.session(p) == main.pid for p in pids)
        server = EchoServer(EchoLoop(), None)
        fd = os.pidfd_open(main.pid)
        assert list(server.hold([{"id": "p/main", "pid": main.pid, "start": leader.start, "mark": MARK}],
                                [fd])) == ["K p/main"]
        main.kill()
        main.wait()
        real, scans = proc._pids, []

        def pids_seen() -> list[int]:  # the first scan is made before `late` is forked
            scans.append(1)
            return [p for p in real() if len(scans) > 1 or p != late]

        monkeypatch.setattr(proc, "_pids", pids_seen)
        server.end_exited()
        assert _exited(first) and _exited(late)
        assert proc.running(stranger)
        server.drop("p/main")
    finally:
        for pid in pids:
            if proc.running(pid):
                os.kill(pid, 9)
        if main.poll() is None:
            main.kill()
            main.wait()
