"""When a watched lab restarts an exited container that its pod's restartPolicy restarts: the kubelet's back-off.

Which containers the policy restarts is workload/policy.py's, for plain ``up``
and the watcher alike (an ``OnFailure`` container that was not the watcher's
child has its status from the kernel's taskstats records or the lab's echo
server). The back-off is the kubelet's (``pkg/kubelet/kuberuntime``'s ``doBackOff``
over client-go's ``flowcontrol.Backoff``, keyed by pod and container), measured
from the container's exit (``doBackOff`` asks ``IsInBackOffSince(key,
cStatus.FinishedAt)``: ``Since(FinishedAt) < backoff``): its first exit
restarts it at once; every later one waits the current delay counted from
that exit (not from the last restart: a run longer than the delay does not
shorten the wait), and each restart (``Next``) doubles the delay, from 10 s up
to 5 minutes (``MaxContainerBackOff``: CrashLoopBackOff). A container that
exits more than twice the cap (10 minutes) after its last restart ran long
enough: its entry has expired (``hasExpired(FinishedAt, lastUpdate, max)``) and
it starts over, restarted at once with the first delay. The base is a
parameter, so tests can use a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = 10.0  # seconds: the kubelet's initial back-off
CAP = 300.0  # seconds: its maximum (MaxContainerBackOff)


@dataclass
class _Entry:
    delay: float
    last: float  # when the container was last restarted (flowcontrol's lastUpdate)


class Backoff:
    """Per-container restart delays (one key per ``pod/container``). ``exited``: when that container's run
    exited (the kubelet's FinishedAt); None where it is not known: then now, when it was seen."""

    def __init__(self, base: float = BASE, cap: float = CAP):
        self.base, self.cap = base, cap
        self._entries: dict[str, _Entry] = {}

    def _live(self, key: str, exited: float) -> _Entry | None:
        """The entry of ``key``, None when there is none or it expired: the run that exited at ``exited`` had run
        more than twice the cap since its last restart (hasExpired)."""
        e = self._entries.get(key)
        return None if e is None or exited - e.last > 2 * self.cap else e

    def wait(self, key: str, now: float, exited: float | None = None) -> float:
        """Seconds before ``key``, which exited at ``exited``, may be restarted (0: now): its current delay
        counted from that exit (IsInBackOffSince)."""
        exited = now if exited is None else exited
        e = self._live(key, exited)
        if e is None:
            return 0.0
        return max(0.0, exited + e.delay - now)

    def restarted(self, key: str, now: float, exited: float | None = None) -> None:
        """``key``, which exited at ``exited``, is being restarted now: the next exit waits for the next delay."""
        e = self._live(key, now if exited is None else exited)
        self._entries[key] = _Entry(self.base if e is None else min(e.delay * 2, self.cap), now)

    def delay(self, key: str) -> float | None:
        e = self._entries.get(key)
        return e.delay if e else None

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
