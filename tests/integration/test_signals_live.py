"""Real signals sent to a real `netlab` process, as `timeout`, systemd and a CI job's cancel send them.

SIGTERM was left to its default: wherever up was outside its rollback's own handlers (loading, planning, an
`up --watch` before its loop), the program died silently with status 143. Now SIGTERM stops a netlab command
as Ctrl-C does: a plain `up` in progress is rolled back, one line says so, and the exit status is the signal's
convention (143 for SIGTERM, 130 for SIGINT); a watcher that watches lets its repair finish and ends as a
daemon asked to stop does, its line naming the signal, exit 0, the lab up. Each test waits for the moment it
wants by reading the process's own output or the kernel's view of it (/proc/PID/status), never by a blind
sleep, and checks the kernel afterwards: the lab fully up or fully gone, no process left in its namespaces.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
import uuid

import pytest

from netlab.errors import down_command
from helpers import NETLAB, lab_down, lab_namespaces, netlab, state_path, unique_lab, wait_for, write_topology
from netlab.kernel import processes
from watching import Watcher, residents

pytestmark = pytest.mark.root

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def topology(lab: str, tag: str, pods: int = 2) -> str:
    """Two nodes and ``pods`` pods, each with an echo container and a command whose argv is this test's."""
    rows = "".join(f"  - {{name: p{i}, node: n{i % 2 + 1}, containers: [{{name: web}}, "
                   f"{{name: main, command: [sleep, '{tag}']}}]}}\n" for i in range(pods))
    return f"name: {lab}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n{rows}"


def handles_sigterm(pid: int) -> bool:
    """The process has a handler for SIGTERM, as the kernel shows it (SigCgt of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            caught = next(int(line.split()[1], 16) for line in fh if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(caught & (1 << (signal.SIGTERM - 1)))


class Namespaces:
    """Every namespace of a lab seen while a run goes on (its identity: device and inode), recorded in a thread,
    so that afterwards a process still in one of them is found although the namespace has no name any more."""

    def __init__(self, lab: str):
        self.lab, self.seen, self._done = lab, set(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            for name in lab_namespaces(self.lab):
                try:
                    st = os.stat(f"/run/netns/{name}")
                except OSError:
                    continue
                self.seen.add((st.st_dev, st.st_ino))
            time.sleep(0.005)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(5)

    def residents(self) -> list[str]:
        """The processes with a thread in one of those namespaces now (/proc/PID/task/TID/ns/net). A namespace's
        inode number is reused once it is freed: one that another lab's namespace has now (it has a name in
        /run/netns, as the lab's own have not any more) is that lab's, not a leftover."""
        named = set()
        for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
            try:
                st = os.stat(f"/run/netns/{name}")
            except OSError:
                continue
            named.add((st.st_dev, st.st_ino))
        mine = self.seen - named
        out = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    st = os.stat(f"/proc/{pid}/task/{tid}/ns/net")
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in mine:
                    out.append(f"{pid} {' '.join(processes.cmdline(int(pid)))}")
                    break
        return out


def processes_with(text: str) -> list[str]:
    """Processes whose command line holds ``text`` (this test's container argv, the lab's echo socket)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv and pid != str(os.getpid()):
            out.append(f"{pid} {argv}")
    return out


def assert_gone(lab: str, tag: str, seen: Namespaces) -> None:
    """The kernel's view of a lab rolled back: no namespace, no state, no process of it anywhere."""
    assert lab_namespaces(lab) == []
    assert not os.path.exists(state_path(lab)), os.listdir(state_path(lab))
    assert wait_for(lambda: not seen.residents(), 5), seen.residents()
    assert processes_with(tag) == [] and processes_with(f"/{lab}/echo.sock") == []


@pytest.mark.parametrize("watch", [False, True], ids=["up", "up-watch"])
def test_sigterm_while_up_loads_is_one_line_and_143_and_changes_nothing(tmp_path, watch):
    """Sent once the program handles SIGTERM (the kernel says so), while Python still loads it: it died
    silently with 143 wherever it was."""
    lab, tag = unique_lab("sg"), f"{86400 + uuid.uuid4().int % 1000}"
    path = write_topology(tmp_path, topology(lab, tag))
    proc = subprocess.Popen(NETLAB + ["up", "-t", path] + (["--watch"] if watch else []),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: handles_sigterm(proc.pid), 10, step=0.001)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        lab_down(lab)
    assert proc.returncode == 143, (out, err)
    assert err == "netlab: interrupted by SIGTERM\n" and out == "", (out, err)
    assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"])
