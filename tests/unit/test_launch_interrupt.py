"""Ctrl-C while the `netlab` program loads, before the CLI's own handling is in place: one line, 130 (no root).

The program (netlab/launch.py) is loaded by its console script, `from netlab.launch import main`, which runs
the package's __init__ and launch.py outside main()'s handling: a Ctrl-C while they imported typing printed a
10-line KeyboardInterrupt traceback. A real SIGINT here lands at the Nth import of a module not loaded yet
(other than the console script's own import of netlab.launch, as much Python's start as the interpreter's)."""

from __future__ import annotations

import os
import signal
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


# Python's own start, before the launcher's first line: a module a .pth imports (run by Python's site) sends the
# signal, in its own body (0) or at the Nth import the launcher makes until `from netlab.launch import main` is done
# (the launcher's `import sys`, the package's and launch.py's own imports). No handler of netlab's is set yet.
SITE = """
import builtins, os, signal, sys
stop_at, fired, sigs = int(os.environ["SG_AT"]), os.environ["SG_FIRED"], os.environ["SG_SIGS"].split(",")
calls, done = [0], []
def fire(where):
    open(fired, "w").write(where)
    for name in sigs:
        os.kill(os.getpid(), getattr(signal, name))
if stop_at == 0:
    fire("site")
real = builtins.__import__
def interrupting(name, *args, **kwargs):
    if not done:
        calls[0] += 1
        if calls[0] == stop_at:
            fire(name)
    try:
        return real(name, *args, **kwargs)
    finally:
        if name == "netlab.launch":
            done.append(1)
builtins.__import__ = interrupting
"""

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def site_python(tmp_path_factory):
    """A venv's Python whose site-packages have a .pth naming this checkout and this venv's packages and importing
    the early signals' module: the launcher runs Python isolated (-I), which reads no PYTHONPATH and no PYTHON*
    variable, so its site-packages are where a test puts what Python's start runs (a sitecustomize would be
    Debian's, first on sys.path)."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python3"
    (site,) = (folder / "venv" / "lib").glob("python*/site-packages")
    (folder / "site").mkdir()
    (folder / "site" / "early_signals.py").write_text(SITE)
    ours = [p for p in sys.path if p.endswith("site-packages")]  # click, pydantic: this venv's
    (site / "early.pth").write_text("\n".join([str(folder / "site"), ROOT, *ours, "import early_signals"]) + "\n")
    return python


@pytest.fixture
def launcher(tmp_path, site_python):
    """The launcher setup.sh writes for root's PATH, run by a venv's Python whose site sends the early
    signals."""
    path = tmp_path / "netlab"
    subprocess.run([os.path.join(ROOT, "scripts", "make_launcher.sh"), str(site_python), str(path)], check=True)

    def run(at: int, sigs: str, **kwargs) -> subprocess.CompletedProcess:
        env = dict(os.environ, SG_AT=str(at), SG_FIRED=str(tmp_path / "fired"), SG_SIGS=sigs)
        return subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, env=env,
                              **kwargs)

    return run


@pytest.mark.parametrize("at", range(6))
@pytest.mark.parametrize("sigs, said", [("SIGINT", (130, "netlab: interrupted\n")),
                                        ("SIGTERM", (143, "netlab: interrupted by SIGTERM\n")),
                                        ("SIGINT,SIGTERM", (143, "netlab: interrupted by SIGTERM\n"))])
def test_a_signal_while_python_starts_the_launcher_is_one_line(launcher, tmp_path, at, sigs, said):
    """Python's KeyboardInterrupt traceback (or SIGTERM's silent death) before netlab's first line: the launcher
    holds the signals off (blocked) until main() says them as it says a later one."""
    got = launcher(at, sigs)
    assert (tmp_path / "fired").exists(), (got.returncode, got.stderr)  # Python started that many imports
    assert (got.returncode, got.stdout, got.stderr) == (*said[:1], "", said[1]), (at, (tmp_path / "fired").read_text())


def test_a_ctrl_c_the_parent_ignores_is_no_stop_and_netlab_lets_the_signals_in(launcher, tmp_path):
    """SIGINT ignored by the parent (a script's background job): pending while blocked, not taken for a stop."""
    got = launcher(0, "SIGINT", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert (got.returncode, got.stdout, got.stderr) == (0, "netlab, version 0.1.0\n", ""), got


def test_main_lets_in_the_signals_the_launcher_held_off():
    """What the program and its children (the echo server, tcpdump) inherit: no stop signal blocked once the
    program's handlers are set."""
    code = ("import signal, sys\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
            "import netlab.cli\n"
            "netlab.cli.main = lambda: print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, set())),\n"
            "                                signal.getsignal(signal.SIGINT).__name__)\n"
            "from netlab.launch import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "[] raise_interrupt\n", ""), proc


def test_a_ctrl_c_as_netlab_loads_its_handlers_waits_for_them(tmp_path):
    """Sent after main()'s first look at what is pending, before netlab.signals set the program's handlers:
    still held off, then raised by the program's handler (Kept: Python's own, swallowed by an import's lock
    callback, printed a traceback and exited 0)."""
    code = ("import signal, os, sys\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
            "from netlab import launch\n"
            "real = launch._came_at_start\n"
            "def then_signalled(*was):\n"
            "    real(*was)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "launch._came_at_start = then_signalled\n"
            "said = launch._stopped\n"
            "launch._stopped = lambda exc: print(type(exc).__name__) or said(exc)\n"
            "sys.argv = ['netlab', '--version']\n"
            "launch.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "Kept\n", "netlab: interrupted\n"), proc
