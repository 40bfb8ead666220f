"""What the `netlab up --watch` tests share (test_watch.py, test_watch_restarts.py): the watcher's lab, a
watcher run as a user runs it, and the containers' processes as the lab's state and the kernel see them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from typing import Callable, Iterator


from helpers import NETLAB, lab_down_here, state_path
from netlab import Lab
from netlab.errors import LabBusy
from netlab.kernel import processes

BACKOFF = "0.5"


def topology(name: str, extra: str = "") -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
  - name: node-2
pods:
  - name: a
    node: node-1
    containers:
      - name: main
        command: [sleep, infinity]
  - name: b
    node: node-2
    restartPolicy: Never
    containers:
      - name: main
        command: [sleep, infinity]
{extra}"""


def jobs_topology(name: str, seconds: float) -> str:
    """The watcher's lab and two OnFailure pods whose command runs ``seconds``: job exits 0, crash 3."""
    return topology(name, "".join(f"""\
  - name: {pod}
    node: {node}
    restartPolicy: OnFailure
    containers:
      - name: main
        command: [sh, -c, "sleep {seconds:g}; exit {code}"]
""" for pod, node, code in (("job", "node-1", 0), ("crash", "node-2", 3))))


class Watcher:
    """``netlab up -t FILE --watch`` (``path`` None: ``up --watch --lab LAB``) in a process of its own; its lines,
    as they come."""

    def __init__(self, path: str | None, env: dict | None = None, resync: str = "2", wait: bool = True,
                 backoff: str = BACKOFF, lab: str | None = None, held: bool = False,
                 argv: Callable[[list[str]], list[str]] = list):
        """``held``: its stdin a pipe, which its pause hook (NETLAB_FAULT_MODE=pause in ``env``) waits on until
        :meth:`resume`. ``argv``: the command line as run (PrivateMounts.argv: in a mount namespace of the test's)."""
        self.lines: list[str] = []
        which = ["-t", path] if path is not None else ["--lab", str(lab)]
        self.proc = subprocess.Popen(argv(NETLAB + ["up", *which, "--watch", "--restart-backoff", backoff,
                                                    "--resync", resync]), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if held else None, text=True,
                                     env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_for_line("saw: lab ", timeout=60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def drained(self) -> list[str]:
        """Every line, once the watcher has ended: its last ones may still be in the pipe when it exits."""
        assert self.proc.poll() is not None
        self._reader.join(5)
        return self.lines

    def wait_for_line(self, text: str, timeout: float = 10.0, after: int = 0) -> str:
        return self._wait(lambda line: text in line, f"no line with {text!r}", timeout, after)

    def wait_for_event(self, event: str, timeout: float = 10.0, after: int = 0, found: bool = False) -> str:
        """The line whose ``saw:`` list reports ``event``: the watcher joins the events of one batch with
        "; " ("saw: link eth0 up in X; namespace deleted in Y (drift); did: ..."), and an event of an
        earlier change (a link coming up after a repair) may arrive in the same batch, before it. ``found``: or
        in the parentheses after it, what the line's comparison with the plan found that no notification said
        ("saw: container b/main exited (exit 137) (container a/main exited (exit 137)); did: ..."): the exits of
        two threads killed together are read in either order, one notification at a time."""
        seen = re.compile(r"saw: (?:[^;]*; )*?" + re.escape(event))

        def matches(line: str) -> bool:
            return seen.search(line) is not None or (found and event in line.split("; did: ")[0])

        return self._wait(matches, f"no saw: line reporting {event!r}", timeout, after)

    def _wait(self, matches, missing: str, timeout: float, after: int) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if matches(line):
                    return line
            if self.proc.poll() is not None:  # ended: what it printed last may still be in the pipe
                line = next((line for line in self.drained()[after:] if matches(line)), None)
                assert line is not None, "the watcher ended:\n" + "\n".join(self.lines)
                return line
            time.sleep(0.02)
        raise AssertionError(f"{missing} within {timeout} s:\n" + "\n".join(self.lines))

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The watcher stopped (SIGSTOP) until the block ends (SIGCONT, whatever happens in it): a back-off that
        ends meanwhile, a resync, restart nothing and take no lock, so what other commands read of the lab then is
        no work of the watcher's half done. Entered once every thread of it has stopped (waitid, the state
        change not consumed: Popen still reaps the watcher's exit)."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
            assert info is not None and info.si_code == os.CLD_STOPPED, f"the watcher did not stop: {info}"
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def resume(self) -> None:
        """A watcher ``held`` at its pause hook goes on, and passes it from then on (its stdin closed)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self) -> int:
        self.resume()  # held at its pause hook, it would not end its repair, nor the loop
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the watcher did not stop on SIGINT:\n" + "\n".join(self.lines))
        self._reader.join(5)
        return self.proc.returncode


@contextlib.contextmanager
def watching(lab: str) -> Iterator[Callable[..., Watcher]]:
    """``start(path, **Watcher's options)`` starts a watcher of ``lab`` and returns it once it watches. On the
    way out, whatever happened (a failed assertion, a watcher that never said it watches), every watcher
    started is stopped, then the lab taken down."""
    started: list[Watcher] = []

    def start(path: str | None, **options) -> Watcher:
        watcher = Watcher(path, wait=False, **options)
        started.append(watcher)  # stopped on the way out even if it never says it watches
        watcher.wait_for_line("saw: lab ", timeout=60)
        return watcher

    try:
        yield start
    finally:
        stuck = []
        for watcher in started:
            try:
                watcher.stop()
            except AssertionError as exc:  # it did not stop on SIGINT (killed then): the others still stop
                stuck.append(exc)
        lab_down_here(lab)  # the watcher is what these tests run as a user does, not `down`
        if stuck:
            raise stuck[0]


def as_planned(lab: str) -> bool:
    """`netlab status --lab LAB` exits 0, read in this process: the kernel as planned, and no other command (a
    watcher's repair) holding the lab meanwhile (the CLI's exit 3 then)."""
    try:
        return Lab(lab).status().ok
    except LabBusy:
        return False


def drift(lab: str) -> tuple[str, ...]:
    """`netlab status --lab LAB`'s drift lines, read in this process (a watcher's repair meanwhile: the CLI's exit 3,
    an AssertionError here)."""
    try:
        return Lab(lab).status().drift
    except LabBusy as exc:
        raise AssertionError(f"status of lab {lab}: {exc}") from exc


def container_pid(lab: str, pod: str) -> int | None:
    with open(state_path(lab, "state.json")) as fh:
        rec = json.load(fh)["extra"]["workload"]["pods"][pod]["containers"]["main"]
    return rec.get("pid")


def running(pid: int | None) -> bool:
    return pid is not None and processes.running(pid)


def residents(netns: str, watcher: "Watcher") -> list[str]:
    """The processes in a namespace (``ip netns pids``), with their command lines, but for the watcher and the
    readers it forks: they step into each namespace for a moment whenever they read the lab (a resync)."""
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    theirs = processes.cmdline(watcher.proc.pid)
    out = []
    for pid in listed:
        argv = processes.cmdline(int(pid))  # [] once it is gone
        if argv and argv != theirs:
            out.append(f"{pid} {' '.join(argv)}")
    return out


def wait_until(check, timeout: float, step: float = 0.01) -> float:
    """Seconds until ``check()`` held; AssertionError after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0
