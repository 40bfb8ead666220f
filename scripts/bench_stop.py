"""A benchmark stopped by SIGTERM (a CI job's timeout, ``timeout``, systemd) or SIGHUP cleans up as on Ctrl-C.

Left to its default, SIGTERM killed a benchmark where it stood: no ``finally`` ran, and its scratch namespaces,
labs and temporary folders stayed behind. :func:`main` makes both signals raise as Ctrl-C does (netlab's own
:func:`netlab.signals.terminate_as_interrupt`, the ``netlab`` program's), so every ``finally`` runs, and exits
with the signal's status (143 SIGTERM, 130 Ctrl-C). :func:`deferred` holds a stop off while a block that must
not be cut runs (a namespace made and recorded, a clean-up): the signal takes effect as the block ends.
:func:`run` is subprocess.run for a ``netlab`` command: stopped, it passes the stop on to the command and waits
for it (its own rollback), instead of SIGKILLing it halfway (subprocess.run's way).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from netlab import signals  # noqa: E402

CHILD_GRACE = 120.0  # s: a stopped command's own clean-up (an `up` rolling a 500-pod lab back) before SIGKILL


def main(body: Callable[[], int | None]) -> int:
    """``body()``'s exit status; stopped by SIGTERM, SIGHUP or Ctrl-C, one line on stderr and 128 + the signal's
    number, once every ``finally`` ran."""
    signals.terminate_as_interrupt()
    try:
        return body() or 0
    except KeyboardInterrupt as exc:
        code = signals.exit_code(exc)
        name = signal.Signals(code - 128).name if code > 128 else "a stop signal"
        print(f"{os.path.basename(sys.argv[0])}: stopped by {name}; what it made is removed", file=sys.stderr)
        return code


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop signal that comes in the block takes effect as the block ends (the first one; the rest are one)."""
    came: list[int] = []
    with signals.handled(lambda signum, frame: came.append(signum)):
        yield
    if came:
        raise signals.stopped_by(came[0])


def run(cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, **kwargs); stopped meanwhile, the command gets SIGTERM
    and CHILD_GRACE seconds to end (then SIGKILL), and the stop goes on."""
    with subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs) as proc:
        try:
            out, err = proc.communicate()
        except BaseException:
            with deferred():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.communicate(timeout=CHILD_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
