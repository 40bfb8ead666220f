"""What CNI plugins write on the machine, outside the lab: said, never removed.

netlab points the ``dataDir`` of every host-local it can see into the lab's folder (cni/edited.py): a plugin's
own ``ipam``, Flannel's, a wrapper's ``delegate.ipam``. A wrapper that builds its delegate's IPAM itself (as
Flannel builds it from subnet.env) hands host-local a config netlab never sees: host-local then keeps its leases
in ``/var/lib/cni/networks/<network>`` on the machine, as on a real node, where every lab shares them, and its
``lock`` and ``last_reserved_ip.0`` stay after the pods' DEL. ``up`` notes what is under ``/var/lib/cni/networks``
and ``/var/lib/cni/results`` (libcni's cache, which a plugin that runs libcni itself writes) before the lab's CNI
ADDs and after, says the new paths in one warning and records them in the lab's state; ``down`` says those still
there. Nothing is removed: the machine's /var/lib/cni may be a real node's, and another process's plugins may
write there meanwhile (the line says what appeared while this lab's plugins ran, not whose it is).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netlab.realize.state import LabState

HOST_DIRS = ("/var/lib/cni/networks", "/var/lib/cni/results")  # where plugins and libcni keep state on a node
RECORD = "cni_host_writes"  # the lab's state: the paths its plugins wrote outside it, as up found them
SHOWN = 6  # paths a line names; the rest are counted


def entries() -> frozenset[str]:
    """Every path under HOST_DIRS, two levels deep (``networks/<network>/<lease>``), links not followed."""
    found: set[str] = set()
    for root in HOST_DIRS:
        _walk(root, 2, found)
    return frozenset(found)


def _walk(path: str, depth: int, found: set[str]) -> None:
    try:
        with os.scandir(path) as listing:
            for entry in listing:
                found.add(entry.path)
                if depth > 1 and entry.is_dir(follow_symlinks=False):
                    _walk(entry.path, depth - 1, found)
    except OSError:  # not there (the machine never ran a plugin that writes there), or not a folder
        return


def written(before: frozenset[str]) -> list[str]:
    """The paths under HOST_DIRS that were not there ``before``: the files, and a new folder only when empty."""
    new = entries() - before
    return sorted(p for p in new if not any(q.startswith(p + os.sep) for q in new))


LEAD = "cni: a plugin wrote outside the lab: "


def is_line(text: str) -> bool:
    return text.startswith(LEAD)


def line(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN]) + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")
    return (f"{LEAD}{shown} (host-local without a dataDir netlab can see, as a "
            f"wrapper hands its delegate: the machine's leases); netlab does not remove "
            f"{'it' if len(paths) == 1 else 'them'}")


def written_line(before: frozenset[str]) -> list[str]:
    """What appeared since ``before``, in one line (none when nothing did): a failed up's, after its rollback."""
    paths = written(before)
    return [line(paths)] if paths else []


def watched(state: LabState) -> bool:
    """The lab's pods are attached by CNI plugins (its topology's network.cni names a conflist or reference)."""
    topology = state.topology if isinstance(state.topology, dict) else {}
    network = topology.get("network")
    cni = network.get("cni", "builtin") if isinstance(network, dict) else "builtin"
    return cni != "builtin" or RECORD in state.extra


def noted(state: LabState, before: frozenset[str] | None) -> list[str]:
    """After up's ADDs: what appeared since ``before`` (None: not a CNI lab), recorded in the lab's state for
    ``down`` (the caller saves it) and said in one line."""
    if before is None:
        return []
    paths = written(before)
    if not paths:
        return []
    kept = state.extra.get(RECORD)
    state.extra[RECORD] = sorted(set(kept if isinstance(kept, list) else []) | set(paths))
    return [line(paths)]


def left(state: LabState, before: frozenset[str] | None) -> list[str]:
    """At down, once the DELs ran: what the lab's plugins wrote outside it and is still there (what up recorded,
    and what appeared since ``before``, the DELs'), in one line."""
    kept = state.extra.get(RECORD)
    paths = {p for p in (kept if isinstance(kept, list) else []) if isinstance(p, str) and os.path.lexists(p)}
    paths |= set(written(before)) if before is not None else set()
    return [line(sorted(paths))] if paths else []
