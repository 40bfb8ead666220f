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

What sends a packet (a pod, a node, an internet host) has an OUTPUT chain of
its own: a DROP or REJECT there (or its DROP policy) takes the request before
it leaves the source, or the reply before it leaves the destination
(``at_source``), read from the same tables: the packet reaches no device the
walk names after it. The reply comes back to the source, whose own INPUT may
drop it as the destination's took the request (``judge``). Only the chains the
hook leads to are judged (a node forwards other packets meanwhile), and of a
sender's, none of the rules the lab writes (kube-proxy's are told elsewhere).
"""

from __future__ import annotations

import re
from typing import Collection, Iterable

from netlab.kernel.iptables import command as ipt_command
from netlab.trace.hops import Walk
from netlab.trace.verdict import Verdict


Reason = tuple[str, str | None]  # (why, fix)
_RULE = re.compile(r"^\[(\d+):\d+\] (-A (\S+) .*)$")
_POLICY = re.compile(r"^:(INPUT|FORWARD|OUTPUT) (DROP) \[(\d+):\d+\]$")
_DROPS = re.compile(r" -j (DROP|REJECT)\b")
_JUMP = re.compile(r"(?:^| )-[jg] (\S+)")


def chains_from(text: str, roots: Iterable[str]) -> set[str]:
    """The chains a packet that enters ``roots`` (built-in chains) may meet: they and every chain a rule of one
    jumps (-j) or goes (-g) to, over and over."""
    jumps: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = _RULE.match(line)
        if m:
            jumps.setdefault(m.group(3), set()).update(_JUMP.findall(m.group(2)))
    out, todo = set(), list(roots)
    while todo:
        chain = todo.pop()
        if chain not in out:
            out.add(chain)
            todo.extend(jumps.get(chain, ()))
    return out


def counts(text: str, hook: str = "INPUT") -> dict[tuple[str, int], int]:
    """(the rule as iptables-save prints it without counters, its occurrence) -> packets it counted; a built-in
    chain's DROP policy as (":CHAIN DROP", 0). ``hook``: INPUT, what a packet delivered into the namespace meets;
    OUTPUT, what a packet the namespace sends meets; FORWARD, what a node routes (trace/extrarules: its counts may
    hold other packets the node forwarded meanwhile): the chain and the chains it leads to."""
    out: dict[tuple[str, int], int] = {}
    met = chains_from(text, (hook,))
    for line in text.splitlines():
        m = _RULE.match(line)
        if m and _DROPS.search(m.group(2)) and m.group(3) in met:
            n = sum(1 for key in out if key[0] == m.group(2))
            out[(m.group(2), n)] = int(m.group(1))
            continue
        p = _POLICY.match(line)
        if p and p.group(1) == hook:
            out[(f":{p.group(1)} DROP", 0)] = int(p.group(3))
    return out


def dropped(ns: str, who: str, before: str | None, after: str | None, planned: Iterable[str] = (),
            hook: str = "INPUT", ours_too: bool = True) -> Reason | None:
    """The rule of ``ns``'s filter table that counted the packet between ``before`` and ``after`` (its tables'
    texts), and the fix; ``who``: the namespace in words ("pod api"); ``planned``: the rules the lab writes there
    (as iptables-save prints them); ``hook``: INPUT (the packet arrived there), OUTPUT (the namespace sent it).
    ``ours_too``: False, a rule the lab writes is not named (a node's: kube-proxy's REJECT of a Service without
    endpoints, its DROP of an invalid packet, are told where the trace meets them, never undone with -D). FORWARD:
    a node the packet vanished in while forwarding it (extrarules.dropped)."""
    if before is None or after is None:
        return None
    was, now = counts(before, hook), counts(after, hook)
    when = {"INPUT": "after it arrived, before any socket saw it",
            "FORWARD": "as it forwarded it, after its route lookup (a rule that counted a packet while the trace ran)"
            }.get(hook, "on its way out, before any device sent it (the sender's own firewall)")
    ours = set(planned)
    for (line, n), packets in now.items():
        if packets <= was.get((line, n), 0) or (line in ours and not ours_too):
            continue
        if line.startswith(":"):
            chain = line[1:].split()[0]
            return (f"{who}'s filter chain {chain} has policy DROP, and no rule of it accepted the packet (it counted "
                    f"it: ip netns exec {ns} {ipt_command()} -nvL {chain}); `netlab status` lists it",
                    f"ip netns exec {ns} {ipt_command()} -P {chain} ACCEPT")
        chain = line.split()[1]
        whose = "a rule of the lab's" if line in ours else "a rule netlab did not write"
        listed = "" if line in ours else "; `netlab status` lists it"
        return (f"{whose} in {who}'s filter chain {chain} dropped the packet {when}: `{line}` (it counted it: "
                f"ip netns exec {ns} {ipt_command()} -nvL {chain}){listed}",
                f"ip netns exec {ns} {ipt_command()} -D {line[3:]}")
    return None


def at_destination(k: object, hops: list, before: dict[str, str], after: dict[str, str],
                   planned: dict[str, tuple[str, ...]], replied: bool, ours_too: bool = True,
                   nft: Collection[str] = ()) -> tuple[int, Reason] | None:
    """The row where the packet was delivered (the walk's last, kind "deliver") and why it was dropped there: a
    rule of its namespace's filter table that counted it, or (no reply came) an nftables table the lab does not
    plan that drops it at the input hook. ``ours_too``: dropped's; ``nft``: the namespaces where kube-proxy's
    table ``ip kube-proxy`` is the lab's (LabMap.planned_nft)."""
    from netlab.trace import foreignnft

    i = next((i for i in range(len(hops) - 1, -1, -1) if hops[i].kind == "deliver"), None)
    if i is None:
        return None
    ns = hops[i].netns
    why = dropped(ns, hops[i].where, before.get(ns), after.get(ns), planned.get(ns, ()), ours_too=ours_too)
    if why is None and not replied:
        at = foreignnft.where(hops, i)
        read = getattr(k, "nft_ruleset", None)
        ruleset = read(ns) if at is not None and read is not None else None
        d = foreignnft.foreign_drop(ruleset, "input", at[2], [("ip", "kube-proxy")] if ns in nft else []) \
            if at is not None and ruleset else None
        why = foreignnft.reason(ns, d) if d is not None else None
    return (i, why) if why is not None else None


def at_source(hops: list, before: dict[str, str], after: dict[str, str],
              planned: dict[str, tuple[str, ...]]) -> tuple[int, Reason] | None:
    """The first row of a packet that a namespace sent (the request from the source, the reply from the
    destination: a pod, a node, an internet host) and why it was dropped there: a DROP or REJECT of its own OUTPUT
    chain (or a chain it leads to) that counted it, or OUTPUT's DROP policy; none of the rules the lab writes."""
    if not hops:
        return None
    ns = hops[0].netns
    why = dropped(ns, hops[0].where, before.get(ns), after.get(ns), planned.get(ns, ()), hook="OUTPUT",
                  ours_too=False)
    return (0, why) if why is not None else None


def judge(k: object, fwd: Walk, back: Walk | None, fverdict: Verdict, bverdict: Verdict | None,
          before: dict[str, str], after: dict[str, str], planned: dict[str, tuple[str, ...]], replied: bool,
          arrived: str | None, nft: Collection[str] = ()) -> tuple[Verdict, Walk | None, Verdict | None]:
    """The verdicts (and reply walk) once the firewalls of the namespaces that send and take the packet are read:
    the destination's INPUT took the request (no reply left it); the sender's OUTPUT took the request (it never
    left), or the destination's OUTPUT the reply; the source's INPUT took the reply (it reached the client, which
    dropped it before its socket saw it). The rows the packet never met are cleared of blame."""
    taken = at_destination(k, fwd.hops, before, after, planned, replied, nft=nft) if arrived else None
    if taken is not None:  # delivered into the namespace, and dropped there before any socket saw it
        at, (why, fix) = taken
        fwd.hops[at].problem, fwd.hops[at].fix = why, fix
        fverdict, back, bverdict = Verdict(False, at, why, fix), None, None
    left = at_source(fwd.hops, before, after, planned)
    if left is not None:
        (at, (why, fix)), back, bverdict = left, None, None
        for h in fwd.hops[at + 1:]:  # never met: the packet did not leave
            h.problem = h.fix = None
        fwd.hops[at].problem, fwd.hops[at].fix = why, fix
        fverdict = Verdict(False, at, why, fix)
    elif back is not None and taken is None and fverdict.delivered:
        left = at_source(back.hops, before, after, planned)
        if left is not None:
            for h in back.hops[left[0] + 1:]:
                h.problem = h.fix = None
        elif not replied:  # the reply came back to the source, whose own INPUT dropped it
            left = at_destination(k, back.hops, before, after, planned, replied, ours_too=False, nft=nft)
        if left is not None:
            at, (why, fix) = left
            back.hops[at].problem, back.hops[at].fix = why, fix
            bverdict = Verdict(False, at, why, fix)
    return fverdict, back, bverdict
