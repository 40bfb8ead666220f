"""SIGINT, SIGTERM and SIGHUP handled alike for a block, and put back as they were after it.

SIGHUP (an ssh session dropped, a terminal closed: the kernel sends it to the terminal's foreground group) is
SIGTERM's twin everywhere: left to its default it killed an ``up`` where it stood (exit 129, the lab half made,
``netlab list``'s "ended before it finished") and a pytest run with its labs up. One the program's parent
ignored (``nohup``) stays ignored, as a SIGINT so ignored does (:func:`handled`).

``up`` turns them into its rollback (lab/up.py), the rollback and the pytest plugin's last take-down hold
them off (``signal.SIG_IGN``). ``down`` holds them until the lab is down (:func:`held`), then lets the first
take effect as the caller's handler says: a take-down cut short left a lab half down, its state and the
namespaces not yet unmounted behind (the CLI's Ctrl-C, the SIGTERM a library script turns into SystemExit).
Only the main thread may set a handler: in another one (``up --watch``
repairs in a thread of their own) the block runs with the process's handlers as they are.

The ``netlab`` program (launch.py) stops on SIGTERM as on Ctrl-C from its first line: a CI job's cancel,
``timeout`` and systemd send SIGTERM, which left to its default killed the program silently with status 143
wherever it was (a plain ``up`` while it loaded or planned, before its rollback's handlers were set; an ``up
--watch`` before its loop's). It raises :class:`Terminated`, a KeyboardInterrupt, which unwinds as Ctrl-C's
does: one line, and the exit status of the signal's convention, 128 + its number (130 SIGINT, 143 SIGTERM,
129 SIGHUP).
Its Ctrl-C is kept as its SIGTERM is (:func:`check`). An error that a stop signal's exception became (Python
wraps it in an import's dataclass, pydantic in a validator it builds) is that signal's too (:func:`stop_of`);
any other error is said as itself, also once a signal came. Once the program says how a signal ended it, a
second one is ignored (:func:`ending`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TERMINATING = (signal.SIGTERM, signal.SIGHUP)  # the stop signals said as Terminated (Ctrl-C's is KeyboardInterrupt)


@contextlib.contextmanager
def handled(handler: Any) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP go to ``handler`` (a function, or signal.SIG_IGN) for the block; one ignored as it
    begins stays ignored: a SIGINT the program's parent ignored (a job a shell script puts in the background, whose
    Ctrl-C is not its own; the program keeps it so: :func:`terminate_as_interrupt`), or inside a block that holds
    them off. Set over it, an ``up`` took that SIGINT for a stop and rolled back, and a ``down``'s CNI plugins were
    born with SIGINT at its default (QA: a DEL "killed by SIGINT" from the group's)."""
    old = {}
    for sig in STOPPING:
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: the signals are not this block's
            pass
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def held() -> Iterator[list[int]]:
    """SIGINT, SIGTERM and SIGHUP wait for the block (a bounded piece of work that must not stop halfway): each one that
    comes is recorded in the list yielded, and once the block is done and the caller's handlers are back, the
    first is sent again to this process (``signal.raise_signal``), so it takes effect as it would have without
    the block: the caller's handler raises its exception (KeyboardInterrupt, the CLI's :class:`Terminated`,
    a script's SystemExit) from here, SIG_DFL ends the process, SIG_IGN drops it. A second signal (a
    repeated Ctrl-C, the SIGTERM a CI runner sends after its SIGINT) only waits with the first. Not the main
    thread: the block runs with the process's handlers as they are, and nothing is recorded."""
    came: list[int] = []
    try:
        with handled(lambda signum, frame: came.append(signum)):
            yield came
    finally:  # also after the block's own error: the signal is the caller's word, its error then the context
        if came:
            signal.raise_signal(came[0])


class Kept(KeyboardInterrupt):
    """A stop signal's exception whose handler also kept the signal, so that it is raised again where the
    program next asks (:func:`check`, up's journal). Python drops such an exception when the handler ran inside
    an object's ``__del__``; the program's hook does not print it then (:func:`terminate_as_interrupt`).
    Each one made is remembered (:data:`_kept`): an error that names it in its words is what it became."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        _kept.append(self)


class Terminated(Kept):
    """SIGTERM (or SIGHUP: ``signum``), raised where the program was, as SIGINT raises KeyboardInterrupt."""

    exit_code = 128 + signal.SIGTERM

    def __init__(self, *args: object, signum: int = signal.SIGTERM) -> None:
        super().__init__(*args)
        self.signum = signum
        self.exit_code = 128 + signum


def exit_code(exc: BaseException) -> int:
    """The exit status of a stopped program: 128 + the signal's number (130 for a bare KeyboardInterrupt)."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, int) else 128 + signal.SIGINT


