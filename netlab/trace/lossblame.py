"""Why a lost packet was lost, where the walk found nothing wrong: netlab's impairment dropping a share of the
frames on a device of the path, an nftables table the lab does not plan, a FORWARD policy of DROP; and the
impaired interfaces the packet's path leaves by (rate, delay or loss act on what an interface sends).

trace/run.py asks these once the walk's rows are matched to the captured frames (verdict.explain).
"""

from __future__ import annotations

from netlab.model.impair import describe
from netlab.model.lab import Lab
from netlab.plan import impair as plan_impair
from netlab.trace import arploss, extrarules, faults, foreignnft, l2steps
from netlab.trace.crossed import crossed
from netlab.trace.hops import Hop
from netlab.trace.kernel import LiveKernel
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, label
from netlab.trace.verdict import Verdict


def losses(lab: Lab) -> dict[tuple[str, str, str], plan_impair.LossHook]:
    """(namespace, device, hook) -> where netlab's impairment drops a share of the frames, run-time ones included
    (``netlab impair`` changes the lab's saved topology, which ``lab`` is)."""
    return {(h.netns, h.device, h.hook): h for h in plan_impair.loss_hooks(lab)}


def impaired(losses: dict[tuple[str, str, str], plan_impair.LossHook], v: Verdict, hops: list[Hop],
             lab: str, arp: arploss.ArpLoss | None = None) -> Verdict:
    """A packet lost where netlab's impairment drops: that is the reason, where the walk found nothing wrong (the
    kernel's route, ARP and FDB answers look right; a reply never seen). A loss on a device's egress hook keeps the
    packet from the capture there (the hook runs before the capture's tap); one on a veth's peer's ingress hook
    runs after it, so the packet is seen arriving there and never at the next row. A next hop's ARP entry left
    INCOMPLETE: the loss that dropped the kernel's requests, or the one that dropped the answers (``arp``,
    arploss.py); the row says it too, not "nothing on that link answers"."""
    if v.delivered or v.lost_at is None or v.fix is not None:
        return v
    h = hops[v.lost_at]
    hit = None
    if h.observe is not None and h.observe.direction == "out":  # its egress hook; or, its veth's peer's ingress
        # hook dropping what it sends (ARP too: a host that never answers ARP is how a dead wire looks)
        hit = losses.get((h.observe.netns, h.observe.ifname, "egress")) or next(
            (x for x in losses.values() if (x.impaired_netns, x.iface) == (h.observe.netns, h.observe.ifname)), None)
    before = next((p.observe for p in reversed(hops[:v.lost_at]) if p.observe is not None), None)
    if hit is None and before is not None and before.direction == "in":
        hit = losses.get((before.netns, before.ifname, "ingress"))
    why = faults.impairment_loss(hit, lab)
    if getattr(h, "kind", None) == "neigh" and h.problem:
        why = why or (arploss.answer_lost(losses.values(), h, arp, lab) if arp else None)
        if why:
            h.problem, h.fix = why
    return Verdict(False, v.lost_at, why[0], why[1]) if why else v


def on_path(lab: Lab, result: TraceResult) -> list[dict[str, str]]:
    """The impaired interfaces the packet's path leaves by (an impairment acts on what an interface sends), each
    once per direction: rate, delay or loss slow or drop such packets even when this one got through."""
    specs = {(ns, iface): (f"{name}:{iface}", spec) for name, ns, iface, spec in plan_impair.named(lab)}
    out: list[dict[str, str]] = []
    for direction, way, verdict, answered in (("forward", result.forward, result.verdict, True),
                                              ("reply", result.reply, result.reply_verdict, result.verdict.delivered)):
        for h in crossed(way, verdict, answered):  # the rows its packets passed, not those they never reached
            hit = specs.get((h.observe.netns, h.observe.ifname)) if h.observe and h.observe.direction == "out" else None
            if hit and not any(o["target"] == hit[0] and o["direction"] == direction for o in out):
                out.append({"target": hit[0], "impairment": describe(hit[1]), "direction": direction,
                            "hop": label(h)})
    return out


def firewall(kernel: LiveKernel, v: Verdict, hops: list[Hop], lm: LabMap | None = None) -> Verdict:
    """A packet that vanished where route, ARP and FDB look right, or before a next hop it never asked for (a
    node's VXLAN packet for a node whose underlay address it has no ARP entry for): an nftables table the lab does
    not plan that drops it there, or a FORWARD policy of DROP where it was lost, or a DROP of its FORWARD chains the
    lab does not plan that counted it (extrarules.dropped), says why."""
    if v.delivered or v.lost_at is None or not any(m in (v.reason or "") for m in ("look at the firewall",
                                                                                     l2steps.NEVER_ASKED)):
        return v
    nft = lm.planned_nft if lm else {}
    drop = foreignnft.blame(kernel, hops, v.lost_at, nft, maybe=False) or \
        faults.forward_policy(kernel, hops[v.lost_at].netns) or \
        extrarules.dropped(kernel, hops, v, lm.planned_filter if lm else {}) or \
        foreignnft.blame(kernel, hops, v.lost_at, nft)  # a rule that may drop it: after those that surely do
    return Verdict(False, v.lost_at, drop[0], drop[1]) if drop else v
