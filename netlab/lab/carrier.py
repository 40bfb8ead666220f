"""Waiting for the links a repair brought up to carry traffic.

A link set up is not forwarding yet. The kernel's link watch (a work item that
needs the RTNL lock) marks it operationally up a moment after its carrier
comes; only then does its bridge enable the port, and does the device get its
queueing discipline (until then what is sent on it is dropped). On an idle
machine that is a millisecond; on a busy one, with other labs holding the RTNL
lock, it can be much longer: the likely cause of a ``probe`` started right
after a repairing ``up`` finding the repaired pod cut off, once in a loaded
test run. ``up`` waits for it, bounded, asking the kernel for the flag
IFF_RUNNING: operstate UP, or UNKNOWN for a device that reports none (``lo``,
a VXLAN device, a bridge that never had a port), as ``ip link`` prints after
``state``.
"""

from __future__ import annotations

from typing import Iterable

from netlab.kernel import running
from netlab.kernel.base import Kernel
from netlab.plan.build import Plan

CARRIER_WAIT = 3.0  # seconds, at most


def wait_running(kernel: Kernel, links: Iterable[tuple[str, str]],
                 timeout: float | None = None) -> list[tuple[str, str]]:
    """Wait until every (namespace, link) is operationally up; returns those that are not by ``timeout``
    (CARRIER_WAIT, as it is at the call, where None): kernel/running.py's wait."""
    return running.wait_running(kernel, links, CARRIER_WAIT if timeout is None else timeout)


def planned_running(plan: Plan) -> list[tuple[str, str]]:
    """Every (namespace, link) of the plan that runs once the lab is up: both ends of each veth that is up (the
    plan sets its two ends up together), and each bridge that is up with such a port (one without carries
    nothing)."""
    bridges = {(r.netns, r.name) for r in plan.of_kind("bridge") if r.up}  # type: ignore[attr-defined]
    out: list[tuple[str, str]] = []
    for v in plan.of_kind("veth"):
        if not v.up:  # type: ignore[attr-defined]
            continue
        out += [(v.netns, v.name), (v.peer_netns, v.peer_name)]  # type: ignore[attr-defined]
        if v.master and (v.netns, v.master) in bridges:  # type: ignore[attr-defined]
            out.append((v.netns, v.master))  # type: ignore[attr-defined]
    return list(dict.fromkeys(out))
