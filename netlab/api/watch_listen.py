"""What ``up --watch`` hears from the kernel: the lab's rtnetlink and nf_tables notifications, and the echo of
its own repairs among them (netlab.kernel.events reads them; api/watch.py decides what they mean).

A notification in a lab namespace is a change to check against the plan; the neighbour and FDB entries the
plan holds PERMANENT are named to the listener, which reports one that loses its state (a VTEP's neighbour
demoted by hand) as drift. After a repair, the sockets are opened again where the repair made a namespace
anew (the old sockets would listen to the deleted one, and keep it alive).
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from netlab.api.watch_lines import dedupe, summary
from netlab.kernel import events as kevents
from netlab.kernel import netns as nsmod
from netlab.model.lab import Lab
from netlab.plan.build import build_plan
from netlab.plan.resources import Fdb, Neigh

SETTLE = 0.05  # seconds to let a burst of notifications (one `ip` command makes several) arrive


class Listening:
    """The watcher's notification sockets (``listener``) and what they heard that the next round still checks
    (``pending``): :class:`~netlab.api.watch.Watcher` is one."""

    listener: kevents.Listener | None
    pending: list[str]

    def _listen(self, lab: Lab, made: Iterable[str] = ()) -> list[kevents.Event]:
        """Sockets in the lab's namespaces as they are now. A namespace made again (``made``) is
        another namespace: the old sockets would listen to the deleted one, and keep it alive. Else
        the sockets stay (reopening loses what happens meanwhile). Returns what the old sockets had
        queued, read after the new ones listen: mostly the echo of our own changes (carriers coming up a few ms
        after a link)."""
        # Every namespace of the lab: nodes and pods, and the underlay and the internet's machines (its bridge
        # br0 and the gateway's SNAT were repaired only by the periodic check); but a terminal pod's that is gone
        # (removed with its stopped sandbox, cni/terminated.py): a socket left in it would keep it alive
        gone = {p.netns for p in lab.pods if p.name in lab.terminal and not nsmod.is_netns_mount(p.netns)}
        names = [ns for ns in lab.netns_names() if ns not in gone] + [netns for _, netns in lab.internet_hosts]
        if self.listener is not None and self.listener.namespaces == sorted(names) and not set(made):
            time.sleep(SETTLE)
            self.listener.permanent = _permanent(lab)
            return self.listener.drain()
        permanent = _permanent(lab)
        fresh = kevents.Listener(names)
        fresh.permanent = permanent
        queued: list[kevents.Event] = []
        if self.listener is not None:  # read once the new sockets listen: a change meanwhile is on one or both
            queued = self.listener.drain()
            self.listener.close()
        self.listener = fresh
        return queued

    def _relisten(self, lab: Lab, made: Sequence[str], own: Sequence[str] = (),
                  heard: Sequence[kevents.Event] = ()) -> list[str]:
        """Listen again after an apply that made the namespaces ``made``, and sort what came meanwhile.

        ``own``: the namespaces the apply deleted itself and made again (a pod moved to another node): one
        deletion of each is the apply's own work, no outside change, and is not said (QA q39 5: the watcher's
        line read "saw: t1.yaml changed; namespace deleted in L-client").

        ``heard``: what the kernel reported before the repair read the lab, having changed nothing yet: changes
        it mended (or found as planned again), no echo: returned, for its line to say.

        A lab namespace deleted meanwhile is not echo: one the apply made again was answered by it
        (returned, for the apply's line to say), one still gone is kept in ``pending`` for the next
        round, which makes it again. The rest is mostly the apply's echo, kept in ``pending`` too: a change
        made by hand after the repair read the lab and before this drain comes with it (CI saw a
        neighbour set REACHABLE then wait for the periodic check), so the next round reads the lab
        once more, and says nothing if it is as planned."""
        queued = self._listen(lab, made)
        assert self.listener is not None
        names = set(self.listener.namespaces)  # the lab's, as listened to now
        answered: list[str] = []
        echo: list[kevents.Event] = []
        seen: list[kevents.Event] = []  # heard before the repair read the lab
        mine = list(own)
        for k, e in enumerate([*heard, *queued]):
            if e.netns not in names:
                continue
            if e.what != "namespace deleted":
                (seen if k < len(heard) else echo).append(e)
                continue
            if e.netns in mine:  # the apply's own deletion (its namespace made again: another one)
                mine.remove(e.netns)
                continue
            line = f"{e.what} in {e.netns}"
            if not nsmod.is_netns_mount(e.netns):
                self.pending.append(line)
            elif e.netns in made:
                answered.append(line)
        self.pending += summary(echo)
        return dedupe(answered + summary(seen))


def _permanent(lab: Lab) -> dict[str, frozenset[str]]:
    """Per namespace, the neighbours' addresses and the FDB entries' MACs the lab's plan holds PERMANENT."""
    out: dict[str, set[str]] = {}
    for r in build_plan(lab).resources:
        if isinstance(r, (Neigh, Fdb)):
            out.setdefault(r.netns, set()).add(str(r.dst) if isinstance(r, Neigh) else r.lladdr.lower())
    return {netns: frozenset(keys) for netns, keys in out.items()}
