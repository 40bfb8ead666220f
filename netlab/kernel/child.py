"""A function run in a forked child, its result returned through a pipe, every wait bounded.

Why a child: a thread can change namespace and come back, but some work must
not leave a trace in the caller: the prober's agent, which joins a lab
namespace for the whole run, a process that detaches from the CLI
(``setsid``), or several cores working at once (the prober's workers).

The child pickles ``fn``'s return value (or the exception it raised, with its
traceback in words) behind an 8-byte length, writes it to a pipe and exits
with ``os._exit`` (no atexit handlers, no buffers flushed twice). The parent
reads exactly that many bytes, so a grandchild that inherited the pipe never
keeps it waiting; at the deadline, or when the wait is interrupted (Ctrl-C),
it kills the child (SIGKILL) and says so. A child with something of its own to
undo (the prober's agent sweeps the neighbour entries its probes made) is
given ``grace`` seconds: SIGTERM first, SIGKILL once they are over.

Not for everything that forks: a long-lived child that reports "listening"
and then serves (the prober's echo listeners, probe/listeners.py), or the
echo launcher, a fresh small interpreter that forks hundreds of servers
(workload/launch.py), speak a line protocol of their own.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import time
from typing import Any, Callable

from netlab.kernel import libc
from netlab.kernel import netns as nsmod

PR_SET_PDEATHSIG = 1
LENGTH = struct.Struct("=Q")


class ChildError(Exception):
    """A child did not return a result: it raised something that cannot be sent back, or never answered."""


class ChildTimeout(ChildError):
    """The child was still running at the deadline; it was killed."""


class ChildDied(ChildError):
    """The child ended without a result (killed by a signal, or exited on its own)."""


class Child:
    """A forked child running one function; :meth:`result` waits for its answer."""

    def __init__(self, pid: int, fd: int, what: str, grace: float = 0.0):
        self.pid, self.fd, self.what, self.grace = pid, fd, what, grace

    def result(self, timeout: float) -> Any:
        """``fn``'s return value, or its exception raised here (its traceback as a note).

        Raises ChildTimeout after ``timeout`` seconds (the child is killed),
        ChildDied when the child ended without an answer. Either way, and at
        Ctrl-C, a child with a ``grace`` gets SIGTERM and that long to end first.
        """
        try:
            data = self._read(time.monotonic() + timeout)
        except ChildTimeout:
            self._end(self.grace)
            raise ChildTimeout(f"{self.what} did not finish within {timeout:g} s; killed it") from None
        except BaseException:  # Ctrl-C while waiting: the child goes too, and leaves no zombie
            self._end(self.grace)
            raise
        finally:
            os.close(self.fd)
        status = os.waitpid(self.pid, 0)[1]
        if data is None:
            raise ChildDied(f"{self.what} ended without a result ({_how(status)})")
        try:
            ok, value, text = pickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - an unreadable answer is no answer
            raise ChildDied(f"{self.what} sent a result that cannot be read: {exc}") from None
        if ok:
            return value
        value.add_note(f"in {self.what} (pid {self.pid}):\n{text}")
        raise value

    def interrupt(self) -> None:
        """SIGTERM: a child that turns it into an answer (the prober's workers) sends that; :meth:`result`
        reads it, within its timeout."""
        self._signal(signal.SIGTERM)

    def stop(self) -> None:
        """Its result is not wanted: kill the child, reap it, close the pipe."""
        self._end()
        os.close(self.fd)

    def _end(self, grace: float = 0.0) -> None:
        """Kill the child and reap it; with a ``grace``, SIGTERM first and up to that long for it to end.

        A second Ctrl-C during the grace kills it at once."""
        try:
            if grace > 0:
                self._signal(signal.SIGTERM)
                pidfd = os.pidfd_open(self.pid)
                try:
                    readable(pidfd, grace)  # a pidfd is readable once its process has ended
                finally:
                    os.close(pidfd)
        finally:
            self._signal(signal.SIGKILL)
            os.waitpid(self.pid, 0)

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)  # not reaped yet: the pid is still this child's
        except ProcessLookupError:
            pass

    def _read(self, deadline: float) -> bytes | None:
        """LENGTH + payload from the pipe; None at end of file before all of it came."""
        buf = bytearray()
        want = LENGTH.size
        while len(buf) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not readable(self.fd, left):
                raise ChildTimeout(self.what)
            chunk = os.read(self.fd, min(1 << 20, want - len(buf)))
            if not chunk:
                return None
            buf += chunk
            if want == LENGTH.size and len(buf) == want:
                want += LENGTH.unpack(buf)[0]
        return bytes(buf[LENGTH.size:])


def die_with_parent(parent: int) -> bool:
    """In a forked child: SIGKILL when the parent (its pid before the fork) dies; False if it already has.

    The kernel sends it when the thread that forked ends, and clears it in the child's own children."""
    libc.handle().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent


def start_child(fn: Callable[..., Any], args: tuple = (), netns: str | None = None, what: str = "a child",
                grace: float = 0.0) -> Child:
    """Fork; the child joins ``netns`` (if given), runs ``fn(*args)`` and sends back what came of it.

    The child dies with this process: its result would have no reader. A probe agent that dies (SIGKILLed
    after its grace at Ctrl-C, by `netlab down`) takes its workers with it; they went on probing in the lab's
    namespaces, holding neighbour entries outside any run's budget, until their share was done."""
    parent = os.getpid()
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: never returns, whatever is raised where (a signal's exception)
        ok = False
        try:
            os.close(r)
            if not die_with_parent(parent):
                os._exit(1)  # the parent is gone already
            if nsmod.thread_name() == nsmod.VISITOR:  # forked inside netns.entered(): this child is no visitor
                nsmod.name_thread(b"netlab-child")
            try:
                if netns is not None:
                    nsmod.join(netns)
                answer = (True, fn(*args), "")
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                import traceback  # here: a child that fails is rare, and a probe's agent starts sooner

                answer = (False, _sendable(exc), traceback.format_exc())
            _hold_off_stop_signals()  # the parent's SIGTERM (its grace) must not cut the answer short
            try:
                payload = pickle.dumps(answer)
            except Exception as exc:  # noqa: BLE001 - a result that cannot be pickled
                payload = pickle.dumps((False, ChildError(f"cannot send the result back: {exc}"), ""))
            write_all(w, LENGTH.pack(len(payload)) + payload)
            ok = answer[0]
        finally:
            os._exit(0 if ok else 1)
    os.close(w)
    return Child(pid, r, what, grace)


def run_in_child(fn: Callable[..., Any], args: tuple = (), netns: str | None = None, timeout: float = 60.0,
                 what: str = "a child", grace: float = 0.0) -> Any:
    """``fn(*args)`` in a forked child (in namespace ``netns``), its result here within ``timeout`` seconds
    (``grace``: see :meth:`Child._end`)."""
    return start_child(fn, args, netns, what, grace).result(timeout)


def _hold_off_stop_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread (a fork keeps only the thread that forked: not expected)
            pass


def _sendable(exc: BaseException) -> Exception:
    """The exception itself if it can cross the pipe and be raised here as an error, else a ChildError."""
    if isinstance(exc, Exception):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # noqa: BLE001 - an exception that does not survive pickling
            pass
    # KeyboardInterrupt, SystemExit: the child's ending, not the parent's
    return ChildError(f"{type(exc).__name__}: {exc}")


def write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` to ``fd`` (os.write may write less than it was given: a pipe, a signal)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        try:
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        except ValueError:
            return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def readable(fd: int, timeout: float) -> bool:
    """``fd`` has something to read within ``timeout`` seconds (poll(2): descriptors past 1,024 too)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000))
