"""A running lab's rollback puts the pods' resolv.conf and hosts files, and the nodes' Flannel files, back as the
lab's last good run had them (lab/rollback.py, ``put_back``).

An `up` of an edited file rewrites the files the edit changes: every pod's resolv.conf when the lab gets its first
Service (the cluster DNS) or loses its last, a pod's hosts file when its hostname changed, a node's subnet.env when
its podCIDR did. A run stopped or failed after that left them so while its line said "rolled back": a lab that had no
cluster DNS kept resolv.conf files naming a DNS Service the rollback took away. Only the files whose content the run's
topology and the one put back ask differently are looked at, in the namespaces the rollback neither made nor deletes:
each is written as the topology put back asks, or taken away when it asks for none (netlab's own alone, as ``up``
does); no other file is rewritten (one edited by hand stays edited: a rollback is not a repair).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Collection

from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.services import hosts, netns_files

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState


def put_back(lab: Lab, state: LabState, rec: dict, ran: Lab, skip: Collection[str],
             kinds: dict[str, tuple[Callable[[Lab], netns_files.Wanted], str]]) -> list[str]:
    """Write the files of ``kinds`` (kind -> (what a lab wants of it, what a pod misses without it)) that ``ran`` (the
    run's lab) wants otherwise than ``lab`` (the lab put back), as ``lab`` wants them; then the Flannel files
    of the nodes the two labs ask them differently of (no other node's). ``rec``: the Services feature's record.
    Returns what it could not, one line each."""
    from netlab.services import flannel_files

    mounted = {p.netns for p in lab.pods if p.netns not in skip and nsmod.is_netns_mount(p.netns)}
    done = StartResult()
    for kind, (wanted, without) in kinds.items():
        old, new = wanted(lab), wanted(ran)
        changed = {ns for ns in set(old) | set(new) if ns in mounted and old.get(ns) != new.get(ns)}
        if not changed:
            continue
        for netns in sorted(changed - set(old)):  # none asked of it now: netlab's file goes (its folder in tidy)
            netns_files.remove(lab.name, rec, kind, netns, done)
        done += netns_files.sync(lab.name, state, rec, kind, {ns: v for ns, v in old.items() if ns in changed},
                                 without=without, others=False)
    nodes = {n.name: n for n in ran.nodes}
    moved = {n.name for n in lab.nodes if n.netns not in skip and n.name in nodes
             and flannel_files.files(lab, n) != flannel_files.files(ran, nodes[n.name])}
    if moved:  # those nodes' files alone: another's, edited by hand, stays edited
        done += flannel_files.sync(lab, state, only=moved)
    return done.problems


def kinds(resolv_wanted: Callable[[Lab], netns_files.Wanted], resolv_without: str
          ) -> dict[str, tuple[Callable[[Lab], netns_files.Wanted], str]]:
    """The pods' files the Services feature writes: resolv.conf, hosts."""
    return {"resolv": (resolv_wanted, resolv_without), hosts.KIND: (hosts.wanted, hosts.WITHOUT)}
