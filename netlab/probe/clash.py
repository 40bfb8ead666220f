"""A direct flow whose source port conntrack renumbered to keep reply tuples unique: proved, then no NAT fault.

Conntrack keeps every entry's reply tuple unique in a namespace. A pod that
reached a Service from port P (its connect() chose P; the DNAT made that
entry's reply tuple ``endpoint:port -> pod:P``), then connects to that
endpoint directly from the same P (connect() reuses a port towards another
address), needs the very reply tuple the first entry holds while it lives
(TCP TIME_WAIT 120 s, UDP 30 to 120 s). The node's nat hook then gives the new
flow another source port (nf_nat's get_unique_tuple), as on any Linux node. No
rule translated it and the address is kept: rule 1 holds. The prober's own
Service flows take ports above the ephemeral range, so they never cause it
(sockets.py); a user's flow through a ClusterIP a moment before can, once in
some ten thousand probes.

The judge sees only "the echo server saw another port" and calls it NAT. The
proof is read from the conntrack table of the namespace that NATs the source's
flows (its node; a node's own flow: the node): the probe's own entry,
original ``src:sent -> dst:dport``, reply ``dst:dport -> src:seen``; and another
entry holding the reply tuple ``dst:dport -> src:sent``, whose original went to
another address (a Service's). Then the problem is dropped and a hint says what
happened; without that proof the problem stands.
"""

from __future__ import annotations

import socket

from netlab.kernel import conntrack
from netlab.model.lab import Lab
from netlab.probe.judge import Result

PROBLEM_TAIL = "(source port translated)"  # judge.py's words for a port that changed on the way
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}

Tuple = dict[str, str]


def explain(lab: Lab, results: list[Result]) -> list[str]:
    """Drop the "source port translated" problems conntrack's clash resolution explains; a hint for each."""
    hints: list[str] = []
    read: dict[tuple[str, int], list[tuple[Tuple, Tuple]]] = {}
    for r in results:
        which = [i for i, p in enumerate(r.problems) if p.endswith(PROBLEM_TAIL)]
        if not which or r.probe.proto not in PROTOCOLS or not r.obs.local or not r.obs.seen_client:
            continue
        netns = _natting_netns(lab, r)
        if netns is None:
            continue
        key = (netns, PROTOCOLS[r.probe.proto])
        if key not in read:
            try:
                read[key] = conntrack.tuples(*key)
            except OSError:  # the namespace went meanwhile, or no ctnetlink: nothing proved
                read[key] = []
        holder = clash(read[key], r)
        if holder is not None:
            del r.problems[which[0]]
            hints.append(words(r, netns, holder))
    return hints


def _natting_netns(lab: Lab, r: Result) -> str | None:
    src = r.probe.source
    if src.kind == "pod":
        return lab.node(src.node).netns if src.node else None
    return src.netns if src.kind == "node" else None


def _split(addr: str) -> tuple[str, str]:
    ip, _, port = addr.rpartition(":")
    return ip, port


def clash(entries: list[tuple[Tuple, Tuple]], r: Result) -> Tuple | None:
    """The original tuple of the entry whose reply tuple the probe's flow needed (None: not proved so)."""
    src, sent = _split(r.obs.local or "")
    seen_ip, seen = _split(r.obs.seen_client or "")
    dst, dport = r.probe.destination.addr, str(r.probe.port)
    if seen_ip != src or seen == sent:
        return None
    moved = {"src": dst, "dst": src, "sport": dport, "dport": seen}
    mine = {"src": src, "dst": dst, "sport": sent, "dport": dport}
    if not any(o == mine and rep == moved for o, rep in entries):
        return None  # no entry of this flow with its port moved: something else translated it
    needed = {"src": dst, "dst": src, "sport": dport, "dport": sent}
    return next((o for o, rep in entries if rep == needed and o["dst"] != dst), None)


def words(r: Result, netns: str, holder: Tuple) -> str:
    src, sent = _split(r.obs.local or "")
    _, seen = _split(r.obs.seen_client or "")
    dst = f"{r.probe.destination.addr}:{r.probe.port}"
    return (f"{r.probe.label}: conntrack in {netns} gave the flow source port {seen} instead of {sent}: the reply "
            f"tuple {dst} -> {src}:{sent} was held by the entry of {holder['src']}:{holder['sport']} -> "
            f"{holder['dst']}:{holder['dport']} (a flow through a Service, DNATed to {dst}), and conntrack keeps "
            f"reply tuples unique; no NAT rule did it, the address was kept (rule 1 holds) "
            f"(ip netns exec {netns} conntrack -L -p {r.probe.proto} --reply-src {r.probe.destination.addr})")
