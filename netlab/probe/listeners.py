"""Temporary echo listeners on the simulated internet's hosts, for the duration of one probe run.

Internet hosts run nothing of their own (plan/internet.py only builds their
namespace, address and route, and the workload starts containers in pods
only), so egress probes would have nobody to answer them. The prober starts
netlab's echo server (the pods' own program, workload/echo.py) on the echo
port, TCP and UDP, in each host's namespace for the run, and stops it after:

- one forked child per host: it joins the host's network namespace (only
  that one; nothing else of the process changes), binds, reports "ready" on a
  pipe and serves; its stdout and stderr go to /dev/null, so its request log
  never mixes with the prober's output;
- it dies with the prober (``PR_SET_PDEATHSIG``), and on its own after a
  bounded lifetime (``alarm``), so no listener outlives the run even if the
  prober is killed; ``netlab down`` would stop it anyway, as it stops every
  process in the lab's namespaces;
- a port that is already taken there is left alone: whatever listens answers
  the probes (and is judged like any server).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import time
from dataclasses import dataclass, field

from netlab.kernel import netns as nsmod
from netlab.kernel.child import die_with_parent
from netlab.kernel.processes import set_comm


@dataclass
class Listeners:
    """Echo listeners started in internet hosts' namespaces; ``stop()`` ends them all."""

    port: int
    started: dict[str, int] = field(default_factory=dict)  # host -> pid
    already: list[str] = field(default_factory=list)  # hosts where something listened on the port before
    errors: dict[str, str] = field(default_factory=dict)  # host -> why no listener runs there

    def stop(self) -> None:
        for host, pid in list(self.started.items()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            del self.started[host]

    def __enter__(self) -> "Listeners":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(hosts: list[tuple[str, str]], port: int, lifetime: float, ready_timeout: float = 5.0) -> Listeners:
    """Start an echo server on ``port`` (TCP and UDP) in each (host name, namespace); wait (bounded) until
    each listens. The caller must call ``stop()`` (or use the result as a context manager).

    Not netlab.kernel.child: a listener does not return a result, it reports
    "listening" on its pipe and then serves until it is killed.
    """
    out = Listeners(port)
    if hosts:
        from netlab.workload import echo  # noqa: F401 - loaded before the forks, not in each child (_serve's)
    pending: dict[int, tuple[str, int]] = {}  # read fd -> (host, pid)
    me = os.getpid()
    try:
        for host, netns in hosts:
            try:
                nsmod.netns_path(netns)
            except ValueError as exc:
                out.errors[host] = str(exc)
                continue
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _serve(host, netns, port, w, lifetime, me)  # never returns
            os.close(w)
            out.started[host] = pid
            pending[r] = (host, pid)
        deadline = time.monotonic() + ready_timeout
        buf: dict[int, bytes] = {fd: b"" for fd in pending}
        while pending:
            left = deadline - time.monotonic()
            poller = select.poll()
            for fd in pending:
                poller.register(fd, select.POLLIN)
            ready = [fd for fd, _ev in poller.poll(left * 1000)] if left > 0 else []
            if not ready:
                for fd, (host, _pid) in pending.items():
                    out.errors[host] = f"the echo listener did not report ready within {ready_timeout:g} s"
                    os.close(fd)
                pending.clear()
                break
            for fd in ready:
                chunk = os.read(fd, 4096)
                buf[fd] += chunk
                if chunk and b"\n" not in buf[fd]:
                    continue
                host, pid = pending.pop(fd)
                os.close(fd)
                msg = buf[fd].decode(errors="replace").strip()
                if msg == "R":
                    continue
                if msg == "B":
                    out.already.append(host)
                else:
                    out.errors[host] = msg[2:] if msg.startswith("E ") else "the echo listener died at start"
        for host in list(out.errors) + out.already:
            pid = out.started.pop(host, None)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
    except BaseException:
        out.stop()
        raise
    return out


def _serve(host: str, netns: str, port: int, report: int, lifetime: float, parent: int) -> None:
    """In the forked child: join the host's namespace, listen, report, serve until killed."""
    from netlab.workload.echo import EchoLoop, Log, Served, listen  # loaded by start(), before the fork

    code = 1
    try:
        if not die_with_parent(parent):  # the prober died before it could be asked
            os._exit(1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.alarm(max(1, int(lifetime)))
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.closerange(3, report)
        os.closerange(report + 1, 1 << 16)
        nsmod.join(netns)
        set_comm(f"probe-echo {host}"[:15])
        try:
            socks = listen([(port, "TCP"), (port, "UDP")])
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                os.write(report, b"B\n")
                os._exit(0)
            raise
        os.write(report, b"R\n")
        os.close(report)
        report = -1
        loop = EchoLoop()
        loop.serve(Served(host, host, Log(1, own=False)), socks)  # its request log goes to /dev/null
        while True:
            loop.run_once()
    except BaseException as exc:  # noqa: BLE001 - reported to the prober
        if report >= 0:
            try:
                os.write(report, f"E {type(exc).__name__}: {exc}\n".replace("\n", " ").strip().encode() + b"\n")
            except OSError:
                pass
    os._exit(code)
