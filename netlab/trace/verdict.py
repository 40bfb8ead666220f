"""Seen or not seen, and where the packet was lost: the walk's rows against what the capture saw.

Every row that can be observed names a namespace, an interface, a direction
and the packet's addresses there. After the real packet was sent and
captured in every namespace at once, :func:`mark_seen` marks each row seen
or not seen, and :func:`explain` finds the hop where the packet disappeared
and why: the kernel's own reason when the walk found one there (no ARP entry,
no FDB entry, no route ...), and then the hop is that row's, else a pointer
to the firewall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.errors import netlab_command
from netlab.probe.icmp import DEST_UNREACH
from netlab.trace.flow import Flow, Observe, Packet
from netlab.trace import unnatreply
from netlab.trace.hops import Hop, Walk


def matches(p: Packet, o: Observe) -> bool:
    """The captured packet is the one a row expects: same place, direction, role and addresses. A reply row is
    also seen by the ICMP error the destination's kernel answered with (a port unreachable for a datagram no
    socket took): :func:`answers`."""
    if not (p.netns == o.netns and p.ifname == o.ifname and p.direction == o.direction
            and p.encapsulated == o.encapsulated and p.flow is not None):
        return False
    if o.flow.quoted is not None:  # the walk followed an ICMP error itself: its addresses, code and quote
        return p.role == "error" and any(f is not None and is_error(p, f) for f in (o.flow, o.alt))
    if p.role == "error" and o.role == "reply":
        return answers(p, o.flow) or (o.alt is not None and answers(p, o.alt))
    return p.role == o.role and (p.flow == o.flow or (o.alt is not None and p.flow == o.alt))


def answers(p: Packet, reply: Flow) -> bool:
    """The ICMP error ``p`` goes back along ``reply``'s path, as conntrack relates it to the flow: the header it
    quotes, turned around, is that reply (conntrack looks the quoted tuple up, and its NAT rewrites the quote as it
    rewrites the reply), and the error is addressed to the quoted packet's sender (conntrack's check of the outer
    destination)."""
    return p.quoted is not None and p.flow is not None and p.quoted.reversed() == reply and p.flow.dst == reply.dst


def is_error(p: Packet, f: Flow) -> bool:
    """``p`` is the ICMP destination unreachable ``f`` (Flow.unreachable): from and to the same addresses, with its
    code, quoting the same header."""
    e = p.icmp_error or {}
    return (p.flow is not None and (p.flow.src, p.flow.dst) == (f.src, f.dst) and p.quoted == f.quoted
            and (e.get("type"), e.get("code")) == (DEST_UNREACH, f.code))


def mark_seen(hops: list[Hop], packets: list[Packet], captured: set[str]) -> None:
    """Mark each row seen or not seen; rows whose namespace was not captured stay None."""
    for hop in hops:
        o = hop.observe
        if o is None or o.netns not in captured:
            hop.seen = None
            continue
        hit = [p for p in packets if matches(p, o)]
        hop.seen = bool(hit)
        if hit:
            p = min(hit, key=lambda p: p.ts)
            # the frame as `netlab capture` words it (tcpdump's words): a VXLAN carrier's outer header, ports, VNI
            # and TTL, then the packet it carries with its own (the inner) TTL
            hop.evidence = p.summary or None
            if p.role == "error" and p.icmp_error:  # the reply was the kernel's ICMP error about the packet
                hop.facts["icmp_error"] = p.icmp_error.get("text")
            outer_ttl = p.outer.get("ttl") if p.outer else None
            hop.facts["seen_at"] = p.ts
            if p.outer:
                hop.facts["outer_sport"] = p.outer["sport"]
                if outer_ttl is not None:
                    hop.facts["outer_ttl"] = outer_ttl
            if p.ttl is not None:
                hop.facts["ttl"] = p.ttl


def not_arrived(w: Walk) -> bool:
    """The walk delivered the packet, but the capture, there, did not see it arrive: the destination never got it
    (so it sent no reply; the walk's rows past the loss are the path the packet would have taken)."""
    last = w.hops[-1] if w.hops else None
    return w.outcome == "delivered" and last is not None and last.kind == "deliver" and last.seen is False


@dataclass
class Verdict:
    delivered: bool
    lost_at: int | None  # index into the hop list
    reason: str | None
    fix: str | None = None
    never_sent: bool = False  # a reply that never left the destination (no server, an ICMP error instead)


def explain(w: Walk, hops: list[Hop] | None = None, lab: str = "") -> Verdict:
    """Where the packet disappeared and why (:func:`_explain`); a walk that ended in a loop says so whatever row
    it blames: the loop row's end (where its TTL runs out), or the walk's own step limit ("more than 64 steps: a
    routing loop?"), which an earlier row's problem never hides."""
    v = _explain(w, hops, lab)
    if w.outcome != "loop" or not w.reason or v.delivered or (v.reason and w.reason in v.reason):
        return v
    rows = hops if hops is not None else w.hops
    last = rows[-1] if rows else None
    if last is not None and last.kind == "loop" and last.problem == w.reason:
        end = f" (it went on and was lost in {last.netns} {last.device}: {w.reason})"
    else:
        end = f" (it went on; the walk stopped at {w.reason})"
    return Verdict(False, v.lost_at, f"{v.reason or ''}{end}" if v.reason else w.reason, v.fix, v.never_sent)


def _explain(w: Walk, hops: list[Hop] | None, lab: str) -> Verdict:
    """Where the packet disappeared and why.

    The why is the kernel's: the first row with a problem after the last row
    seen (no ARP entry, no FDB entry, no route ...), else the walk's stop
    reason, else a pointer to what to look at next. The packet is lost at
    that problem row, the one marked ``!!``: several rows may decide about one
    place (a route, then the next hop's ARP entry, both for the packet leaving
    flannel.1), and a capture there misses the packet at the first of them
    although the last one dropped it. A problem row further on, past a place
    where the packet was already not seen, is not why: it was lost at the first
    row not seen after the last one seen. A row that doomed the packet
    although it travelled on (a node that did not DNAT a Service packet: it
    then goes where the ClusterIP leads, nowhere) is blamed before anything
    after it, unless it sent the packet astray and it arrived all the same
    (TraceResult.astray). ``lab``: the lab's name, for the commands the pointer names (with
    --lab, they work whatever other lab is up).
    """
    hops = hops if hops is not None else w.hops
    observable = [i for i, h in enumerate(hops) if h.seen is not None]
    seen = [i for i in observable if hops[i].seen]
    last_seen = seen[-1] if seen else -1
    after = [i for i in observable if i > last_seen]
    cause = next((i for i, h in enumerate(hops) if h.cause and h.problem), None)
    if cause is not None:
        # Doomed at that hop although it went on: blame it, and say where it finally went.
        h = hops[cause]
        lb = next((x for x in hops[:cause] if x.facts.get("lb_route_drift") and x.problem), None)
        if lb is not None:
            # The gateway's route for a LoadBalancer IP sent it to a node the plan does not (strayroutes.
            # balancer_route): that route is why; the node's drop (no local endpoint) is where it ended.
            dropped = h.came_here.own if h.came_here is not None else h.problem
            return Verdict(False, hops.index(lb), f"{lb.problem} (it went on as it was and was lost in "
                                                  f"{h.netns} {h.device}: {dropped})", lb.fix)
        if h.facts.get("dropped_here"):  # it did not go on: the walk only followed what its rows allow
            return Verdict(False, cause, h.problem, h.fix)
        later = next((x for x in hops[cause + 1:] if x.problem), None)
        if h.facts.get("astray") and later is None and w.outcome == "delivered" and not after:
            # Sent astray (an FDB entry naming another node), and that node forwarded it on to where it arrived:
            # delivered, by a path the lab did not plan (TraceResult.astray says so, and fails the trace).
            return Verdict(True, None, None)
        if later is not None:
            end = f" and was lost in {later.netns} {later.device}: {later.problem}"
        elif w.outcome == "delivered" and not after and h.facts.get("stray_reply"):
            # a reply its client takes for no connection of its own: answered there, as the kernel does
            answer = h.facts["stray_reply"]
            end = unnatreply.verdict_end(w.end_netns, answer if answer != "ignored" else None,
                                         h.facts.get("answer_seen"))
        elif w.outcome == "delivered" and not after:
            end = f" and was delivered to {w.end_netns} itself, where no endpoint is"
        elif after:
            end = f" and was not seen on {hops[after[0]].netns} {hops[after[0]].device}"
        else:
            end = f": {w.reason}" if w.reason else ""
        return Verdict(False, cause, f"{h.problem} (it went on as it was{end})", h.fix)
    if w.outcome == "delivered" and not after:
        return Verdict(True, None, None)
    # Not seen from the first observable row after the last seen one; a walk that stopped without one
    # (nothing to observe after the last seen row) lost it at its last row.
    if after:
        lost = after[0]
    else:
        lost = len(hops) - 1 if hops else None
    problems = [i for i, h in enumerate(hops) if h.problem and i > last_seen] or \
               [i for i, h in enumerate(hops) if h.problem]
    if problems and (lost is None or problems[0] <= lost or _explains(hops, lost, problems[0])):
        p = hops[problems[0]]
        stray = next((h for h in hops[:problems[0]] if h.facts.get("astray") and h.problem), None)
        if stray is not None and p.facts.get("drift"):
            # Dropped by a setting that is not the plan's (strict rp_filter), on a path a stray route made
            # asymmetric: the setting is what dropped it, so it comes first; the route is why the path is so.
            return Verdict(False, problems[0], f"{p.problem}; it came in there because {stray.problem}",
                           " && ".join(_command(x) for x in (p.fix, stray.fix) if x) or None)
        if stray is not None:
            # Sent astray before (a route via a pod, which does not forward): that row is why, the loss its end.
            return Verdict(False, hops.index(stray), f"{stray.problem} (it went on as it was and was lost in "
                                                     f"{p.netns} {p.device}: {p.problem})", stray.fix)
        # Seen past the problem row, the packet went on as the walk did not: say where it vanished.
        went_on = f" (it went on, and was not seen {_on(hops[after[0]], hops[last_seen])})" \
            if after and problems[0] < last_seen else ""
        return Verdict(False, problems[0], f"{p.problem}{went_on}", p.fix)
    if w.reason and not problems:
        return Verdict(False, lost, w.reason)
    if lost is None:
        return Verdict(False, None, "nothing was captured")
    h = hops[lost]
    prev = hops[last_seen] if last_seen >= 0 else None
    where = f"seen {_on(prev, h)}, never {_on(h, prev)}; " if prev else ""
    who = h.where.split()[-1]
    # A problem row further on is past the place where the packet vanished: the answers up to here are right.
    upto = " up to there" if problems else ""
    named = f" --lab {lab}" if lab else ""
    where = where or f"never {_on(h)}; "
    inspect, capture = netlab_command(f"inspect{named} {who}"), netlab_command(f"capture{named} {who}:{h.device}")
    return Verdict(False, lost, f"{where}the kernel's route, ARP and FDB answers"
                                f"{upto} look right, so look at the firewall: {inspect} "
                                f"(iptables counters) or {capture}")


def _command(fix: str) -> str:
    """A fix as a command alone, without the remark after it ("sysctl -w ...=0   (or 2, loose)")."""
    return fix.split("   (", 1)[0]


def _on(h: Hop, other: Hop | None = None) -> str:
    """Where a row watches the packet, in words: "on NS DEV", or where ``other`` watches the same device in the
    other direction, "arriving on NS DEV" / "leaving by NS DEV" (seen coming in, lost inside that namespace)."""
    here, there = _place(h), _place(other) if other is not None else None
    if there is None or here[:2] != there[:2] or here[2] == there[2]:
        return f"on {h.netns} {h.device}"
    return f"{'leaving by' if here[2] == 'out' else 'arriving on'} {h.netns} {h.device}"


def _place(h: Hop) -> tuple[str, str, str]:
    """Where a capture would see the packet once the row's decision let it go: the row's observation point, or
    for a decision a capture cannot see (a route refused, a frame too big for the device) leaving by its device."""
    o = h.observe
    return (o.netns, o.ifname, o.direction) if o is not None else (h.netns, h.device, "out")


def _explains(hops: list[Hop], lost: int, problem: int) -> bool:
    """The problem row explains why the packet was not seen from row ``lost`` on: every captured row from there to
    it watches the same place (a route, an ARP and an FDB lookup of a packet leaving flannel.1 are all seen, or all
    not seen, on flannel.1). A row at another place before it was not seen: the packet vanished before the
    problem's place, which is then not why."""
    place = _place(hops[problem])
    return all(_place(h) == place for h in hops[lost:problem + 1] if h.seen is not None)


def nat_between_pods(w: Walk, src_ip: str, src_netns: str | None, where: dict[str, str],
                     dst_ip: str | None = None) -> dict[str, Any] | None:
    """A pod's packet to another pod's address delivered with another source than its own: a node on the way
    masqueraded it, and the Kubernetes network model's first rule, pods reach pods without NAT, is broken (probe's
    "no NAT" check fails on it too). A packet to a Service, a nodePort or a balancer (``dst_ip``, DNATed to the
    pod) is not judged: kube-proxy masquerades some of those by design. ``where``: netns -> "pod x1"/"node a".
    What it says: the masquerade's row, and the row that sent the packet there when the walk found one (a route
    that is not the plan's), with its fix."""
    end = w.end_netns
    if (w.outcome != "delivered" or w.final is None or end is None or end == src_netns
            or (dst_ip is not None and w.final.dst != dst_ip)
            or not where.get(end, "").startswith("pod ") or not where.get(src_netns or "", "").startswith("pod ")
            or w.final.src == src_ip):
        return None
    snat = next((h for h in w.hops if h.kind == "snat"), None)
    by = f"{where.get(snat.netns, snat.netns)} ({snat.netns}) masqueraded it at hop {snat.index}" if snat \
        else "it was masqueraded"
    dst = where[end].split()[-1]
    out: dict[str, Any] = {
        "text": (f"{dst} got the packet from {w.final.src}, not from {src_ip}: {by} on the way; the Kubernetes "
                 "network model's rule that pods reach pods without NAT is broken"),
        "hop": snat.index if snat else None, "source": w.final.src}
    cause = next((h for h in w.hops if h.problem and (snat is None or w.hops.index(h) < w.hops.index(snat))), None)
    if cause is not None:
        out.update(cause=cause.problem, cause_hop=cause.index, fix=cause.fix)
    return out


def reply_waits_on_arp(back: Walk, replier: str) -> Verdict | None:
    """A reply no capture saw because it never left its sender: the kernel routed it on-link (no gateway) and waits
    for the next hop's ARP answer, which nothing gave (the entry INCOMPLETE or FAILED: the kernel asked, so the
    reply was made). None when the reply walk stopped for another reason, or elsewhere than where it began."""
    stop = next((i for i, h in enumerate(back.hops) if h.problem), None)
    hop = back.hops[stop] if stop is not None else None
    if hop is None or hop.kind != "neigh" or hop.netns != back.hops[0].netns or \
            hop.facts.get("state") not in ("INCOMPLETE", "FAILED"):
        return None
    ip = hop.facts.get("ip")
    route = next((h for h in back.hops[:stop] if h.kind == "route" and h.netns == hop.netns and h.device == hop.device
                  and not h.facts.get("gateway") and h.facts.get("matched")), None)
    onlink = f"; its route `{route.facts['matched']}` puts {ip} on {hop.device}'s link, so it asks for it there" \
        if route is not None else ""
    return Verdict(False, stop, f"{replier} answered, but its reply waits on ARP for {ip}: {hop.problem}{onlink}",
                   hop.fix)
