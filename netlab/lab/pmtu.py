"""Path MTUs the lab's namespaces learned while an MTU was other than planned, forgotten once ``up`` repairs it.

A route or link of smaller MTU on the way (``ip route replace ... mtu 1000`` on a node, a veth set to 1000) makes
the hop answer "fragmentation needed", and every sender behind it caches that path MTU as a route exception
(``ip route get`` shows ``mtu 1000``), kept net.ipv4.route.mtu_expires (600 s) after the hop is repaired: a pod
sending with DF (``ping -M do -s 1200``, TCP's PMTU discovery) is held to 1000 for ten minutes after ``up`` said
all is as planned. So when a run repairs an MTU (a link's, a route's ``mtu`` metric), each namespace of the lab
that was there forgets what it learned (``ip route flush cache``: net.ipv4.route.flush, which makes every
exception stale). Not journaled: a flushed cache is learned again, nothing to put back.
"""

from __future__ import annotations

from typing import Iterable

from netlab.kernel.base import Kernel, Op
from netlab.plan.resources import Link, Route
from netlab.plan.route_attrs import RTAX_MTU


def _mtu(r: object) -> int | None:
    if isinstance(r, Link):
        return r.mtu
    if isinstance(r, Route):
        return next((int(v) for k, v in r.metrics if k == RTAX_MTU), None)
    return None


def changes_an_mtu(op: Op) -> bool:
    """Does ``op`` change an MTU a path goes by: a link's set, a route's ``mtu`` added, changed or taken away (a link
    made again: while it was missing, nothing answered "fragmentation needed" through it)."""
    if isinstance(op.res, Link):
        return op.verb == "set" and op.old is not None and _mtu(op.old) != _mtu(op.res)
    if isinstance(op.res, Route):
        return _mtu(op.res) is not None or (op.old is not None and _mtu(op.old) is not None)
    return False


def forget_learned(kernel: Kernel, ops: Iterable[Op], namespaces: Iterable[str]) -> tuple[list[str], list[str]]:
    """When ``ops`` changed an MTU: each of ``namespaces`` forgets the path MTUs it learned. The line said, and what
    could not be flushed (warnings)."""
    if not any(changes_an_mtu(op) for op in ops):
        return [], []
    done, problems = [], []
    for ns in namespaces:
        try:
            kernel.flush_route_cache(ns)
        except OSError as exc:
            problems.append(f"could not flush the route cache of {ns} (the path MTUs it learned stay up to "
                            f"net.ipv4.route.mtu_expires): {exc.strerror or exc}")
            continue
        done.append(ns)
    said = [f"flushed the path MTUs learned while an MTU was other than planned in {len(done)} namespace"
            f"{'s' if len(done) != 1 else ''} (ip route flush cache)"] if done else []
    return said, problems
