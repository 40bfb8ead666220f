"""The answer a REJECT on the way sends back: where its rows start, and the row that names it.

A request a node's REJECT refused never reaches its destination, and the destination answers nothing; the node's
kernel answers in its place (a TCP reset, ``nf_send_reset``; an ICMP port unreachable, ``nf_send_unreach``) as one
of its own packets, which conntrack relates to the request's flow (the ICMP error by the header it quotes, and
un-NATs as it un-NATs a reply). Both go back the reply's way, and a capture on the way sees them
(verdict.answers): the reply rows follow that answer.

- kube-proxy's REJECT (a Service, a nodePort without endpoints) refuses the packet at the node's row where the
  walk stopped (its ``rejected`` fact): the answer's rows start there, with a row naming that REJECT;
- a NetworkPolicy's REJECT in the node's FORWARD hook refuses it before the pod's ARP entry is looked up, so the
  walk, which needs that entry, stops at the node that answered (policy.reply_from_reject names it then).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from netlab.trace.hops import Walk
from netlab.trace.policy import reply_from_reject
from netlab.trace.states import FrameIn, IpIn, LocalOut, State
from netlab.trace.verdict import Verdict
from netlab.trace.walk import Walker, walk

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.trace.kernel import Kernel
    from netlab.trace.labmap import LabMap
    from netlab.trace.render import TraceResult


def walk_answer(kernel: Kernel, lm: LabMap, lab: Lab, fwd: Walk, refused: bool) -> Walk | None:
    """The reply rows of a request refused on its way (``refused``: the sender's socket got the reset or the port
    unreachable) where the walk stopped in a node, or None when the request arrived (the destination's kernel
    answered) or nothing says whose REJECT it was. The answer leaves as the node's own packet, from the address the
    request was for: kube-proxy's REJECT (the stop row's ``rejected`` fact) of a packet for the node's own address
    is walked from the node's socket; one for a ClusterIP, and a policy's REJECT (which answers in the name of the
    pod the request was for), as that address's reply arriving on the device the request was on (the kernel routes
    no packet of an address it does not have as its own; start_rows and policy.reply_from_reject start the rows at
    the node's route)."""
    if not refused or fwd.outcome == "delivered" or fwd.final is None or not fwd.hops:
        return None
    stop, back = fwd.hops[-1], fwd.final.reversed()
    if stop.netns not in {n.netns for n in lab.nodes} or stop.device == "-":
        return None
    if isinstance(stop.facts.get("rejected"), str):
        if back.src in lm.node_ips:
            return walk(kernel, lm, stop.netns, back, role="reply", direction="reply")
    elif not lab.topo.network_policies or not any(str(p.ip) == back.src for p in lab.pods):
        return None
    w = Walker(kernel, lm, role="reply", direction="reply")
    w.flow = back
    state: State | Walk = IpIn(stop.netns, stop.device)
    for _ in range(w.MAX_STEPS):
        if isinstance(state, Walk):
            break
        state = w._frame_in(state) if isinstance(state, FrameIn) else \
            w._local_out(state.netns) if isinstance(state, LocalOut) else w._ip_in(state)
    w.rows.flush()
    return state if isinstance(state, Walk) else None


def start_rows(result: TraceResult) -> None:
    """The reply rows of an answer walk_answer walked for kube-proxy's REJECT start with a row naming it, at the
    forward row where the walk stopped, then the node's route for its own packet (policy.reply_from_reject). A
    policy's REJECT has already named its row; an answer no REJECT of the rows names is not shown, as nothing tells
    whose it was."""
    reply = result.reply
    if result.forward.outcome == "delivered" or reply is None or (reply.hops and reply.hops[0].kind == "reject"):
        return
    stop = result.forward.hops[-1] if result.forward.hops else None
    cut = reply_from_reject(reply.hops, stop, result.proto) \
        if stop is not None and isinstance(stop.facts.get("rejected"), str) else None
    if stop is None or cut is None:
        result.reply, result.reply_verdict = None, None
        return
    rows, gone = cut
    what = "a TCP reset" if result.proto == "tcp" else "an ICMP port unreachable"
    first = rows[1].observe
    addrs = f" ({first.flow})" if first is not None else ""
    rows[0] = replace(rows[0], decision=f"kube-proxy's REJECT at hop {stop.index} answers the request with {what}"
                                        f"{addrs}, as the node's own packet: nothing behind the Service got the "
                                        "request nor answered it")
    reply.hops = rows
    v = result.reply_verdict
    if v is not None and v.lost_at is not None:  # a loss among the rows that went is no loss of the answer
        lost = v.lost_at - gone + 1 if v.lost_at >= gone else None
        result.reply_verdict = Verdict(v.delivered, lost, v.reason, v.fix, v.never_sent) if lost is not None \
            else Verdict(True, None, None)
    for i, h in enumerate(reply.hops, 1):
        h.index = i
