"""The pytest plugin's SIGTERM: passed on to the xdist workers, turned into a KeyboardInterrupt once per process."""

from __future__ import annotations

import signal
import subprocess
from types import SimpleNamespace

import pytest

from netlab import pytest_plugin as plugin


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
    with pytest.raises(KeyboardInterrupt, match="netlab: SIGTERM"):
        plugin._sigterm(signal.SIGTERM, None)
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
    monkeypatch.setattr("netlab.kernel.netns.libc", SimpleNamespace(prctl=lambda *a: prctl.append(a)))
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
