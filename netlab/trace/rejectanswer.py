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

from netlab.trace.flow import Flow, answer_words
from netlab.trace.icmpsource import INBOUND, select_address
from netlab.trace.hops import Hop, Walk
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
    answered) or nothing says whose REJECT it was. The answer leaves as the node's own packet: kube-proxy's REJECT
    (the stop row's ``rejected`` fact) answers with an ICMP port unreachable (:func:`unreachable`), walked from the
    node, and so does a policy's REJECT of anything but TCP; a policy's REJECT of TCP answers with a reset in the
    name of the pod the request was for, walked as that address's reply arriving on the device the request was on
    (the kernel routes no packet of an address it does not have as its own; start_rows and
    policy.reply_from_reject start the rows at the node's route)."""
    if not refused or fwd.outcome == "delivered" or fwd.final is None or not fwd.hops:
        return None
    stop, back = fwd.hops[-1], fwd.final.reversed()
    if stop.netns not in {n.netns for n in lab.nodes} or stop.device == "-":
        return None
    policy = bool(lab.topo.network_policies) and any(str(p.ip) == back.src for p in lab.pods)
    if isinstance(stop.facts.get("rejected"), str) or (policy and back.proto != "tcp"):
        return _answer(kernel, lm, stop.netns, came_in_by(fwd.hops, stop.netns), fwd.final)
    if not policy:
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


def policy_answers(kernel: Kernel, lm: LabMap, fwd: Walk) -> dict[str, Walk]:
    """The ICMP port unreachable each node whose policy REJECT counted (``kernel.policy_rejects``) on the request's
    way sent back, walked from that node (:func:`unreachable`): for a request the walk delivered, though a policy's
    REJECT dropped it first (a bridged frame: the walk's reply from the destination, which never got it, is no
    packet). policyverdict picks the REJECT's node's. Not for TCP: that REJECT answers with a reset from the
    destination's address, which the reply walk follows."""
    out: dict[str, Walk] = {}
    for ns in getattr(kernel, "policy_rejects", {}):
        rows = [h for h in fwd.hops if h.netns == ns]
        seen = [h.observe.flow for h in rows if h.observe is not None]
        request = seen[-1] if seen else fwd.final
        if rows and request is not None and request.proto != "tcp":
            out[ns] = _answer(kernel, lm, ns, came_in_by(rows, ns), request)
    return out


def _answer(kernel: Kernel, lm: LabMap, ns: str, iif: str | None, request: Flow) -> Walk:
    """The ICMP port unreachable node ``ns`` sends about ``request``, walked from there as its own packet."""
    err, inbound = unreachable(kernel, ns, iif, request)
    back = walk(kernel, lm, ns, err, role="reply", direction="reply")
    back.inbound = inbound
    return back


def came_in_by(rows: list[Hop], ns: str) -> str | None:
    """The device a request the node ``ns`` refused came in by, when the node routed it (an input route, whose
    device icmp_send's inet_iif names): the ``iif`` of its forwarded route row there, or of the row where
    kube-proxy's REJECT refused it before the walk's route lookup (natsteps). None: the node's own request (OUTPUT,
    an output route) or a frame its bridge switched (br_netfilter gives it the bridge's fake route, no input
    route)."""
    return next((h.facts["iif"] for h in reversed(rows) if h.netns == ns and h.kind in ("route", "dnat")
                 and isinstance(h.facts.get("iif"), str)), None)


def unreachable(kernel: Kernel, ns: str, iif: str | None, request: Flow) -> tuple[Flow, str | None]:
    """The ICMP port unreachable a REJECT in ``ns`` (``--reject-with icmp-port-unreachable``, iptables' default and
    kube-proxy's; nft's ``reject`` in an ip table) sends about ``request``, and the device whose address is its
    source when icmp_errors_use_inbound_ifaddr chose it. As the kernel's __icmp_send: from the address the request
    was for when it is the node's own (its route is local); else, with net.ipv4.icmp_errors_use_inbound_ifaddr = 1
    and a request routed in by ``iif`` (:func:`came_in_by`; None: no input route), an address of that device
    (:func:`select_address`); else from none (src None: the route to the client picks it, as for a socket)."""
    links = kernel.links(ns)
    if any(a.split("/")[0] == request.dst for link in links.values() for a in link.addresses):
        return Flow.unreachable(request.dst, request.src or "", request), None
    read = getattr(kernel, "sysctl", None)
    if iif is not None and read is not None and read(ns, INBOUND) == "1":
        src = select_address(links, iif, request.src or "")
        if src is not None:
            return Flow.unreachable(src, request.src or "", request), iif
    return Flow.unreachable(None, request.src or "", request), None


def start_rows(result: TraceResult) -> None:
    """The reply rows of an answer walk_answer walked for kube-proxy's REJECT start with a row naming it, at the
    forward row where the walk stopped, then the node's route for its own packet (policy.reply_from_reject), or
    its delivery to the node itself through lo (the node's own request, refused on its way out). A
    policy's REJECT has already named its row; an answer no REJECT of the rows names is not shown, as nothing tells
    whose it was."""
    reply = result.reply
    if result.forward.outcome == "delivered" or reply is None or (reply.hops and reply.hops[0].kind == "reject"):
        return
    stop = result.forward.hops[-1] if result.forward.hops else None
    cut = reply_from_reject(reply.hops, stop, result.proto, reply.inbound) \
        if stop is not None and isinstance(stop.facts.get("rejected"), str) else None
    if stop is None or cut is None:
        result.reply, result.reply_verdict = None, None
        return
    rows, gone = cut
    err = next((h.observe.flow for h in rows[1:] if h.observe is not None), None)  # as it leaves the node
    said = answer_words(err, reply.inbound) if err is not None else ""
    rows[0] = replace(rows[0], decision=f"kube-proxy's REJECT at hop {stop.index} answers the request with an ICMP "
                                        f"port unreachable{said}, as the node's own packet: nothing behind the "
                                        "Service got the request nor answered it")
    reply.hops = rows
    v = result.reply_verdict
    if v is not None and v.lost_at is not None:  # a loss among the rows that went is no loss of the answer
        lost = v.lost_at - gone + 1 if v.lost_at >= gone else None
        result.reply_verdict = Verdict(v.delivered, lost, v.reason, v.fix, v.never_sent) if lost is not None \
            else Verdict(True, None, None)
    for i, h in enumerate(reply.hops, 1):
        h.index = i
