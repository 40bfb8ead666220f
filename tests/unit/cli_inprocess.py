"""Run the netlab CLI inside the test process, with what a separate process would give back.

``netlab.cli.main(argv)`` runs with stdin, stdout and stderr swapped for
buffers (click's own test isolation), and its exit (``sys.exit``, or returning)
becomes a return code. An exception that escapes ``main`` is what a real
process would print as a traceback and exit 1 with, so it is turned into just
that: a ``Traceback (most recent call last):`` on stderr and return code 1, for
the tests' "no traceback" checks to see.

What only a real process can show stays with real processes in the tests that
use this: Python's start-up and imports (a module that fails to import, an
import cycle), interpreter-level crashes, and the environment a command reads
at import time.
"""

from __future__ import annotations

import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from click.testing import CliRunner

from netlab.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``netlab ARGS...`` in this process: (args, returncode, stdout, stderr) as text, like ``subprocess.run``."""
    with _isolated() as (out, err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except Exception:  # a real process would die here with a traceback
            sys.stderr.write(traceback.format_exc())
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    return subprocess.CompletedProcess(["netlab", *args], code, out.getvalue().decode(),
                                       err.getvalue().decode(errors="backslashreplace"))


@contextmanager
def _isolated() -> Iterator:
    with CliRunner().isolation() as (out, err, _):
        yield out, err


def _exit_code(exc: SystemExit) -> int:
    """What the process's exit status would be: sys.exit(None) is 0, sys.exit("text") prints it and is 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1
