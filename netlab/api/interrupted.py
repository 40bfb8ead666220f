"""A stop signal that stopped ``up`` in a Python program of one's own, handed back to that program once rolled back.

up turns SIGINT, SIGTERM and SIGHUP into its rollback (lab/rollback.py), then raises its :class:`Interrupted`, a
KeyboardInterrupt. Left at that, a program's end was not the signal's: CPython ends a program by SIGINT (exit 130)
for a plain KeyboardInterrupt alone, so an uncaught Interrupted printed its traceback and exited 1, and a SIGTERM
handler of the program's own (the README quickstart's, SystemExit: 143) never ran; `timeout ... python
quickstart.py` gave 1 or 143 as the signal landed during or outside the change. At a Lab method's end
(api/words.stopped) the signal now takes effect as the caller's disposition of it says:

* a handler of the caller's own (the quickstart's ``sys.exit``, the pytest plugin's SIGTERM, which stops the run as
  Ctrl-C does) is run, as the signal would have run it: what it raises is raised, the Interrupted its cause;
* Python's Ctrl-C (``default_int_handler``) or the default (SIG_DFL): the Interrupted is raised, a KeyboardInterrupt
  a caller may catch (``except KeyboardInterrupt``, ``except netlab.api.Interrupted``); uncaught, it ends the
  program by its signal once Python's exit work is done (atexit), as an uncaught Ctrl-C does: exit 130 (143 for
  SIGTERM, 129 SIGHUP), its one line (what the rollback did) on standard error, no traceback. Not at the
  interactive prompt, which goes on after it.

The netlab program (launch.py) says an Interrupted itself (cli/lab.py): nothing of this there, nor in a command
run in-process (python_words(False)), nor in a thread other than the main one, where up sets no handler.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Any, NoReturn

from netlab import signals
from netlab.errors import words_said
from netlab.lab.rollback import Interrupted

_ending: list[int] = []  # the signal an uncaught Interrupted ends the program with (atexit: _end)


def handed(exc: Interrupted) -> NoReturn:
    """Raise what the caller's disposition of the signal that ``exc`` rolled back says (the module's words)."""
    if getattr(exc, "_handed", False) or signals._program or words_said() is False or \
            threading.current_thread() is not threading.main_thread():
        raise exc  # handed already (a Lab method inside another), or the CLI's command's (said as its line)
    exc._handed = True  # type: ignore[attr-defined]  # once, at the innermost Lab method's end
    signum = signals.exit_code(exc) - 128
    handler = signal.getsignal(signum)
    if callable(handler) and handler is not signal.default_int_handler:  # the caller's own
        try:
            signal.raise_signal(signum)  # Python runs the handler before raise_signal returns
        except BaseException as own:
            raise own from exc
        raise exc  # it returned: the up did not finish all the same
    if handler is signal.SIG_DFL or handler is signal.default_int_handler:
        _arm()
    raise exc


def _arm() -> None:
    """An Interrupted handed to the caller that nothing catches ends the program by its signal (:func:`_uncaught`)."""
    if getattr(sys.excepthook, "_netlab_interrupted", False):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not _uncaught(value):
            previous(kind, value, tb)

    hook._netlab_interrupted = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _uncaught(value: BaseException) -> bool:
    """sys.excepthook's part: an Interrupted handed to the caller (:func:`handed`) left the program uncaught. Its
    line is said, and the program ends by its signal once atexit runs (:func:`_end`). False for anything else, and
    at the interactive prompt (``python -i``, the REPL), which goes on after it: Python's hook says it."""
    if not isinstance(value, Interrupted) or not getattr(value, "_handed", False):
        return False
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return False
    with contextlib.suppress(OSError, ValueError, AttributeError):  # standard error closed: the status says it
        sys.stderr.write(f"netlab: {value}\n")
    if not _ending:
        _ending.append(signals.exit_code(value) - 128)
        atexit.register(_end)
    return True


def _end() -> None:
    """The program's last atexit handler to be registered, so the first to run: it runs the others (registered
    before it, which Python runs after it), flushes standard output and error, then ends the process by the
    signal as CPython ends one for an uncaught Ctrl-C (SIG_DFL, the signal sent to itself; 128 + its number if
    that does not end it)."""
    if not _ending or _ending[0] == 0:
        return
    signum, _ending[0] = _ending[0], 0  # once: atexit's own run below calls this again
    run_others = getattr(atexit, "_run_exitfuncs", None)
    if run_others is not None:
        run_others()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError, ValueError):
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        signal.raise_signal(signum)
    os._exit(128 + signum)
