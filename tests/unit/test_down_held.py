"""A signal during `down` waits for the lab to be down, then takes effect as the caller's handler says (no root).

A second Ctrl-C, or the SIGTERM a CI runner sends after its SIGINT, stopped the take-down where it was: some
namespaces gone, others not, the state that names them left. Now signals.held keeps SIGINT and SIGTERM for the
end of the take-down (not while down waits for the lab's lock), then raises the first by the handler the
caller had. The real processes, with real signals: tests/integration/test_down_signals.py.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab import signals
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def signalled_kernel(sigs: tuple[int, ...]) -> FakeKernel:
    """A fake kernel whose first namespace deletion sends ``sigs`` to this process, as a user or a runner would."""
    k = FakeKernel()
    real = k.delete_netns

    def delete_then_signalled(name: str) -> None:
        real(name)
        for sig in sigs:
            os.kill(os.getpid(), sig)
        sigs_sent.append(name)

    sigs_sent: list[str] = []
    k.delete_netns = delete_then_signalled  # type: ignore[method-assign]
    return k


@pytest.fixture
def terminated_on_sigterm(monkeypatch):
    """SIGTERM raises signals.Terminated, as in the netlab program (launch.py); put back afterwards."""
    monkeypatch.setattr(signals, "_raised", [])  # this test's SIGTERMs, not the next test's
    old = signal.signal(signal.SIGTERM, signals.raise_terminated)
    yield
    signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("sigs, raised", [((signal.SIGINT, signal.SIGTERM), KeyboardInterrupt),
                                          ((signal.SIGTERM, signal.SIGTERM), signals.Terminated)],
                         ids=["INT-TERM", "TERM-TERM"])
def test_signals_during_the_take_down_wait_for_every_namespace_then_the_first_is_raised(
        lab, terminated_on_sigterm, sigs, raised):
    k = signalled_kernel(sigs)
    up(lab, k)
    assert k.ns
    with pytest.raises(KeyboardInterrupt) as info:
        teardown.down(lab.name, k)
    assert type(info.value) is raised
    assert not k.ns and state_mod.load_state(lab.name) is None  # all of it, the state too
    assert signal.getsignal(signal.SIGTERM) is signals.raise_terminated  # the caller's handler is back


def test_in_another_thread_nothing_is_held():
    """Only the main thread may set a handler: elsewhere the block runs with the process's handlers."""
    seen: list[object] = []

    def run() -> None:
        with signals.held() as came:
            seen.append(came)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [[]]


def test_netlab_down_stopped_by_a_signal_says_the_lab_is_down_and_exits_with_it(lab, monkeypatch,
                                                                                 terminated_on_sigterm):
    k = signalled_kernel((signal.SIGTERM, signal.SIGINT))
    up(lab, k)
    monkeypatch.setattr("netlab.api.lifecycle.live_kernel", lambda: k)
    monkeypatch.setattr("netlab.api.lifecycle.default_features", lambda: [])
    got = run_cli("down", "--lab", lab.name)
    # the first one held is said: SIGTERM, then SIGINT waited with it
    said = f"netlab: interrupted by SIGTERM; lab {lab.name} is down\n"
    assert (got.returncode, got.stderr, got.stdout) == (143, said, ""), got
    assert not k.ns and state_mod.load_state(lab.name) is None
