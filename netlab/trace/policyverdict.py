"""The NetworkPolicy verdict of a traced packet: the policy whose REJECT dropped it, with the REJECT's own row
and its answer's rows, or the one that refused it at the node it was delivered to (tpolicy.story says which).

trace/run.py asks it once the forward and reply verdicts are made.
"""

from __future__ import annotations

from netlab.model.lab import Lab
from netlab.trace import policy as tpolicy
from netlab.trace.hops import Walk
from netlab.trace.render import TraceResult, number
from netlab.trace.targets import Endpoint
from netlab.trace.verdict import Verdict


def policy_verdict(lab: Lab, result: TraceResult, src: Endpoint, dst: Endpoint,
                   before: dict[tuple[str, str], int], after: dict[tuple[str, str], int],
                   unfiltered: set[str], tables: tpolicy.Tables | None = None,
                   answers: dict[str, tuple[Walk, Verdict]] | None = None) -> None:
    """Name the NetworkPolicy verdict; a packet a policy's REJECT dropped is blamed on it, also one the policies
    allow (the node's rules lack what allows it: the entry names it, and the fix). ``tables``: the nodes' filter
    tables after the packet (tpolicy.story); ``answers``: node namespace -> the ICMP error its REJECT sent, walked
    and judged (rejectanswer.policy_answers), the reply rows when that node's REJECT is blamed."""
    ep = result.endpoint
    # The node that DNATed a Service packet: the one whose conntrack named the endpoint, else one that holds the
    # DNAT but kept no entry (a policy's REJECT dropped the packet first).
    nodes = {n.netns: n.name for n in lab.nodes}
    dnats = [h for h in result.forward.hops if h.kind == "dnat" and h.netns in nodes]
    dnat = next((h for h in dnats if "endpoint" in h.facts), dnats[0] if dnats else None)
    # None of them: a LoadBalancer's packet lost before a node kept an entry; the gateway's route row names it.
    node = nodes[dnat.netns] if dnat else tpolicy.routed_node(lab, result.forward.hops)
    result.policy = tpolicy.story(lab, src, dst, result.proto, result.port, ep.get("endpoint_ip") if ep else None,
                                  before, after, unfiltered, dnat_node=node,
                                  reached=tpolicy.forward_hooks_reached(result.forward.hops, result.verdict.lost_at),
                                  tables=tables)
    counted = [e for e in result.policy if e.get("counted")]
    if not counted:
        return
    # Two REJECTs counted (a SYN retransmitted, DNATed to another endpoint): the one at the node it was lost in.
    lost = result.forward.hops[result.verdict.lost_at] if result.verdict.lost_at is not None else None
    blamed = next((e for e in counted if lost is not None and lab.node(e["node"]).netns == lost.netns), counted[0])
    if not result.verdict.delivered:
        # The REJECT's own row, where the endpoint's node runs it, when the rows lost the packet past it.
        at = tpolicy.place_reject(result.forward.hops, result.verdict.lost_at, lab.node(blamed["node"]).netns,
                                  blamed)
        # The REJECT's row (or the row of that node that lost the packet, a DNAT row that kept no entry): it
        # answered at once, so the result is REFUSED, not LOST, when the client's socket was refused (run.py).
        row = at if at is not None else result.verdict.lost_at
        if row is not None and result.forward.hops[row].netns == lab.node(blamed["node"]).netns:
            result.forward.hops[row].facts["policy_rejected"] = refused_words(blamed["text"], result.proto,
                                                                              blamed.get("pod"))
        if at is not None:
            answer = (answers or {}).get(lab.node(blamed["node"]).netns)
            if answer is not None:  # the node's own ICMP error, not a reply from the destination that never got it
                result.reply, result.reply_verdict = answer
            number(result)
            _reply_from_reject(result, at)
        why = blamed["text"]
        if result.proto == "tcp" and not result.reply_received:
            why += tpolicy.unanswered_reset(lab, src, blamed["node"], node, f"{dst.ip}:{result.port}",
                                            ep.get("endpoint_ip") if ep else None,
                                            ep.get("endpoint_port") if ep else None, unfiltered) or ""
        result.verdict = Verdict(False, at if at is not None else result.verdict.lost_at, why, blamed.get("fix"))
    elif "to" in blamed and result.forward.end_netns == lab.node(blamed["node"]).netns:
        # For the node itself: the routing delivered it to the node, then the pod's egress chain, jumped to from
        # INPUT, refused it before any socket saw it (the capture saw it arrive). Lost at that last row; no reply.
        last = len(result.forward.hops) - 1
        result.verdict = Verdict(False, last, blamed["text"], blamed.get("fix"))
        result.reply, result.reply_verdict, result.reply_received = None, None, False


def refused_words(text: str, proto: str, pod: str | None) -> str:
    """Why a policy's REJECT refused the packet, as the result says it (REFUSED, not LOST, as kube-proxy's REJECT
    of a Service without endpoints is): its node answers a TCP request at once with a reset in the pod's name,
    anything else with an ICMP port unreachable (plan/policy.py), and the client's socket is refused."""
    answer = f"a TCP reset in pod {pod}'s name" if proto == "tcp" and pod else \
        "a TCP reset" if proto == "tcp" else "an ICMP port unreachable"
    counted = "; the kernel's REJECT rule there counted it"
    said = f"answered it at once with {answer}: the client is refused, it does not time out"
    return f"{text} and {said}" if text.endswith(counted) else f"{text}; the REJECT {said}"


def _reply_from_reject(result: TraceResult, at: int) -> None:
    """The reply rows of a request the REJECT at forward row ``at`` dropped start with the REJECT's answer, and are
    numbered again from r1 (tpolicy.reply_from_reject); the reply's loss, if any, keeps pointing at its row."""
    if result.reply is None:
        return
    cut = tpolicy.reply_from_reject(result.reply.hops, result.forward.hops[at], result.proto, result.reply.inbound)
    if cut is None:
        return
    result.reply.hops, gone = cut
    v = result.reply_verdict
    if v is not None and v.lost_at is not None:
        # A loss among the rows that went (the destination's, which never answered) is no loss of the answer.
        lost = v.lost_at - gone + 1 if v.lost_at >= gone else None
        result.reply_verdict = Verdict(v.delivered if lost is not None else True, lost, v.reason, v.fix,
                                       v.never_sent) if lost is not None else Verdict(True, None, None)
    number(result)
