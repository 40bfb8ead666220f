"""Launching echo containers: one launcher process (echo.py --spawn) forks them all; wait until they listen.

See netlab/workload/echo.py for the launcher's side of the report pipe.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

from netlab.kernel import processes as proc

READY_TIMEOUT = 5.0  # seconds up waits for echo servers to listen, all together


def launch_echo(specs: list[dict]) -> subprocess.Popen:
    """Start one launcher (echo.py --spawn) that forks an echo container per spec.

    A fresh interpreter on purpose, not a fork of this process (as
    netlab.kernel.child makes): 500 forks of a small new process copy small
    page tables and nothing of the CLI's (its lock file, threads and netlink
    sockets), and the launcher streams a line per server as each listens,
    where run_in_child brings back one result at the end.
    """
    launcher = subprocess.Popen([sys.executable, "-I", "-m", "netlab.workload.echo", "--spawn"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                close_fds=True, start_new_session=True, cwd="/")
    assert launcher.stdin
    try:
        launcher.stdin.write(json.dumps(specs).encode())
        launcher.stdin.close()
    except BrokenPipeError:
        pass
    return launcher


def await_echo(launcher: subprocess.Popen, specs: list[dict], pods: dict) -> list[str]:
    """Wait, bounded, until every launched echo container listens; record their pids.

    The report pipe is read to its end: it closes when the launcher (after its
    last ``P`` line) and every child (after its ``R`` or ``E`` line) have
    closed it. Stopping at the last "ready" instead once closed the pipe while
    the launcher still had a pid to report: the launcher died of a broken pipe
    and a listening server went unrecorded (so every later ``up`` met "Address
    already in use"). Only at the deadline is the pipe closed early; then the
    launcher is killed first and what it and the children wrote is still read.
    """
    problems: list[str] = []
    pids: dict[str, int] = {}
    ready: set[str] = set()
    errors: dict[str, str] = {}
    assert launcher.stdout and launcher.stderr
    deadline = time.monotonic() + READY_TIMEOUT + 0.002 * len(specs)
    out, err = _read_reports(launcher, deadline)
    for line in out.split(b"\n"):
        kind, _, rest = line.decode(errors="replace").partition(" ")
        cid, _, arg = rest.partition(" ")
        if kind == "P" and arg.isdigit():
            pids[cid] = int(arg)
        elif kind == "R":
            ready.add(cid)
            if arg.isdigit():
                pids[cid] = int(arg)  # the child's own word: it may come before the launcher's
        elif kind == "E":
            errors[cid] = arg
    err_text = err.decode(errors="replace").strip()
    for spec in specs:
        cid = spec["id"]
        pod, cname = cid.split("/", 1)
        crec = pods[pod]["containers"][cname]
        pid = pids.get(cid)
        started = proc.start_time(pid) if pid else None
        if pid and started is not None:
            crec.update(pid=pid, start=started)
        if cid in errors or started is None:
            why = errors.get(cid) or (err_text.splitlines()[-1] if err_text else "exited at once")
            crec["error"] = why
            problems.append(f"pod {pod} container {cname}: could not start the echo server: {why}")
        elif cid not in ready:
            problems.append(f"pod {pod} container {cname}: echo server not listening after "
                            f"{READY_TIMEOUT:.0f} s; see `netlab logs {pod} -c {cname}`")
    return problems


def _read_reports(launcher: subprocess.Popen, deadline: float) -> tuple[bytes, bytes]:
    """What the launcher and its children write on stdout and stderr, until both close or the deadline.

    stderr too: a child that fails before it redirects its output reports there,
    and it holds that pipe open as long as it lives.
    """
    assert launcher.stdout and launcher.stderr
    out_fd, err_fd = launcher.stdout.fileno(), launcher.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    open_fds = set(bufs)

    def read_some(timeout: float) -> bool:
        """One select round; False when nothing came within ``timeout``."""
        readable = select.select(list(open_fds), [], [], max(0.0, timeout))[0]
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                bufs[fd] += chunk
            else:
                open_fds.discard(fd)
        return bool(readable)

    while open_fds and time.monotonic() < deadline:
        read_some(deadline - time.monotonic())
    if launcher.poll() is None:
        launcher.kill()  # stuck past the deadline; its children are in sessions of their own
    launcher.wait()
    while open_fds and read_some(0):  # what was written before the kill
        pass
    launcher.stdout.close()
    launcher.stderr.close()
    return bytes(bufs[out_fd]), bytes(bufs[err_fd])
