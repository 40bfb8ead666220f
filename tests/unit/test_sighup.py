"""SIGHUP (an ssh session dropped, a terminal closed) stops netlab as SIGTERM does (no root).

Left to its default it killed the program where it stood, exit 129: an `up` left its lab half made, the pytest
plugin's run left its labs up. Now it is one of the stop signals (netlab.signals.STOPPING): rolled back, one
line (``interrupted by SIGHUP``), exit 129; a SIGHUP the program's parent ignored (``nohup``) stays ignored.
The real processes, with real signals: tests/integration/test_signals_live.py, test_pytest_plugin.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab

import netlab
from netlab import pytest_plugin as plugin, signals
from netlab.kernel import own_group
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, up as lab_up
from netlab.lab.journal import Journal

lab = pytest.fixture(make_lab, name="lab")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handlers(monkeypatch):
    """The process's stop signals' handlers as they were, put back after the test."""
    monkeypatch.setattr(plugin, "_workers", [])
    monkeypatch.setattr(plugin, "_stopping", [])
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)


def test_sighup_is_a_stop_signal_said_as_sigterm_is_with_129():
    assert signal.SIGHUP in signals.STOPPING and signal.SIGHUP in own_group.STOPS
    stop = signals.stopped_by(signal.SIGHUP)
    assert isinstance(stop, signals.Terminated) and str(stop) == "interrupted by SIGHUP"
    assert signals.exit_code(stop) == 129 and signals.exit_code(signals.stopped_by(signal.SIGTERM)) == 143
    assert signals.exit_code(signals.Terminated("interrupted by SIGTERM")) == 143


def test_sighup_in_a_command_is_one_line_and_129(monkeypatch, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def hung_up(*args, **kwargs):
        signals.raise_terminated(signal.SIGHUP, None)

    monkeypatch.setattr(signals, "_raised", [])
    monkeypatch.setattr("netlab.api.load", hung_up)
    got = run_cli("up", "-t", str(path))
    assert (got.returncode, got.stderr) == (129, f"netlab: interrupted by SIGHUP while it read the topology, before "
                                                 f"it changed anything; the lab of {path} is as it was (what the "
                                                 "edit would change was not known yet)\n"), got


def test_up_sighup_during_the_change_rolls_back_and_exits_129(lab):
    k = FakeKernel()
    real = k.create_netns

    def create_then_hung_up(name, tag, sysctls):
        real(name, tag, sysctls)
        os.kill(os.getpid(), signal.SIGHUP)

    k.create_netns = create_then_hung_up
    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Journal(k))
    assert info.value.exit_code == 129 and str(info.value) == "interrupted by SIGHUP; rolled back"
    assert not k.ns


def test_down_holds_a_sighup_until_its_block_is_done(handlers):
    signal.signal(signal.SIGHUP, signals.raise_terminated)
    done: list[int] = []
    with pytest.raises(signals.Terminated, match="SIGHUP"):
        with signals.held() as came:
            os.kill(os.getpid(), signal.SIGHUP)
            done.extend(came)  # recorded, not raised, inside the block
    assert done == [signal.SIGHUP]
    signals._raised.clear()


def test_a_sighup_ignored_as_a_block_begins_stays_ignored(handlers):
    """``nohup netlab up``: the hangup is not the user's stop."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with signals.held() as came:
        os.kill(os.getpid(), signal.SIGHUP)
    assert came == [] and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_the_program_sets_sighups_handler_unless_its_parent_ignored_it():
    code = ("import signal, sys\n"
            "import netlab.cli\n"
            "netlab.cli.main = lambda: print('SIG_IGN' if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN "
            "else signal.getsignal(signal.SIGHUP).__name__)\n"
            "from netlab.launch import main\n"
            "main()\n")
    for preexec, said in ((None, "raise_terminated\n"),
                          (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN), "SIG_IGN\n")):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              preexec_fn=preexec)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, said, ""), proc


def test_the_launcher_holds_off_sighup_while_python_starts(tmp_path):
    path = tmp_path / "netlab"
    subprocess.run([str(ROOT / "scripts" / "make_launcher.sh"), sys.executable, str(path)], check=True)
    assert path.read_text().splitlines()[0].startswith("#!/usr/bin/env -S --block-signal=INT,TERM,HUP ")
    code = ("import signal, os, sys\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})\n"
            "os.kill(os.getpid(), signal.SIGHUP)\n"
            "from netlab.launch import main\n"
            "sys.argv = ['netlab', '--version']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (129, "", "netlab: interrupted by SIGHUP\n"), proc
    nohup = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert (nohup.returncode, nohup.stdout, nohup.stderr) == (0, "netlab, version 0.1.0\n", ""), nohup


def test_the_pytest_plugin_stops_on_sighup_and_passes_it_on_to_its_workers(handlers):
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    plugin._stop_on_sigterm(SimpleNamespace())
    assert signal.getsignal(signal.SIGHUP) is plugin._sigterm
    running = subprocess.Popen(["sleep", "30"])
    plugin._workers.append(running)
    with pytest.raises(signals.Terminated, match="interrupted by SIGHUP") as raised:
        plugin._sigterm(signal.SIGHUP, None)
    assert signals.exit_code(raised.value) == 129
    assert running.wait(timeout=5) == -signal.SIGHUP


def test_the_pytest_plugin_leaves_a_sighup_its_parent_ignored_alone(handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    plugin._stop_on_sigterm(SimpleNamespace())
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_python_m_pytest_stopped_by_sighup_exits_2(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_stopped.py").write_text(
        "import os, signal\n\ndef test_stopped():\n    os.kill(os.getpid(), signal.SIGHUP)\n\n"
        "def test_never_run():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(netlab.__file__).parents[1]), env.get("PYTHONPATH", "")])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                          "-q", "test_stopped.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert "!! netlab.signals.Terminated: interrupted by SIGHUP !!" in out and "no tests ran" in out, out


def test_a_captures_sighup_is_its_end_and_named():
    from netlab.cli.trace import no_frames_line

    assert "(stopped by SIGHUP)" in no_frames_line("L-n1", "eth0", "hangup", 1.0, "L")


def test_a_hung_up_terminal_is_pointed_at_dev_null_and_nothing_else():
    """After a hangup each write to the terminal fails (EIO), pytest's report then ended its run with exit 1 (a
    traceback) where SIGTERM's gave 2. The terminal's descriptors (any of them: pytest's capture keeps one of its
    own) go to /dev/null; a file, a pipe and a pty master (a test's own terminal) stay as they are."""
    code = ("import os, pty, sys\n"
            "from netlab import signals\n"
            "gone_master, gone = pty.openpty()\n"
            "os.close(gone_master)  # the terminal hangs up\n"
            "master, slave = pty.openpty()\n"
            "os.close(slave)  # a master whose terminal is closed polls POLLHUP too\n"
            "r, w = os.pipe()\n"
            "saved = os.dup(gone)\n"
            "try:\n"
            "    os.write(gone, b'x')\n"
            "except OSError as exc:\n"
            "    print(exc.errno)\n"
            "signals.quiet_hung_up()\n"
            "print(os.write(gone, b'x'), os.write(saved, b'x'), os.write(w, b'x'), os.read(r, 1))\n"
            "print(os.path.realpath(f'/proc/self/fd/{gone}'), os.path.realpath(f'/proc/self/fd/{master}'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["5", "1 1 1 b'x'"], proc.stdout  # EIO before, then written (to /dev/null)
    assert lines[2].split() == ["/dev/null", "/dev/ptmx"], proc.stdout
