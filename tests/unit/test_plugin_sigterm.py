"""The pytest plugin's SIGTERM: passed on to the xdist workers, turned into a KeyboardInterrupt once per process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import netlab
from netlab import pytest_plugin as plugin, signals


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(plugin, "_workers", [])
    monkeypatch.setattr(plugin, "_stopping", [])
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)


def test_sigterm_goes_on_to_every_worker_then_stops_this_run_once(fresh):
    """The controller's SIGTERM (a CI timeout's, to it alone) reaches its workers, a worker that has ended
    already is left alone (its pid may be someone else's by now), and a second SIGTERM, which would cut the
    labs' take-down short, is ignored."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    running = subprocess.Popen(["sleep", "30"])
    plugin._workers.extend([ended, running])
    with pytest.raises(KeyboardInterrupt, match="interrupted by SIGTERM") as raised:
        plugin._sigterm(signal.SIGTERM, None)
    assert type(raised.value) is signals.Terminated  # not Python's own: see the test below
    assert running.wait(timeout=5) == -signal.SIGTERM
    assert plugin._sigterm(signal.SIGTERM, None) is None


def test_the_handler_is_set_at_configure_unless_someone_set_their_own(fresh):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    plugin._stop_on_sigterm(SimpleNamespace())
    assert signal.getsignal(signal.SIGTERM) is plugin._sigterm

    def theirs(signum, frame):
        pass

    signal.signal(signal.SIGTERM, theirs)
    plugin._stop_on_sigterm(SimpleNamespace())
    assert signal.getsignal(signal.SIGTERM) is theirs


def test_a_worker_started_with_sigint_ignored_gets_pythons_handler_back(fresh, monkeypatch):
    """execnet stops a worker's running test with SIGINT; one inherited ignored made it wait for os._exit."""
    prctl = []
    monkeypatch.setattr("netlab.kernel.libc.handle", lambda: SimpleNamespace(prctl=lambda *a: prctl.append(a)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plugin._stop_on_sigterm(SimpleNamespace(workerinput={}))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert prctl == [(1, signal.SIGTERM, 0, 0, 0)]  # PR_SET_PDEATHSIG: the controller's death is a SIGTERM


def test_the_controller_records_the_worker_processes_it_starts(fresh):
    class Gateway:
        _io = SimpleNamespace(popen=subprocess.Popen(["true"]))

    plugin.pytest_xdist_newgateway(Gateway())
    plugin.pytest_xdist_newgateway(SimpleNamespace())  # not a popen gateway (ssh through another): nothing
    assert plugin._workers == [Gateway._io.popen]
    Gateway._io.popen.wait()


# The signal lands in the test's own code, or in code that exec() runs from a string, as dataclasses makes a
# class's methods: where a SIGTERM during Lab.up's first imports of netlab's modules often lands.
SIGTERM_IN = {"code": "os.kill(os.getpid(), signal.SIGTERM)",
              "exec": 'exec("os.kill(os.getpid(), signal.SIGTERM)")'}


@pytest.mark.parametrize("where", sorted(SIGTERM_IN))
def test_python_m_pytest_stopped_by_sigterm_exits_2_wherever_it_landed(tmp_path, where):
    """README: SIGTERM stops the run as Ctrl-C does, exit 2 with pytest's summary. A plain KeyboardInterrupt
    out of exec'd code made CPython end `python -m pytest` with SIGINT after pytest returned 2: the shell's 130
    (QA q35 2: about 1 run in 10 of a SIGTERM while the lab came up)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_stopped.py").write_text(
        f"import os, signal\n\ndef test_stopped():\n    {SIGTERM_IN[where]}\n\ndef test_never_run():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(netlab.__file__).parents[1]), env.get("PYTHONPATH", "")])
    # netlab's plugin alone: another's exec of a string at the session's end (hypothesis') hid the 130
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                          "-q", "test_stopped.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out  # pytest's ExitCode.INTERRUPTED, not -SIGINT (the shell's 130)
    assert "!! netlab.signals.Terminated: interrupted by SIGTERM !!" in out, out  # the plugin's handler took it
    assert "no tests ran" in out, out  # the run stopped there, as at Ctrl-C
