"""iptables rules the lab does not plan on the packet's way: named at the row where the packet met them.

``status`` calls a rule of a lab's filter table that its plan does not hold extra
("different: iptables filter rules in L-n1 (extra rule: -A FORWARD -s ... -j DROP)",
realize/netfilter_drift.table_drift): someone added it by hand (``iptables -I
FORWARD ...``), or a tool. A packet meets the rules of the chains its hooks run
in each namespace it crosses: FORWARD where a node routes it (or br_netfilter
hands a bridged frame to iptables), INPUT where it is delivered, OUTPUT where it
is sent. trace names such a rule at that row, whatever it does (an ACCEPT, a
LOG, a MARK changes what the plan decides as surely), with its counter's rise
while the trace ran, and its fix: the ``-D`` that takes it out, or the lab's
repair for several. One that dropped the packet where it vanished is the loss's
reason (:func:`dropped`, asked by lossblame.firewall).

The tables are those trace read with counters before the packet and right after
it (run.py: the nodes' and the ends'); the lab's rules are what status compares
them with (netfilter_drift.owned_lines against the plan's NatRules, its CNI plugins'
jumps left out where they run).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from netlab.kernel.iptables import command as ipt_command
from netlab.realize.netfilter import parse_save
from netlab.realize.netfilter_drift import owned_lines
from netlab.trace import inputdrop
from netlab.trace.hops import Hop, Walk
from netlab.trace.verdict import Verdict

_COUNTED = re.compile(r"^\[(\d+):\d+\] (-A .*)$")
EXTRA = "a rule the lab does not plan (`netlab status` calls it extra)"


def _plain(text: str) -> str:
    """``iptables-save -c`` text without its counters, as status reads a table."""
    return "\n".join(m.group(2) if (m := _COUNTED.match(line)) else line for line in text.splitlines())


def counters(text: str) -> dict[str, int]:
    """rule -> packets it counted (the first of equal rules)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _COUNTED.match(line)
        if m:
            out.setdefault(m.group(2), int(m.group(1)))
    return out


def extra(text: str, planned: Any, hook: str) -> list[str]:
    """The rules of ``text`` (a filter table, ``iptables-save -c``) the plan does not hold, in the chains a packet
    at ``hook`` (FORWARD, INPUT, OUTPUT) runs: the built-in chain and those its rules lead to. ``planned``: the
    namespace's planned table (labmap.PlannedNat; None: the plan writes no rule there, a pod's)."""
    chains = planned.chains if planned is not None else frozenset()
    rules = set(planned.rules) if planned is not None else set()
    jumps = bool(getattr(planned, "plugin_jumps", False))
    tab = parse_save(_plain(text), "filter")
    met = inputdrop.chains_from(text, (hook,))
    return [line for line in owned_lines(tab, chains, jumps) if line not in rules and line.split()[1] in met]


def _packets(n: int) -> str:
    return f"{n} packet{'' if n == 1 else 's'}"


def _hooks(way: Walk, rows: list[Hop], unfiltered: Iterable[str]) -> list[tuple[Hop, str]]:
    """(row, hook) for each namespace's filter hook the packet ran at, the row where it did: its first row (the
    sender's OUTPUT), a forwarded route row or, where br_netfilter runs, a bridge's switching row (FORWARD), a
    delivery (INPUT)."""
    off = set(unfiltered)
    out: list[tuple[Hop, str]] = []
    if rows and way.hops and rows[0] is way.hops[0]:
        out.append((rows[0], "OUTPUT"))
    for h in rows:
        if (h.kind == "route" and h.facts.get("iif")) or (h.kind == "bridge" and "port" in h.facts
                                                           and h.netns not in off):
            out.append((h, "FORWARD"))
        elif h.kind == "deliver":
            out.append((h, "INPUT"))
    return out


def note(walks: Iterable[tuple[Walk | None, list[Hop]]], before: Mapping[str, str], after: Mapping[str, str],
         planned: Mapping[str, Any], lab_netns: Iterable[str], unfiltered: Iterable[str], repair: Any) -> None:
    """Say at each row where the packet ran a filter hook whose chains hold rules the plan does not (each namespace
    and hook once, the first row), unless the row says a problem already. ``walks``: each walk with the rows its
    packet passed (crossed.crossed); ``before``/``after``: netns -> its filter table read with counters around the
    packet; ``lab_netns``: the lab's namespaces (every table of theirs is the lab's, status compares them all);
    ``repair``: the lab's repair (a callable: worked out when a line names it), the fix for several rules."""
    ours = set(lab_netns)
    said: set[tuple[str, str]] = set()
    for way, rows in walks:
        if way is None:
            continue
        for h, hook in _hooks(way, rows, unfiltered):
            key = (h.netns, hook)
            text = after.get(h.netns)
            if key in said or text is None or h.netns not in ours:
                continue
            said.add(key)
            lines = extra(text, planned.get(h.netns), hook)
            if not lines or h.problem is not None:
                continue
            was, now = counters(before.get(h.netns, "")), counters(text)
            rose = [f"`{line}` (counted {_packets(now.get(line, 0) - was.get(line, 0))} while the trace ran)"
                    for line in lines]
            what = "a rule" if len(lines) == 1 else f"{len(lines)} rules"
            it = "it" if len(lines) == 1 else "them"
            h.problem = (f"the packet ran {hook} in {h.netns}, whose chains hold {what} the lab does not plan: "
                         f"{'; '.join(rose)}; `netlab status` calls {it} extra, and the lab's repair takes {it} out")
            h.fix = f"ip netns exec {h.netns} {ipt_command()} -D {lines[0][3:]}" if len(lines) == 1 else repair()


def dropped(k: Any, hops: list[Hop], v: Verdict, planned: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """A packet that vanished in a node it was forwarding through, where route, ARP and FDB look right: the DROP
    or REJECT of that node's FORWARD chains the plan does not hold that counted a packet while the trace ran.
    ``planned``: netns -> its filter table as planned (labmap.planned_filter: the nodes')."""
    if v.lost_at is None:
        return None
    h = hops[v.lost_at]
    plan = planned.get(h.netns)
    before, after = getattr(k, "filters_before", {}).get(h.netns), getattr(k, "filters_after", {}).get(h.netns)
    if plan is None or before is None or after is None:
        return None
    return inputdrop.dropped(h.netns, h.where, before, after, plan.rules, hook="FORWARD", ours_too=False)
