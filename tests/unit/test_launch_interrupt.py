"""Ctrl-C while the `netlab` program loads, before the CLI's own handling is in place: one line, 130 (no root).

The program (netlab/launch.py) is loaded by its console script, `from netlab.launch import main`, which runs
the package's __init__ and launch.py outside main()'s handling: a Ctrl-C while they imported typing printed a
10-line KeyboardInterrupt traceback. A real SIGINT here lands at the Nth import of a module not loaded yet
(other than the console script's own import of netlab.launch, as much Python's start as the interpreter's)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HOOK = """
import builtins, os, signal, sys
real, seen, stop_at, fired = builtins.__import__, [], int(sys.argv[1]), sys.argv[2]
def interrupting(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name not in sys.modules and name not in ("netlab", "netlab.launch") and name not in seen:
        seen.append(name)
        if len(seen) == stop_at:  # once
            open(fired, "w").write(name)
            os.kill(os.getpid(), signal.SIGINT)
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = interrupting
sys.argv = ["netlab", "--version"]
from netlab.launch import main
sys.exit(main())
"""


@pytest.mark.parametrize("nth", [1, 2, 3, 5, 10, 25])
def test_ctrl_c_at_any_import_of_the_program_is_one_line_and_130(nth, tmp_path):
    fired = tmp_path / "fired"
    proc = subprocess.run([sys.executable, "-c", HOOK, str(nth), str(fired)], capture_output=True, text=True,
                          timeout=60)
    assert fired.exists(), (proc.returncode, proc.stdout, proc.stderr)  # the program imported that many
    assert (proc.returncode, proc.stderr) == (130, "netlab: interrupted\n"), (fired.read_text(), proc.stderr)


def test_a_real_import_error_while_the_program_loads_is_not_hidden(tmp_path):
    """Only Ctrl-C is said in one line: a module that fails to import is Python's traceback, as it was."""
    code = ("import builtins, sys\n"
            "real = builtins.__import__\n"
            "def broken(name, *args, **kwargs):\n"
            "    if name == 'netlab.cli':\n"
            "        raise ImportError('netlab.cli is broken')\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = broken\n"
            "sys.argv = ['netlab', '--version']\n"
            "from netlab.launch import main\n"
            "sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ImportError: netlab.cli is broken" in proc.stderr
