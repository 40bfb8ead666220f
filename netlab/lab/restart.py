"""When a watched lab restarts an exited container that its pod's restartPolicy restarts: the kubelet's back-off.

Which containers the policy restarts is workload/policy.py's, for plain ``up``
and the watcher alike (an ``OnFailure`` container that was not the watcher's
child has its status from the kernel's taskstats records or the lab's echo
server). The back-off is the kubelet's (``pkg/kubelet/kuberuntime``'s ``doBackOff``
over ``flowcontrol.Backoff``, keyed by pod and container): the first restart
is immediate; a container that exits again within the current delay of its
last restart waits until that delay has passed, and each restart doubles the
delay, from 10 s up to 5 minutes (CrashLoopBackOff). An entry older than
twice the cap (10 minutes without a restart) starts over. The base is a
parameter, so tests can use a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = 10.0  # seconds: the kubelet's initial back-off
CAP = 300.0  # seconds: its maximum (MaxContainerBackOff)


@dataclass
class _Entry:
    delay: float
    last: float  # when the container was last restarted


class Backoff:
    """Per-container restart delays (one key per ``pod/container``)."""

    def __init__(self, base: float = BASE, cap: float = CAP):
        self.base, self.cap = base, cap
        self._entries: dict[str, _Entry] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds before ``key`` may be restarted (0: now)."""
        e = self._entries.get(key)
        if e is None or now - e.last > 2 * self.cap:
            return 0.0
        return max(0.0, e.last + e.delay - now)

    def restarted(self, key: str, now: float) -> None:
        """``key`` is being restarted now: the next restart waits for the next delay."""
        e = self._entries.get(key)
        if e is None or now - e.last > 2 * self.cap:
            self._entries[key] = _Entry(self.base, now)
        else:
            self._entries[key] = _Entry(min(e.delay * 2, self.cap), now)

    def delay(self, key: str) -> float | None:
        e = self._entries.get(key)
        return e.delay if e else None

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
