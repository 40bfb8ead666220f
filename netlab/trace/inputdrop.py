"""A packet delivered into a pod's namespace that a firewall rule there dropped: named, with its fix.

The walk ends where the route says local ("delivered"), but the packet still
crosses the namespace's INPUT hook before any socket sees it: a DROP (or
REJECT) in the pod's own filter table (``iptables -I INPUT ... -j DROP`` inside
the pod, a program's firewall) takes it there, and the destination then
"sends no reply", which looks like the application's fault. netlab writes no
rule in a pod's filter table but what the plan has (none today): ``status`` calls
any other rule there different ("extra rule: ...").

The destination namespaces' filter tables are read with their counters
(``iptables-save -c -t filter``) before the packet and after it, as the nodes'
policy chains are (policy.reject_counters): a DROP or REJECT rule, or a built-in
chain's DROP policy, that counted a packet in between dropped it (the trace's
packet is the only one the namespace sees then). An nftables table the lab does
not plan that drops it at the input hook is named as foreignnft says.

The pod that sends a packet has an OUTPUT chain of its own: a DROP or REJECT
there (or its DROP policy) takes the request before it leaves the source pod,
or the reply before it leaves the destination pod (``at_source``), read from
the same tables: the packet reaches no device the walk names after it.
"""

from __future__ import annotations

import re
from typing import Iterable


Reason = tuple[str, str | None]  # (why, fix)
_RULE = re.compile(r"^\[(\d+):\d+\] (-A (\S+) .*)$")
_POLICY = re.compile(r"^:(INPUT|FORWARD|OUTPUT) (DROP) \[(\d+):\d+\]$")
_DROPS = re.compile(r" -j (DROP|REJECT)\b")
_ARRIVING = ("INPUT", "FORWARD")  # a built-in chain that takes a packet arriving in the namespace


def counts(text: str, hook: str = "INPUT") -> dict[tuple[str, int], int]:
    """(the rule as iptables-save prints it without counters, its occurrence) -> packets it counted; a built-in
    chain's DROP policy as (":CHAIN DROP", 0). ``hook``: INPUT, what a packet arriving meets (every chain but
    OUTPUT); OUTPUT, what a packet the namespace sends meets (OUTPUT and the chains of the namespace's own)."""
    out: dict[tuple[str, int], int] = {}
    for line in text.splitlines():
        m = _RULE.match(line)
        if m and _DROPS.search(m.group(2)) and (m.group(3) != "OUTPUT" if hook == "INPUT"
                                                 else m.group(3) not in _ARRIVING):
            n = sum(1 for key in out if key[0] == m.group(2))
            out[(m.group(2), n)] = int(m.group(1))
            continue
        p = _POLICY.match(line)
        if p and (p.group(1) in _ARRIVING) == (hook == "INPUT"):
            out[(f":{p.group(1)} DROP", 0)] = int(p.group(3))
    return out


def dropped(ns: str, who: str, before: str | None, after: str | None, planned: Iterable[str] = (),
            hook: str = "INPUT") -> Reason | None:
    """The rule of ``ns``'s filter table that counted the packet between ``before`` and ``after`` (its tables'
    texts), and the fix; ``who``: the namespace in words ("pod api"); ``planned``: the rules the lab writes there
    (as iptables-save prints them); ``hook``: INPUT (the packet arrived there), OUTPUT (the namespace sent it)."""
    if before is None or after is None:
        return None
    was, now = counts(before, hook), counts(after, hook)
    when = "after it arrived, before any socket saw it" if hook == "INPUT" else \
        "on its way out, before any device sent it (the sender's own firewall)"
    ours = set(planned)
    for (line, n), packets in now.items():
        if packets <= was.get((line, n), 0):
            continue
        if line.startswith(":"):
            chain = line[1:].split()[0]
            return (f"{who}'s filter chain {chain} has policy DROP, and no rule of it accepted the packet (it counted "
                    f"it: ip netns exec {ns} iptables -nvL {chain}); `netlab status` lists it",
                    f"ip netns exec {ns} iptables -P {chain} ACCEPT")
        chain = line.split()[1]
        whose = "a rule of the lab's" if line in ours else "a rule netlab did not write"
        listed = "" if line in ours else "; `netlab status` lists it"
        return (f"{whose} in {who}'s filter chain {chain} dropped the packet {when}: `{line}` (it counted it: "
                f"ip netns exec {ns} iptables -nvL {chain}){listed}",
                f"ip netns exec {ns} iptables -D {line[3:]}")
    return None


def at_destination(k: object, hops: list, before: dict[str, str], after: dict[str, str],
                   planned: dict[str, tuple[str, ...]], replied: bool) -> tuple[int, Reason] | None:
    """The row where the packet was delivered (the walk's last, kind "deliver") and why it was dropped there: a
    rule of its namespace's filter table that counted it, or (no reply came) an nftables table the lab does not
    plan that drops it at the input hook."""
    from netlab.trace import foreignnft

    i = next((i for i in range(len(hops) - 1, -1, -1) if hops[i].kind == "deliver"), None)
    if i is None:
        return None
    ns = hops[i].netns
    why = dropped(ns, hops[i].where, before.get(ns), after.get(ns), planned.get(ns, ()))
    if why is None and not replied:
        at = foreignnft.where(hops, i)
        read = getattr(k, "nft_ruleset", None)
        ruleset = read(ns) if at is not None and read is not None else None
        d = foreignnft.foreign_drop(ruleset, "input", at[2]) if at is not None and ruleset else None
        why = foreignnft.reason(ns, d) if d is not None else None
    return (i, why) if why is not None else None


def at_source(hops: list, before: dict[str, str], after: dict[str, str],
              planned: dict[str, tuple[str, ...]]) -> tuple[int, Reason] | None:
    """The first row of a packet that a pod sent (the request from the source pod, or the reply from the
    destination pod) and why it was dropped there: a DROP or REJECT of that pod's own OUTPUT chain (or a chain of
    its own) that counted it, or OUTPUT's DROP policy."""
    if not hops:
        return None
    ns = hops[0].netns
    why = dropped(ns, hops[0].where, before.get(ns), after.get(ns), planned.get(ns, ()), hook="OUTPUT")
    return (0, why) if why is not None else None