# The SIGTERMs the program's handler turned into Terminated. Python runs a handler wherever the main thread
# is: inside an object's __del__ (a Popen or a generator dropped) the exception is "ignored" (printed, then
# dropped), and the program went on as if no signal had come: an `up` signalled while it loaded brought the lab
# up and exited 0 (a CI flake). :func:`check` raises it again where the program asks.
_raised: list[int] = []
_program: list[bool] = []  # the netlab program's process (terminate_as_interrupt), not a library's caller
_kept: list[BaseException] = []  # the Kept exceptions made: what a wrapper may name


def raise_terminated(signum: int, frame: object) -> None:
    """The program's handler of SIGTERM and SIGHUP (and of SIGINT: :func:`raise_interrupt`): kept, then raised."""
    _raised.append(signum)
    if signum == signal.SIGHUP:
        quiet_hung_up()
    raise stopped_by(signum)


def quiet_hung_up() -> None:
    """The descriptors that lead to a terminal that hung up (SIGHUP's cause: an ssh session dropped, a window
    closed) go to /dev/null from now on: each write there fails with EIO (the kernel's hung-up terminal), and a
    failed write, where nothing guards it (pytest's reporter, a command's result on stdout), stopped what was to
    follow it (pytest's own end: exit 1 for its 2). Every descriptor, not only standard output and error: pytest's
    capture keeps the terminal in one of its own while the run's output goes to a file, and puts it back at the
    end. A hung-up terminal is a character device that polls POLLHUP, as no file, pipe (a pipe with no reader:
    POLLERR, cli/endings.py) or pty master whose terminal is open does; pty masters (/dev/ptmx, major 5) are left
    alone (a test's own). Nobody reads that terminal any more: nothing is lost."""
    import os
    import select
    import stat

    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = [1, 2]
    for fd in fds:
        try:
            st = os.fstat(fd)
            if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) == 5:
                continue
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            if not any(event & select.POLLHUP for _fd, event in poller.poll(0)):
                continue
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.dup2(null, fd, inheritable=os.get_inheritable(fd))
            finally:
                os.close(null)
        except OSError:
            continue


def raise_interrupt(signum: int, frame: object) -> None:
    """The program's Ctrl-C: Python's KeyboardInterrupt (said ``interrupted``), kept as SIGTERM is. Python's own
    handler kept nothing: a Ctrl-C while the program loaded whose exception a finalizer swallowed (an import's
    module-lock callback, "Exception ignored in ... KeyboardInterrupt") brought the lab up and exited 0."""
    _raised.append(signum)
    raise Kept()


def check() -> None:
    """Raise the program's Terminated again if a SIGTERM came and its exception was swallowed (or raise it
    anew after it unwound: the program is ending then anyway). Asked before ``up`` and ``down`` change
    anything, and by the program's end (:func:`unsaid`). A command that takes SIGTERM as its end (``capture``,
    as tcpdump) never asks: it takes the signal (:func:`taken`)."""
    if _raised:
        raise stopped_by(_raised[0])


def unsaid() -> KeyboardInterrupt | None:
    """The stop signal that came and that nothing said or took, or None: the program's end (launch.py) says it as
    its line and exit status (130, 143) once a command returned as if none had come. Its exception was swallowed
    by a finalizer (an object's ``__del__``, an import's lock callback) where nothing asked (:func:`check`)
    afterwards: ``status``, ``probe``, ``get`` ... finished and exited 0 although Ctrl-C was pressed or
    ``timeout`` sent SIGTERM, and a CI step passed. One that unwound the command was said there already."""
    return stopped_by(_raised[0]) if _raised else None


def taken() -> int | None:
    """A command that ends on a stop signal as its normal end (``capture``, as tcpdump; ``up --watch``, as a
    daemon) takes the one the program kept: its number (None: none came), and the program's end no longer says
    it (:func:`unsaid`). Also one whose exception a finalizer swallowed: it is the command's end as well."""
    if not _raised:
        return None
    signum = _raised[0]
    _raised.clear()
    return signum


def stop_of(exc: BaseException, before: BaseException | None = None) -> KeyboardInterrupt | None:
    """The stop signal that ``exc`` stands for, or None: the KeyboardInterrupt (Terminated) it is or that its
    causes or contexts hold, or the program's stop signal whose exception one of them names in its words. A
    signal's exception raised where Python wraps what it calls in an error of its own became that error: an
    import's dataclass (``RuntimeError: Error calling __set_name__``, its cause), a pydantic model's validator
    being built (``SchemaError: ... Terminated: interrupted by SIGTERM``, no cause), both printed as a traceback
    with exit 1. Any other error is its own, also once a signal came (a kernel's refusal, a user's mistake
    after a Ctrl-C that a finalizer swallowed): taken for the signal, the line hid what went wrong. ``before``: the
    exception the caller was handling as it began (a with block's end taking its lab down after Ctrl-C), where the
    chain stops: what came before the call is not what the call met."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and link is not before:
        if isinstance(link, KeyboardInterrupt):
            return link
        named = _named_in(link) or _plain_in(link)
        if named is not None:
            return named
        seen.add(id(link))
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    return None


def _named_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The stop signal's exception that ``exc``'s words name as a wrapper shows what it caught, ``Type: text``
    (pydantic's SchemaError, through pyo3); a Kept made by no handler names none."""
    if not _kept:
        return None
    try:
        words = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails names nothing
        return None
    for kept in _kept:
        if f"{type(kept).__name__}: {kept}" in words:
            return kept  # type: ignore[return-value]  # a Kept is a KeyboardInterrupt
    return None


