"""The signal guard (tests/signal_guard.py), as a pytest run of its own sees it: a test that leaves SIGPIPE at its
default, or SIGUSR1 blocked, fails in its teardown, naming them; the next test finds them as Python set them."""

from __future__ import annotations

import os
import subprocess
import sys

LEAKS = '''
import signal


def test_sets_sigpipe_back_to_the_default():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def test_blocks_sigusr1():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


def test_next_finds_them_as_python_set_them():
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN
    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, ())
'''


def test_a_test_that_leaves_a_signal_changed_fails_and_the_next_finds_it_put_back(tmp_path):
    (tmp_path / "test_leaks.py").write_text(LEAKS)
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": tests}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "signal_guard",
                           "-p", "no:xdist", "-p", "no:netlab", "-c", os.devnull, "--rootdir", str(tmp_path),
                           "test_leaks.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert "the test left its signals changed (put back now): SIGPIPE SIG_IGN -> SIG_DFL" in out, out
    assert "the test left its signals changed (put back now): signal mask [] -> ['SIGUSR1']" in out, out
    assert "3 passed, 2 errors" in out, out  # the third finds SIGPIPE ignored and SIGUSR1 unblocked again
