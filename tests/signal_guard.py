"""An autouse fixture (tests/conftest.py imports it): a test that leaves a process-wide signal disposition changed
fails. A past test set SIGPIPE back to SIG_DFL and left it so: the pytest worker died of SIGPIPE in a later test that
wrote to a plugin that had exited (node down, the failure named another test). Loaded as a plugin by its own test
(tests/unit/test_signal_guard.py)."""

from __future__ import annotations

import signal

import pytest

# Every signal Python can name but the two no process can catch: a test that leaves a disposition changed (a SIGPIPE
# set back to SIG_DFL killed a pytest worker later, in a test that wrote to a plugin that had exited) or its thread's
# signal mask changed (a SIGPIPE left blocked) fails, naming them; they are put back for the next test. A few
# dozen dict reads and two sigprocmask calls a test.
_SIGNALS = tuple(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))


def _said(handler) -> str:
    return getattr(handler, "name", None) or getattr(handler, "__qualname__", None) or repr(handler)


@pytest.fixture(autouse=True)
def _signals_as_found():
    before = [signal.getsignal(s) for s in _SIGNALS]
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    yield
    changed = [(s, b, a) for s, b in zip(_SIGNALS, before) if (a := signal.getsignal(s)) is not b]
    now = signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    words = [f"{s.name} {_said(b)} -> {_said(a)}" for s, b, a in changed]
    for s, b, _ in changed:
        signal.signal(s, b if b is not None else signal.SIG_DFL)  # None: set outside Python; its default then
    if now != mask:
        words.append(f"signal mask {sorted(m.name for m in mask)} -> {sorted(m.name for m in now)}")
    if words:
        pytest.fail("the test left its signals changed (put back now): " + "; ".join(words), pytrace=False)