def _plain_in(exc: BaseException) -> KeyboardInterrupt | None:
    """Python's own KeyboardInterrupt (a library caller's Ctrl-C: no handler of the program's kept it) that
    pydantic's SchemaError names as pyo3 shows what it caught, ``KeyboardInterrupt: ``, a line of its own. A
    SchemaError is a model's, never a topology's: no user's text is in it."""
    if type(exc).__name__ != "SchemaError" or not type(exc).__module__.startswith("pydantic"):
        return None
    for line in str(exc).splitlines():
        word, colon, text = line.strip().partition(":")
        if word == "KeyboardInterrupt" and colon:
            return KeyboardInterrupt(*([text.strip()] if text.strip() else []))
    return None


@contextlib.contextmanager
def unswallowed() -> Iterator[None]:
    """A stop signal's exception that a finalizer swallowed in the block (raised inside an object's ``__del__`` or
    a callback: Python prints "Exception ignored in ..." and goes on), raised at the block's end if the block
    ended without an error of its own: in the pytest plugin (Python's own Ctrl-C handler, nothing kept), a
    Ctrl-C as a run's first lab loaded netlab's models vanished so, and the run went on to exit 0. The main
    thread's (the one a signal raises in); a block inside another is the outer one's."""
    import threading

    if threading.current_thread() is not threading.main_thread() or _swallowing:
        yield
        return
    came: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            came.append(unraisable.exc_value if unraisable.exc_value is not None else unraisable.exc_type())
            return
        previous(unraisable)

    _swallowing.append(True)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        _swallowing.clear()
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous
    if came:
        raise came[0]


_swallowing: list[bool] = []  # an unswallowed() block is on


def ending() -> None:
    """The program is saying how a stop signal ended it, then exits: a further stop signal has nothing left
    to stop, and is ignored. ``timeout`` sends its signal twice (to the program, then to its process group), a
    user presses Ctrl-C again: the second one's KeyboardInterrupt cut the first one's line short with a
    traceback. The program's only (:func:`terminate_as_interrupt`: not a library's caller, not click's test
    runner), and the main thread's."""
    if not _program:
        return
    for sig in STOPPING:
        with contextlib.suppress(ValueError):
            signal.signal(sig, signal.SIG_IGN)


def ignore(signum: int, frame: object) -> None:
    """A stop signal that has nothing left to stop, dropped by a handler of Python's: where another stop signal's
    handler may have run first, in the same pass. Python runs the handlers of the signals that came together one
    after the other, once the first one's returns; the first's raise leaves the others pending, each run when the
    process next asks. A handler that set SIG_IGN (the probe agent's, on the terminal's SIGINT, while the parent's
    SIGTERM waits) left Python nothing to run for the pending one: it printed ``OSError: Signal 15 ignored due to
    race condition`` with a traceback, above the program's own line."""


def said(exc: BaseException) -> int:
    """The program's end for the stop signal ``exc`` stands for (:func:`stop_of`): its one line on standard
    error, further signals ignored (:func:`ending`); the exit status returned. Anything else is raised again."""
    stop = stop_of(exc)
    if stop is None:
        raise exc
    ending()
    with contextlib.suppress(OSError, ValueError, AttributeError):  # standard error closed or gone: the status
        sys.stderr.write(f"netlab: {stop if stop.args else 'interrupted'}\n")
    return exit_code(stop)


def stopped_by(signum: int) -> KeyboardInterrupt:
    """The exception a stop signal raises: Terminated for SIGTERM and SIGHUP, a KeyboardInterrupt (Ctrl-C's) else."""
    said = f"interrupted by {signal.Signals(signum).name}"
    return Terminated(said, signum=signum) if signum in TERMINATING else KeyboardInterrupt(said)


def _unraisable(unraisable: Any) -> None:
    """sys.unraisablehook: a kept stop signal's exception swallowed in a finalizer is not printed (it is raised
    again where the program next asks); anything else is, as Python prints it."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, Kept):
        return
    sys.__unraisablehook__(unraisable)


def terminate_as_interrupt() -> None:
    """From now on SIGTERM and SIGHUP stop this process as Ctrl-C does (:class:`Terminated`), and all are kept.
    The program's, not a library's: ``import netlab`` leaves its caller's handlers alone. A SIGHUP the program's
    parent ignored (``nohup netlab up --watch``) stays ignored: the hangup is not the user's stop."""
    _program.append(True)
    signal.signal(signal.SIGTERM, raise_terminated)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not a SIG_IGN the program inherited
        signal.signal(signal.SIGINT, raise_interrupt)
    sys.unraisablehook = _unraisable
