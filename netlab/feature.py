"""What a feature's start() did: the contract between ``up`` and the features that run after the network.

The features (netlab.services.lifecycle: resolv.conf files, stale chains and
conntrack entries; netlab.workload.lifecycle: containers) change the lab too:
they start and restart processes and write files. ``up`` reports their
actions beside its own repairs, so it never says "nothing to change" after it
restarted a container or rewrote a file, and their problems as warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StartResult:
    """``actions``: what changed, one line each ("restarted container duo/web (it was stopped)").
    ``problems``: what could not be done, one line each (up prints them as warnings)."""

    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __iadd__(self, other: "StartResult") -> "StartResult":
        self.actions += other.actions
        self.problems += other.problems
        return self