def test_a_signal_while_up_changes_the_kernel_rolls_it_back(tmp_path, sig):
    """`up` on a terminal, its progress bar on stderr: once the bar says it makes namespaces, the signal. The
    run is rolled back whole, one line says so, exit 143 (SIGTERM), 130 (SIGINT) or 129 (SIGHUP: it killed the
    program where it stood, the lab half made)."""
    lab, tag = unique_lab("sg"), f"{86400 + uuid.uuid4().int % 1000}"
    path = write_topology(tmp_path, topology(lab, tag, pods=24))
    seen = Namespaces(lab)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(NETLAB + ["up", "-t", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=follower, env={**os.environ, "COLUMNS": "100"})
    os.close(follower)
    said = b""
    try:
        deadline = time.monotonic() + 60
        while b"namespaces" not in ANSI.sub(b"", said) and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.05)[0]:
                said += os.read(leader, 4096)
        assert b"namespaces" in ANSI.sub(b"", said), said
        # the bar names the namespaces' step as it begins: the signal once the first of them is there (the
        # terminal read meanwhile, so that the bar's writes never wait)
        while not seen.seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.005)[0]:
                said += os.read(leader, 4096)
        assert seen.seen, said
        proc.send_signal(sig)
        while True:  # the rest of what it says, until it closes the terminal
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: nobody holds the terminal's other side any more
                break
            if not chunk:
                break
            said += chunk
        out = proc.communicate(timeout=60)[0]
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
        seen.stop()
        lab_down(lab)
    lines = [line.strip() for line in re.split(rb"[\r\n]+", ANSI.sub(b"", said)) if line.strip().startswith(b"netlab:")]
    name = signal.Signals(sig).name
    assert lines == [f"netlab: interrupted by {name}; rolled back".encode()], said
    assert proc.returncode == 128 + sig and out == b"", (proc.returncode, out)
    assert seen.seen, "no namespace of the lab was ever made"
    assert_gone(lab, tag, seen)


def test_a_terminal_closed_while_up_changes_the_kernel_rolls_it_back_unsaid(tmp_path):
    """`up` in a session of its own whose controlling terminal is a pty, its output (stdout and stderr) on it, as
    over ssh: once the progress bar says it makes namespaces the terminal goes away (its other side closed, as a
    dropped ssh connection's sshd does). The kernel hangs the terminal up: SIGHUP to the session's leader, and
    every write to the terminal fails (EIO) from then on. The run is rolled back whole all the same, exit 129;
    before, SIGHUP's default killed it there, the lab half made ("ended before it finished (killed)")."""
    lab, tag = unique_lab("sg"), f"{86400 + uuid.uuid4().int % 1000}"
    path = write_topology(tmp_path, topology(lab, tag, pods=24))
    seen = Namespaces(lab)
    leader, follower = pty.openpty()
    terminal = os.ttyname(follower)

    def own_terminal() -> None:  # after setsid (start_new_session): the first terminal opened is the session's
        fd = os.open(terminal, os.O_RDWR)
        os.close(fd)

    proc = subprocess.Popen(NETLAB + ["up", "-t", path], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, env={**os.environ, "COLUMNS": "100"}, start_new_session=True,
                            preexec_fn=own_terminal)
    os.close(follower)
    said = b""
    try:
        deadline = time.monotonic() + 60
        while b"namespaces" not in ANSI.sub(b"", said) and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.05)[0]:
                said += os.read(leader, 4096)
        assert b"namespaces" in ANSI.sub(b"", said), said
        # the bar names the namespaces' step as it begins: the signal once the first of them is there (the
        # terminal read meanwhile, so that the bar's writes never wait)
        while not seen.seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.005)[0]:
                said += os.read(leader, 4096)
        assert seen.seen, said
        os.close(leader)  # the terminal hangs up
        leader = -1
        code = proc.wait(timeout=60)
    finally:
        if leader >= 0:
            os.close(leader)
        if proc.poll() is None:
            proc.kill()
        seen.stop()
        lab_down(lab)
    assert code == 128 + signal.SIGHUP, (code, said)
    assert seen.seen, "no namespace of the lab was ever made"
    assert_gone(lab, tag, seen)


def test_sigterm_lets_the_watchers_repair_finish_and_ends_it_with_the_lab_up(tmp_path):
    """A watcher restarting a killed container: the signal comes as the new container starts (it says so in
    a file), mid-repair. The repair is finished and said, the watcher says it stopped on SIGTERM and exits 0;
    the lab is as the file says, the new container runs in its pod, and nothing of the watcher is left."""
    lab = unique_lab("sg")
    marks = tmp_path / "started"
    path = write_topology(tmp_path, f"""name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    containers:
      - {{name: main, command: [sh, -c, "echo $$ >> {marks}; exec sleep infinity"]}}
""")
    watcher = Watcher(path, resync="60")
    try:
        first = int(marks.read_text().split()[0])
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: len(marks.read_text().split()) == 2, 20, step=0.001), watcher.lines
        watcher.proc.send_signal(signal.SIGTERM)
        assert watcher.proc.wait(30) == 0, "\n".join(watcher.lines)
        watcher._reader.join(5)
    finally:
        if watcher.proc.poll() is None:
            watcher.proc.kill()
    try:
        new = int(marks.read_text().split()[1])
        assert "did: restarted container a/main" in watcher.lines[-2], "\n".join(watcher.lines)
        assert watcher.lines[-1].endswith(f"stopped watching lab {lab} (SIGTERM); it stays up (`{down_command(lab)}` "
                                          "takes it down)"), watcher.lines[-1]
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        inside = residents(f"{lab}-a", watcher)
        assert inside == [f"{new} sleep infinity"], inside
        assert processes_with(" ".join(NETLAB[1:] + ["up", "-t", path])) == []  # the watcher and what it forked
    finally:
        lab_down(lab)
