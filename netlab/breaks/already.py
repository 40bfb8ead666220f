"""Is a scenario's change in the kernel already? (``netlab break`` of a scenario applied and not repaired.)

A second ``netlab break`` of the same scenario on the same target must say so and change nothing, whatever
the scenario: the kernel's answers to doing it again differ (a sysctl written twice is no error, a route
deleted twice is ENOENT, an iptables rule deleted twice fails the restore, a stopped pod has nothing to stop).
So each step is compared with what the namespace holds, the way status compares the plan (observe.py), but
against the broken state:

- a netlink object the steps delete (and do not add back) is absent;
- one they set, replace or add holds the values the change gives it (the attributes it changes; a plain add
  of the plan's object, such as what vxlan-wrong-vni puts back, is there);
- a sysctl holds the value written;
- an iptables ``-D`` rule is in no backend's table, a ``:CHAIN POLICY`` line is the chain's policy.

The break's actions (a stopped pod, a conntrack entry) are judged by netlab.breaks.run, which reads them.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Sequence

from netlab.kernel.base import Kernel, Op, TableText
from netlab.plan.resources import Link, Resource, Sysctl, Veth
from netlab.realize.observe import Observed, observe


def _namespaces(ops: Sequence[Op]) -> set[str]:
    out = {op.res.netns for op in ops}
    out |= {op.res.peer_netns for op in ops if isinstance(op.res, Veth) and op.res.peer_netns}
    return out


def read(kernel: Kernel, ops: Sequence[Op]) -> dict[str, Observed]:
    """The namespaces the ops change, as resources (with the sysctls they write and the iptables tables)."""
    asks = {ns: ([op.res.name for op in ops if isinstance(op.res, Sysctl) and op.res.netns == ns], True)
            for ns in sorted(_namespaces(ops))}
    snaps = kernel.snapshot_many(asks)
    # Observed against the plan's object (a set's old), never the break's: observe reports a port whose link is
    # down in its planned STP state (the kernel shows it disabled by itself), which must not read as a port held
    # disabled by hand (bridge-port-disabled taken for in place on a port bridge-port-down set down).
    planned = {r.key: r for op in ops for r in (op.res, op.old) if isinstance(r, Resource)}
    return {ns: observe(snap, {k: r for k, r in planned.items() if r.netns == ns}, snaps) for ns, snap in snaps.items()}


def refusal(ops: Sequence[Op], seen: dict[str, Observed]) -> str | None:
    """Why the kernel cannot make a change of ``ops`` on top of what the namespaces hold (None: it can): an STP
    state set on a bridge port whose link is down or without carrier. The kernel disables such a port by itself
    and takes no state for it (ENETDOWN), and enables it again when the link comes up, so a state held by hand
    means nothing there (bridge-port-disabled on a port bridge-port-down set down)."""
    for op in ops:
        res, obs = op.res, seen.get(op.res.netns)
        if op.verb != "set" or not isinstance(res, Veth) or not isinstance(op.old, Veth) or obs is None:
            continue
        if res.port_state == op.old.port_state or res.port_state is None:
            continue
        have = obs.objects.get(res.key)
        bridge = obs.objects.get(("link", res.netns, res.master or ""))
        why = ("is down" if isinstance(have, Link) and not have.up else
               "has no carrier (its veth's other end is down)" if isinstance(have, Link) and res.name not in obs.running
               else f"is a port of {res.master}, which is down" if isinstance(bridge, Link) and not bridge.up else None)
        if why:
            return (f"its bridge port {res.name} in {res.netns} {why}: the kernel shows such a port disabled by "
                    f"itself and takes no STP state for it until the link is up again")
    return None


def in_effect(ops: Sequence[Op], seen: dict[str, Observed]) -> bool:
    """Every change of ``ops`` is what the namespaces hold already (an empty list: nothing to judge, False)."""
    return bool(ops) and not still_to_do(ops, seen)


def still_to_do(ops: Sequence[Op], seen: dict[str, Observed]) -> list[Op]:
    """The ops of a break that are not in the kernel yet, in their order: what a half-repaired break still needs.

    A user may put back one step of a fault by hand (re-add one of two deleted entries, set the FORWARD policy
    back to ACCEPT): the break again applies only the rest, since doing a step that is in place again may fail
    (a delete of what is gone is ENOENT; iptables ``-D`` of a rule that is not there fails the whole restore).
    An object judged by its last op (a delete and an add of one key: vxlan-wrong-vni's device made again) is
    skipped whole when that op is in place; else a delete of what is gone already is skipped. What hangs on a
    link deleted again (its addresses, neighbours, FDB entries, routes) goes with it, so its adds are kept.
    A restore keeps only its lines not in place."""
    last: dict[tuple, Op] = {}
    before: dict[tuple, Resource] = {}  # what a key held before the change: the plan's object
    for op in ops:
        if isinstance(op.res, TableText):
            continue
        key = op.res.key
        if op.verb == "del":
            before.setdefault(key, op.res)
        elif isinstance(op.old, Resource):
            before.setdefault(key, op.old)
        last[key] = op
    done_keys = {key for key, op in last.items()
                 if _object_in_effect(op, before.get(key), seen.get(op.res.netns))}
    out: list[Op] = []
    remade: set[tuple[str, str]] = set()  # (netns, link) deleted by a kept op: what hangs on it goes with it
    for op in ops:
        res = op.res
        if isinstance(res, TableText):
            left = _rules_left(res, seen.get(res.netns))
            if left is not None:
                out.append(replace(op, res=left))
            continue
        obs = seen.get(res.netns)
        hangs = (res.netns, getattr(res, "dev", None)) in remade
        if not hangs and res.key in done_keys:
            continue
        if not hangs and op.verb == "del" and obs is not None and res.key not in obs.objects:
            continue  # gone already
        if op.verb == "del" and res.key[0] == "link":
            remade.add((res.netns, getattr(res, "name", "")))
        out.append(op)
    return out


def _object_in_effect(op: Op, old: Resource | None, obs: Observed | None) -> bool:
    if obs is None:  # the namespace is gone: not a break in place, the apply says what is wrong
        return False
    res = op.res
    if isinstance(res, Sysctl):
        return obs.sysctls.get(res.name) == res.value
    have = obs.objects.get(res.key)
    if op.verb == "del":
        return have is None
    if have is None:
        return False
    if old is None:  # added as planned (put back): it is there
        return True
    changed = [f.name for f in fields(res) if getattr(res, f.name) != getattr(old, f.name)]
    return all(getattr(have, name, None) == getattr(res, name) for name in changed)


def _words(line: str) -> list[str]:
    return line.replace('"', " ").split()


def _rules_left(t: TableText, obs: Observed | None) -> TableText | None:
    """What of an ``iptables-restore --noflush`` payload is not in the table yet (its deletions of rules that are
    there, its policies the chains do not have), or None when it all is."""
    if obs is None:
        return t  # the namespace is gone: the apply says what is wrong
    saved = [text for tables in obs.tables.values() for name, text in tables.items() if name == t.table]
    lines = [line for text in saved for line in text.splitlines()]
    rules = {tuple(_words(line)[1:]) for line in lines if line.startswith("-A ")}
    keep: list[str] = []
    for line in t.text.splitlines():
        if line.startswith("-D "):
            if tuple(_words(line)[1:]) in rules:
                keep.append(line)
        elif line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            if not any(line2.split()[:2] == [f":{chain}", policy] for line2 in lines):
                keep.append(line)
        elif line.startswith(("-A ", "-I ")):  # an addition: judged as not in place (none of the catalogue's)
            keep.append(line)
    if not keep:
        return None
    return replace(t, text=f"*{t.table}\n" + "".join(line + "\n" for line in keep) + "COMMIT\n")
