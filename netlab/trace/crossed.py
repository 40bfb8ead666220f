"""The rows of a trace the packets really passed, for what is said of the interfaces they left by (lossblame.on_path).

A walk writes the rows the kernel's tables take a packet by, from its first namespace to its end; the packet may
stop before the end (lost at the verdict's row), and the reply walk starts at the destination as if it answered.
When the request never arrived, an answer the capture saw came from someone on the way (a node's REJECT sends a
reset in the destination's name): it passed only the reply's rows from the first one the capture saw it at (QA
q48: a trace a node's REJECT answered said the path crossed the destination's impaired eth0, at the reply's
first row, which no packet passed). A packet netfilter dropped in a namespace never left by the device that
namespace's route picked for it.
"""

from __future__ import annotations

from netlab.trace.hops import Hop, Walk
from netlab.trace.verdict import Verdict


def crossed(way: Walk | None, verdict: Verdict | None, answered: bool = True) -> list[Hop]:
    """The rows of ``way`` its packet passed: up to the row it was lost at (``verdict.lost_at``); for a reply
    whose request never arrived (``answered`` False), only from the first row the capture saw it at."""
    if way is None:
        return []
    hops = way.hops
    if verdict is not None and not verdict.delivered and verdict.lost_at is not None:
        hops = hops[:verdict.lost_at + 1]
        if hops and hops[-1].facts.get("dropped_here"):
            hops = _before_netfilter(hops)
    if not answered:
        first = next((i for i, h in enumerate(hops) if h.seen), len(hops))
        hops = hops[first:]
    return hops


def _before_netfilter(hops: list[Hop]) -> list[Hop]:
    """The rows up to one that says netfilter dropped the packet in its namespace (a policy's REJECT in FORWARD,
    kube-proxy's REJECT or DROP, a DNAT refused), without that namespace's rows of the device it would have left by
    (the route row naming the egress device, the next hop's ARP entry): the kernel picks the device before FORWARD
    and POSTROUTING and sends the packet through it after them, so a packet dropped there never reached that
    device's queue (QA q54 #4: a trace named n2:cni0's impairment for a packet n2's FORWARD REJECT dropped)."""
    lost = hops[-1]
    first = len(hops) - 1
    while first > 0 and hops[first - 1].netns == lost.netns:
        first -= 1
    return hops[:first] + [h for h in hops[first:] if h.observe is None or h.observe.direction != "out"]
