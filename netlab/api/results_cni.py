"""The results of ``Lab.cni_log``: a lab's CNI plugin calls, as ``netlab cni log -o json`` shows them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netlab.api.frozen import freeze


@dataclass(frozen=True)
class CniCall:
    """One call of a CNI plugin (``calls[]`` of ``netlab cni log -o json``): what the runtime handed the plugin
    (``env``, its CNI_* variables among them, and ``stdin``, the config it got, prevResult included) and what it
    answered. ``started`` is a Unix time; ``exit_code`` None: the plugin was still running at its deadline;
    ``killed_after_s``: netlab killed it there (also one that had exited, leaving a process holding its output open)."""

    __json_aliases__ = {"duration": "elapsed_s"}  # the log's own key, deprecated in the output (docs/json.md)

    pod: str
    network: str
    plugin: str  # its type: the program's name in binDir (or /usr/lib/cni)
    command: str  # ADD, DEL or CHECK
    env: Mapping[str, str]
    stdin: Mapping[str, Any]
    runs_in: str  # the namespace it ran in: the pod's node's (the plugins' "host")
    stdout: str
    stderr: str
    exit_code: int | None
    elapsed_s: float
    started: float
    killed_after_s: float | None = None  # netlab killed the call at this deadline (NETLAB_CNI_TIMEOUT)

    @property
    def duration(self) -> float:
        """Deprecated: ``elapsed_s`` (docs/json.md)."""
        return self.elapsed_s

    @property
    def ok(self) -> bool:
        """The plugin exited 0, and netlab did not kill the call at its deadline."""
        return self.exit_code == 0 and self.killed_after_s is None

    @property
    def result(self) -> Mapping[str, Any] | None:
        """What it printed, read as JSON (an ADD's result, an error's code and msg); None: nothing, or not a JSON
        object. A DEL or CHECK that exits 0 succeeded whatever it printed (libcni reads none of it)."""
        try:
            data = json.loads(self.stdout)
        except ValueError:
            return None
        return freeze(data) if isinstance(data, dict) else None


@dataclass(frozen=True)
class CniLog:
    """A lab's CNI plugin calls, oldest first (``netlab cni log -o json``): every pod's, or ``pod``'s alone."""

    lab: str
    pod: str | None
    calls: tuple[CniCall, ...]
