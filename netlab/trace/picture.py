"""A trace drawn on the lab's picture: ``netlab trace SRC DST -o svg|png -w FILE``.

The picture is ``netlab graph``'s (netlab.graph); on it every hop of the
packet's way there is placed on the box of the namespace and device where the
kernel decided it, numbered as in the text, with the decision in a few words
(the route, the ARP entry, the FDB entry and its VTEP, the DNAT, the
encapsulation). The hop where the packet was lost is red, with the reason;
so is the reply's, when the answer is what got lost.
"""

from __future__ import annotations

from netlab import graph
from netlab.model.lab import Lab
from netlab.trace.hops import Hop
from netlab.trace.render import TraceResult, label

LABEL_MAX = 90  # characters of a decision kept when no short form fits


def short(h: Hop) -> str:
    """A hop's decision in a few words, from its facts (the text's row has it all)."""
    f = h.facts
    if h.kind == "route" and "oif" in f:
        via = f" via {f['gateway']}" if f.get("gateway") else ""
        return f"route{via} dev {f['oif']}"
    if h.kind == "neigh" and "ip" in f:
        return f"ARP {f['ip']} is {f['lladdr']} ({f.get('state', '')})" if f.get("lladdr") else \
            f"ARP {f['ip']}: {f.get('state', 'no entry')}"
    if h.kind == "fdb" and "dst" in f:  # bridge -j fdb's words (docs/json.md)
        return f"FDB {f['mac']} → VTEP {f['dst']}"
    if h.kind == "encap" and "vni" in f:
        return f"VXLAN encap VNI {f['vni']}, UDP {f['outer_src']} → {f['outer_dst']}:{f['outer_dport']}"
    if h.kind == "decap" and "vni" in f:
        return f"VXLAN decap VNI {f['vni']} ({f.get('vxlan_device', '')})"
    if h.kind == "dnat" and "after" in f:
        who = (f" (Service {f['service']} → {f['endpoint']})" if "service" in f
               else f" (hostPort → {f['endpoint']})" if "endpoint" in f else "")
        return f"DNAT {f['before'].split(' → ')[1].split()[0]} → {f['after'].split(' → ')[1].split()[0]}{who}"
    if h.kind == "bridge" and "port" in f:
        return f"bridge {f.get('bridge', '')} → port {f['port']}" + (" (hairpin)" if f.get("hairpin") else "")
    if h.kind == "deliver":
        return "delivered" + (f" (TTL {f['ttl']})" if "ttl" in f else "")
    text = h.decision.split("; ")[0]
    return text if len(text) <= LABEL_MAX else text[:LABEL_MAX].rsplit(" ", 1)[0] + " …"


def path(r: TraceResult) -> list[graph.PathStep]:
    """The hops to draw: the way there, and the reply's lost hop when the reply is what was lost."""
    def lost_at(v, hops: list[Hop]) -> Hop | None:
        return hops[v.lost_at] if v and not v.delivered and v.lost_at is not None and v.lost_at < len(hops) else None

    steps = []
    there = lost_at(r.verdict, r.forward.hops)
    for h in r.forward.hops:
        steps.append(graph.PathStep(h.netns, h.device, label(h), short(h),
                                    lost=r.verdict.reason if h is there else None))
    back = lost_at(r.reply_verdict, r.reply.hops) if r.reply and r.verdict.delivered else None
    if back is not None and r.reply_verdict is not None:
        steps.append(graph.PathStep(back.netns, back.device, label(back), f"reply: {short(back)}",
                                    lost=r.reply_verdict.reason))
    return steps


def title(r: TraceResult) -> str:
    port = f":{r.port}" if r.port and r.proto != "icmp" else ""
    head = f"lab {r.lab}: trace {r.src['name']} → {r.dst['name']}{port} ({r.proto})"
    v = r.verdict
    if v.delivered:
        end = "REFUSED" if r.refused else "delivered" + ("" if r.reply_received else ", NO REPLY")
        if r.astray:
            end += f", ASTRAY at hop {r.astray['label']} (not the planned path)"
    else:
        hop = r.forward.hops[v.lost_at].index if v.lost_at is not None and v.lost_at < len(r.forward.hops) else "?"
        end = f"{'REFUSED' if r.refused else 'LOST'} at hop {hop}"
    return f"{head}: {end}"


def render(lab: Lab, r: TraceResult, fmt: str) -> bytes:
    """The lab's picture with the trace on it, as dot text, svg or png."""
    return graph.render(lab, fmt, path(r), title(r))
