"""The ``netlab`` program's first lines: load the command with Python's cycle collector off.

Starting a command loads tens of thousands of objects that live as long as the
process: click, pydantic's validators, the topology and result classes. While
they load, Python's cyclic garbage collector runs every few hundred allocations
and walks them again and again, for nothing: ``netlab probe`` of 50 pods took
0.53 s of CPU with it on, 0.44 s with it off while loading. So the program starts with the collector
off, and the command group switches it back on once the command's module is
loaded (``cli.base.collect_from_here``), after ``gc.freeze()`` has set aside
what is loaded by then (`probe` switches it on itself, once it has loaded its models after its early
agent's start: cli/probe.py). Garbage the command itself makes is collected as
usual, and a forked child (the probe agent) does not dirty the parent's shared
pages by collecting them.

Only the program does this: ``import netlab`` in another program, and click's
test runner, leave that program's collector as it is. So it is with the code Python
generates as the program loads (each dataclass's methods, each string annotation: ~900
texts, 45-65 ms of compiling at every start): the program takes it compiled from a
file beside netlab's bytecode (netlab/fncache.py). So it is with SIGTERM:
the program stops on it as on Ctrl-C from its first line (netlab/signals.py).

So it is with the end: once the command has returned or said its error, the
program exits without Python's tear-down of every module and object it loaded
(45-50 ms of CPU after `netlab down` of 500 pods, 10 % of the command), as a
forked child does: ``atexit`` handlers run and standard output and error are
flushed first. Where that cannot be done safely (a thread that is no daemon
still runs, a flush fails, an exit status that is not a number) or would lose
a developer's work (a profiler or tracer, as `python -m cProfile -m netlab`,
writes its figures after the program returns), Python exits as usual.

Python loads this module and the package (netlab/__init__.py) before main() runs, out of reach of its
Ctrl-C handling: both import nothing that is not loaded already at Python's start (no ``from __future__``,
no typing), so that every import of netlab's, from netlab.signals on, is inside it.

Before that, Python's own start (its ``site``, the console script's ``import re``) is out of reach of any
handler of netlab's: a Ctrl-C there printed Python's KeyboardInterrupt traceback. The launcher that
scripts/setup.sh puts on root's PATH (scripts/make_launcher.sh) starts Python with SIGINT, SIGTERM and SIGHUP
blocked (``env --block-signal``): one sent meanwhile waits, pending, and main()'s first lines say it
(:func:`_came_at_start`) then let the next ones in. A blocked signal is kept across ``exec``; an ignored one
would be lost.
"""

import os
import sys


def _terminated_early(signum: int, frame: object) -> None:
    """SIGTERM or SIGHUP as netlab.signals loads (its handler not set yet): a KeyboardInterrupt with the signal's
    status, as signals.Terminated is, not the default's silent death."""
    raise _early_stop(signum)


def _early_stop(signum: int) -> KeyboardInterrupt:
    """The stop of a signal that came before netlab.signals was loaded: Ctrl-C's bare line, the others named."""
    import _signal

    names = {_signal.SIGTERM: "SIGTERM", _signal.SIGHUP: "SIGHUP"}
    stop = KeyboardInterrupt(f"interrupted by {names[signum]}") if signum in names else KeyboardInterrupt()
    stop.exit_code = 128 + signum  # type: ignore[attr-defined]
    return stop


def main() -> None:
    try:
        import _signal  # loaded at Python's start, as os and sys are

        before = _signal.signal(_signal.SIGTERM, _terminated_early)
        hup_was = _signal.getsignal(_signal.SIGHUP)
        if hup_was != _signal.SIG_IGN:  # nohup's stays ignored (signals.terminate_as_interrupt)
            _signal.signal(_signal.SIGHUP, _terminated_early)
        _came_at_start(before, hup_was)
        import gc

        gc.disable()
        from netlab import fncache

        fncache.install()  # dataclasses' methods compiled once, not at every start (fncache.py)
        from netlab import signals

        signals.terminate_as_interrupt()  # SIGTERM (timeout, systemd, a CI cancel), SIGHUP: as Ctrl-C does
        # What the launcher held off is let in once the program's handlers are set: one that came since
        # _came_at_start is raised here, Kept (Python's own, in an import's lock callback, was swallowed: exit 0)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP})
        from netlab.kernel import nofile

        nofile.raise_soft()  # as Go programs do: its own soft open-files limit at the hard one (kernel/nofile.py)
        _no_pydantic_plugins()
        from netlab.cli import main as cli_main
        from netlab import lockfile

        lockfile.PRINT_WAITS = True  # the program's own standard error: "netlab: waiting for ..." (a library logs it)
        lockfile.IN_PROGRAM = True  # the locks it takes name the netlab command alone (a library's, its program too)
    except SystemExit:
        raise
    except BaseException as exc:  # Ctrl-C or SIGTERM while Python loads the program: nothing has started
        raise SystemExit(_stopped(exc)) from None
    _refuse_unwritable_output()
    try:
        cli_main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:  # what the CLI let through: a stop signal is its line, anything else Python's
        code = _stopped(exc)
    if code in (0, None):
        code = _unsaid_stop(code)
    exit_now(code)


def _no_pydantic_plugins() -> None:
    """The program validates its topology and state with no pydantic plugin. pydantic looks for plugins (the
    ``pydantic`` entry points of every installed package) when it makes its first validator: it imports
    importlib.metadata (email's parser, zipfile, csv: ~17 ms of CPU) and reads every package's metadata, ~20 ms
    of a command as quick as ``status`` (~10 %). netlab installs no plugin and none is meant to watch its
    validation, so the program hands pydantic a plugin loader that finds none (``get_plugins``, the loader's
    one function pydantic calls; pydantic is pinned in requirements.lock). ``import netlab`` in another program
    leaves that program's plugins as they are."""
    loader = type(sys)("pydantic.plugin._loader")
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # no plugin: an empty iterable
    sys.modules.setdefault("pydantic.plugin._loader", loader)


def _unsaid_stop(code: object) -> object:
    """A command that returned as if no stop signal had come (exit 0), although one came and a finalizer swallowed
    its exception (netlab.signals.unsaid): the signal's line and exit status, not a success. A command that ends
    on a stop signal as its normal end (``capture``, ``up --watch``) took it (netlab.signals.taken)."""
    signals = sys.modules.get("netlab.signals")
    try:
        stop = signals.unsaid() if signals is not None else None
        return code if stop is None else _stopped(stop)
    except BaseException as exc:  # a stop signal as this is asked
        return _stopped(exc)


def _refuse_unwritable_output() -> None:
    """Standard output closed (``netlab up >&-``) or open read-only (``1</dev/null``): one line, exit 3, before the
    command does anything, as a full disk's output is (cli/boundary.py ``_unwritable``). A command's output lost
    unsaid let a CI step pass (exit 0: click writes nothing when there is no sys.stdout), or ended in Python's
    traceback (EBADF, or no attribute 'write' of None), after ``up`` had made the lab.

    ``--help`` and ``--version`` are refused too, on purpose: their text is the output asked for, and it would be
    lost unsaid. So say coreutils (``ls --help >&-``: "write error: Bad file descriptor", exit 2) and netlab's
    own ``--version >/dev/full`` (exit 3); git, kubectl and a bare click program exit 0 having written nothing,
    the silent loss this check is here to stop. A script that only wants the status says ``>/dev/null``."""
    import errno
    import fcntl

    try:
        writable = fcntl.fcntl(1, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
    except OSError:
        writable = False
    if writable:
        return
    if sys.stderr is not None:  # closed as well: the exit status alone says it
        try:
            sys.stderr.write(f"netlab: cannot write the output: {os.strerror(errno.EBADF)} (standard output is "
                             "closed or read-only; nothing was done)\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    raise SystemExit(3)  # errors.EXIT_ENVIRONMENT, as for a full disk


def _came_at_start(sigterm_was: object, sighup_was: object = None) -> None:
    """The stop signal that came while Python started, held off by the launcher (SIGINT, SIGTERM and SIGHUP
    blocked): said as a later one is (``netlab: interrupted``, 130; ``... by SIGTERM``, 143; ``... by SIGHUP``,
    129), and exit. Else main() lets them in once the program's handlers are set, for this process and its
    children. One that the program's parent ignored (SIGINT for a job a script puts in the background, SIGHUP
    under ``nohup``) is not taken for a stop."""
    import _signal

    stopping = {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}
    came = _signal.sigpending() & stopping
    if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
        came.discard(_signal.SIGINT)
    if sigterm_was == _signal.SIG_IGN:
        came.discard(_signal.SIGTERM)
    if sighup_was == _signal.SIG_IGN:
        came.discard(_signal.SIGHUP)
    if came:  # ignored while still blocked: the pending ones are dropped, the program's line is its last word
        for sig in stopping:
            _signal.signal(sig, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, stopping)
        signum = next(sig for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT) if sig in came)
        raise SystemExit(_stopped(_early_stop(signum)))


def _stopped(exc: BaseException) -> int:
    """The line and exit status of the stop signal ``exc`` stands for (netlab.signals.said: the signal's
    exception, or an error Python made of it in an import, as a dataclass's ``__set_name__`` does); anything
    else is raised again, Python's traceback."""
    signals = sys.modules.get("netlab.signals")
    if signals is not None:
        return signals.said(exc)
    if not isinstance(exc, KeyboardInterrupt):  # before netlab.signals is loaded: Ctrl-C, or _terminated_early
        raise exc
    sys.stderr.write(f"netlab: {exc if exc.args else 'interrupted'}\n")
    return getattr(exc, "exit_code", 130)


def exit_now(code: object) -> None:
    """Leave the process with ``code`` and no tear-down of its modules (see above), or raise SystemExit for
    Python's usual exit where that would do more than free memory."""
    import atexit
    import threading

    status = 0 if code is None else code
    signals = sys.modules.get("netlab.signals")
    if signals is not None:  # the command is done and its last word said: a late signal does not undo that
        signals.ending()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)  # what Python's own exit calls; CPython has it
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if not isinstance(status, int) or not 0 <= status <= 255 or others or run_exitfuncs is None or watched:
        raise SystemExit(code)  # a message to print, a thread to join, a profile to write: Python's exit does it
    run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None  # a closed pipe or a full disk: Python says it and exits 120, as before
    os._exit(status)
