"""How a trace is shown: the whole result, its rows numbered, as text for a learner and as JSON.

Rows are numbered 1.. on the way there and r1.. on the way back. The text
has one line per hop (seen or not, namespace, device, the kernel's
decision), the command that shows the same fact under it, and at the end
the result: delivered (with the TTL on arrival and the reply), or lost at
hop N with the kernel's reason and the fix the lab's plan gives.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from netlab.trace.faults import up_repairs
from netlab.trace.hops import Hop, Walk
from netlab.trace.later import Later
from netlab.trace.verdict import Verdict


@dataclass
class TraceResult:
    """A whole trace: both walks and their verdicts, what came back to the socket, what the capture saw."""

    lab: str
    src: dict[str, Any]
    dst: dict[str, Any]
    proto: str
    port: int | None
    marker: str
    forward: Walk
    reply: Walk | None
    verdict: Verdict
    reply_verdict: Verdict | None
    reply_received: bool
    reply_text: str | None = None
    icmp_errors: list[dict[str, Any]] = field(default_factory=list)
    arp: list[dict[str, Any]] = field(default_factory=list)
    captured_netns: list[str] = field(default_factory=list)
    packets: int = 0
    pcap: str | None = None
    vxlan_port: int = 8472
    dns: dict[str, Any] | None = None  # to port 53: the question asked, and the answer
    policy: list[dict[str, Any]] = field(default_factory=list)  # NetworkPolicy verdicts (trace/policy.py)
    # the `up` that repairs this lab (with -t FILE when it came from a file), worked out when a line names it
    repair_later: Later = field(default_factory=lambda: Later("sudo netlab up"), repr=False, compare=False)
    # delivered, and refused there (a reset, a port unreachable), or refused on the way by a rule (kube-proxy's
    # REJECT of a Service without endpoints; the verdict is not delivered, lost_at its row): why (refusal.py)
    refused: str | None = None
    nat: dict[str, Any] | None = None  # delivered pod to pod from another source (verdict.nat_between_pods)
    # Something at the destination answers this packet: the kernel (a SYN, an ICMP echo), a DNS server, netlab's
    # echo server (a pod's echo port; an internet host's, during the trace). False: a UDP datagram to a port no
    # program netlab knows answers; it may take a datagram and say nothing (run.reply_expected).
    reply_expected: bool = True
    listener: str | None = None  # to an internet host: the temporary echo listener that answered (run._listen)
    # The impaired interfaces the path leaves by: target (NAME:IFACE), impairment, direction, hop (lossblame.on_path)
    impairments: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # an end that is a terminal pod (targets.terminated_notes)
    error: str | None = None  # a lab whose up or down ended before it finished: list's line (interrupted.stalled)

    @property
    def repair(self) -> str:
        return self.repair_later()

    @repair.setter
    def repair(self, value: str) -> None:
        self.repair_later = Later(value)

    @property
    def endpoint(self) -> dict[str, Any] | None:
        """The DNAT's choice; what does not apply to it is left out (a conntrack entry held before the packet
        chose no rule; nftables mode counts no rule and iptables mode has no vmap), as ``Lab.trace()``'s
        ServiceEndpoint leaves its None fields out of its JSON."""
        for h in self.forward.hops:
            if h.kind == "dnat" and "endpoint" in h.facts:
                return {k: h.facts[k] for k in ("service", "endpoint", "endpoint_ip", "endpoint_port", "svc_chain",
                                                "sep_chain", "rule", "probability", "chance", "rule_position",
                                                "rules", "affinity", "rule_counted", "chosen_by", "vmap_element",
                                                "path", "via")
                        if h.facts.get(k) is not None}
        return None

    @property
    def ok(self) -> bool:
        """Delivered and not refused, and no flow the policies deny got past a node that should have stopped it
        (the policies are an expectation too: ``probe`` and ``policy table`` fail on such a flow), and not
        masqueraded on its way from pod to pod (the network model's first rule: ``probe`` fails on it too), and
        its reply not lost (the user's connection fails as surely: ``probe`` fails on it too)."""
        return self.verdict.delivered and self.refused is None and not self.not_stopped and self.nat is None \
            and not self.reply_lost and self.astray is None

    @property
    def astray(self) -> dict[str, Any] | None:
        """Delivered, but by a path the lab did not plan: the first row (on the way there, then on the way back of
        a reply that came back) that sent the packet another way than the plan's and is marked ``!!`` with why and
        the fix: a route via another next hop, a route the plan does not have that overrides the plan's, an FDB
        entry naming another node, which forwarded it on. Drift that the packet proves (``status`` names the same
        entry): the trace fails on it, as it fails on a packet masqueraded on its way from pod to pod."""
        if not self.verdict.delivered:
            return None
        rows = list(self.forward.hops)
        v = self.reply_verdict
        if self.reply is not None and (self.reply_received or (v is not None and v.delivered)):
            rows += self.reply.hops
        h = next((h for h in rows if h.facts.get("astray") and h.problem), None)
        if h is None:
            return None
        got = f"{self.src['name']} got the reply" if h.direction == "reply" else f"{_receiver(self)} got the packet"
        return {"hop": h.index, "label": label(h), "direction": h.direction, "netns": h.netns, "device": h.device,
                "text": f"{got}, but by a path the lab did not plan: astray at hop {label(h)} ({h.netns} {h.device})",
                "reason": h.problem, "fix": h.fix}

    @property
    def reply_lost(self) -> bool:
        """No reply came back, and one was due: the destination sent one that was lost on the way back, or sent
        none where something there answers such a packet (a UDP datagram to a port nothing of netlab's answers
        may go unanswered: no reply is no failure there)."""
        v = self.reply_verdict
        if self.reply_received or self.refused is not None or v is None or v.delivered:
            return False
        return not v.never_sent or self.reply_expected

    @property
    def not_stopped(self) -> bool:
        return any(e.get("stopped") is False for e in self.policy)

    def to_json(self, repair: str | None = None) -> dict[str, Any]:
        """``repair``: the repair in other words (the API's Python call) than :attr:`repair`, not worked out then."""
        def loss(v: Verdict | None, hops: list[Hop]) -> dict[str, Any] | None:
            if v is None or v.delivered:
                return None
            h = hops[v.lost_at] if v.lost_at is not None and v.lost_at < len(hops) else None
            return {"hop": h.index if h else None, "netns": h.netns if h else None, "device": h.device if h else None,
                    "reason": v.reason, "fix": v.fix}

        return {
            # the flow in probe's and policy table's words, the old keys beside them for one release (docs/json.md)
            "lab": self.lab, "source": self.src, "src": self.src, "destination": self.dst, "dst": self.dst,
            "protocol": self.proto, "proto": self.proto, "port": self.port,
            "marker": self.marker, "delivered": self.verdict.delivered, "reply_received": self.reply_received,
            "reply": self.reply_text,
            "lost": loss(self.verdict, self.forward.hops),
            "reply_lost": loss(self.reply_verdict, self.reply.hops) if self.reply else None,
            "endpoint": self.endpoint, "icmp_errors": self.icmp_errors, "arp": self.arp,
            "hops": [h.to_json() for h in self.forward.hops],
            "reply_hops": [h.to_json() for h in self.reply.hops] if self.reply else [],
            "captured_netns": self.captured_netns, "packets": self.packets, "pcap": self.pcap, "dns": self.dns,
            "policy": self.policy, "repair": self.repair if repair is None else repair, "refused": self.refused,
            "nat": self.nat,
            "reply_expected": self.reply_expected, "listener": self.listener, "astray": self.astray,
            "impairments": self.impairments, "notes": self.notes, "ok": self.ok, "error": self.error,
        }


def number(result: TraceResult) -> None:
    """Rows are numbered 1.. on the way there and r1.. on the way back; again after a row is inserted or rows go
    (a REJECT's row, a reply that starts at the REJECT: trace/policy.py), so that every label and every JSON
    ``index`` and ``hop`` names the row it is."""
    for i, h in enumerate(result.forward.hops, 1):
        h.index = i
    for i, h in enumerate(result.reply.hops if result.reply else [], 1):
        h.index = i


def label(h: Hop) -> str:
    return f"r{h.index}" if h.direction == "reply" else str(h.index)


SEEN = {True: "seen", False: "NOT SEEN", None: "-"}
REPLY_KINDS = ("dnat", "snat", "deliver", "drop", "reject")


def render_text(r: TraceResult, full_reply: bool = False, width: int | None = None) -> str:
    """The trace as a learner reads it: one row per hop, with the command that shows the same fact.

    ``width``: wrap every line to it (a terminal's width); None keeps each on one line.
    """
    out: list[str] = []
    src, dst = r.src, r.dst
    what = {"icmp": "ICMP echo request", "tcp": f"TCP SYN to port {r.port}", "udp": f"UDP datagram to port {r.port}"}
    if r.dns:
        what["udp"] = f"DNS query (UDP port {r.port}) for A {r.dns['question']}"
    out.append(f"trace {src['name']} ({src['ip']}) → {dst['name']} ({dst['ip']}"
               f"{':' + str(r.port) if r.port and r.proto != 'icmp' else ''}): {what[r.proto]}, lab {r.lab}, "
               f"marker {r.marker}")
    out.append(f"captured in {len(r.captured_netns)} namespaces at once, {r.packets} frames of this packet")
    out.append("")
    out += _rows(r.forward.hops, width)
    if r.reply is not None:
        rows = r.reply.hops if full_reply else [
            h for i, h in enumerate(r.reply.hops)
            if h.kind in REPLY_KINDS or h.problem or (r.reply_verdict and r.reply_verdict.lost_at == i)]
        if rows:
            out.append("")
            hidden = len(r.reply.hops) - len(rows)
            more = f" ({hidden} more rows with --full-reply)" if hidden else ""
            out.append(f"reply {_reply_flow(r)}{more}:")
            out += _rows(rows, width)
    out.append("")
    ep = r.endpoint
    if ep and ep.get("via") == "HostPort":
        out.append(f"hostPort {r.port} of pod {ep.get('endpoint')}: portmap's DNAT to {ep.get('endpoint_ip')}:"
                   f"{ep.get('endpoint_port')} via {ep.get('svc_chain')} → {ep.get('sep_chain')}")
    elif ep:
        out.append(f"Service {ep['service']}: the DNAT picked endpoint {ep.get('endpoint')} "
                   f"({ep.get('endpoint_ip')}:{ep.get('endpoint_port')}) via {ep.get('svc_chain')} → "
                   f"{ep.get('sep_chain')}")
        if ep.get("chosen_by"):
            out.append(f"  chosen by {ep['chosen_by']}")
        if ep.get("path"):
            out.append(f"  path: {ep['path']}")
    v = r.verdict
    if v.delivered:
        ttl = next((h.facts.get("ttl") for h in reversed(r.forward.hops) if h.kind == "deliver"), None)
        line = f"result: {'REFUSED by' if r.refused else 'delivered to'} {_receiver(r)}{_itself(r)}"
        if ttl is not None:
            line += f" (TTL {ttl} on arrival)"
        astray = r.astray
        if astray:
            line += f", but NOT by the planned path (astray at hop {astray['label']})"
        if r.refused:
            line += f": {r.refused}"
        elif r.reply_received:
            line += f"; reply received{': ' + r.reply_text if r.reply_text else ''}"
        elif r.reply_verdict and not r.reply_verdict.delivered:
            lost = r.reply.hops[r.reply_verdict.lost_at] if r.reply_verdict.lost_at is not None else None
            if r.reply_verdict.never_sent or lost is None:
                line += f"; NO REPLY: {r.reply_verdict.reason}"
            else:
                line += (f"; NO REPLY (lost at hop {label(lost)}, {lost.netns} {lost.device}: "
                         f"{r.reply_verdict.reason})")
        out.append(line)
        arrival = next((h for h in reversed(r.forward.hops) if h.kind == "deliver"), None)
        if r.refused and arrival is not None and arrival.problem and arrival.fix:  # its server down, a hostPort's DNAT
            also = f"   (or: {r.repair}, which repairs the lab)" if up_repairs(arrival.fix) else ""
            out.append(f"  fix: {arrival.fix}{also}")
        if r.reply_verdict and not r.reply_verdict.delivered and r.reply_verdict.fix and not r.reply_received:
            also = f"   (or: {r.repair}, which repairs the lab)" if up_repairs(r.reply_verdict.fix) else ""
            out.append(f"  fix: {r.reply_verdict.fix}{also}")
        if r.nat:
            out.append(f"NAT: {r.nat['text']}")
            if r.nat.get("cause"):
                out.append(f"  because: {r.nat['cause']} (hop {r.nat['cause_hop']})")
            if r.nat.get("fix"):
                also = f"   (or: {r.repair}, which repairs the lab)" if up_repairs(r.nat["fix"]) else ""
                out.append(f"  fix: {r.nat['fix']}{also}")
        if astray and not (r.nat and r.nat.get("cause_hop") == astray["hop"] and astray["direction"] == "forward"):
            out.append(f"astray: {astray['text']}: {astray['reason']}")
            if astray["fix"]:
                also = f"   (or: {r.repair}, which repairs the lab)" if up_repairs(astray["fix"]) else ""
                out.append(f"  fix: {astray['fix']}{also}")
    else:
        lost = r.forward.hops[v.lost_at] if v.lost_at is not None and v.lost_at < len(r.forward.hops) else None
        where = f" at hop {lost.index} ({lost.netns} {lost.device})" if lost else ""
        out.append(f"result: REFUSED{where}: {r.refused}" if r.refused else f"result: LOST{where}: {v.reason}")
        if v.fix:
            also = f"   (or: {r.repair}, which repairs the lab)" if up_repairs(v.fix) else ""
            out.append(f"  fix: {v.fix}{also}")
    if r.listener:
        out.append(f"note: {r.listener}")
    out += [f"note: {n}" for n in r.notes]
    named = [i for i in r.impairments if f"{i['target']} has netlab's impairment" not in (v.reason or "")]
    if named:  # what slows or drops such packets, though this one may have got through
        said = ", ".join(f"{i['target']} ({i['impairment']}, hop {i['hop']})" for i in named)
        out.append(f"note: the path crosses interfaces netlab impairs: {said}; `netlab impair` lists them")
    shown: set[str] = set()
    for entry in r.policy:  # one per endpoint a Service may pick: the same words once, and not the result's again
        if entry["text"] in shown or entry["text"] in (v.reason or ""):
            continue
        shown.add(entry["text"])
        out.append(f"policy: {entry['text']}")
        if entry.get("fix"):
            also = f"   (or: {r.repair}, which repairs the lab)" if entry["fix"] != r.repair else ""
            out.append(f"  fix: {entry['fix']}{also}")
    for e in r.icmp_errors:
        out.append(f"  ICMP {e['text']} from {e['from']} (seen in {e['netns']} {e['ifname']})")
    for a in r.arp:
        if a.get("state_before") is not None and a.get("answered"):
            continue  # its neighbour row tells this exchange, both frames under it (arpstory.py)
        out.append(f"  {a['text']} ({a['count']}x on {a['netns']} {a['ifname']}, "
                   f"{'answered' if a.get('answered') else 'no answer'})")
    if r.pcap:
        out.append(f"pcap: {r.pcap} (pcapng, one interface per namespace/device); read it with:")
        out.append(f"  tshark -r {r.pcap} -d udp.port=={r.vxlan_port},vxlan")
    out += _legend(r.forward.hops + (r.reply.hops if r.reply else []), width)
    if width:
        out = [piece for line in out for piece in _wrap(line, width)]
    return "\n".join(out) + "\n"


LEGEND = {
    True: "seen      the capture saw the packet there",
    False: "NOT SEEN  that namespace was captured, the packet did not show up there",
    None: ("-         nothing a capture can show: a decision the kernel takes inside a namespace (a NAT, a route "
           "lookup, a bridge that switches a frame straight back out), or a namespace that was not captured"),
}


def _legend(hops: list[Hop], width: int | None = None) -> list[str]:
    """What the status column means, for the statuses this trace shows (continued under the meaning)."""
    used = {h.seen for h in hops}
    lines = [f"  {LEGEND[k]}" for k in (True, False, None) if k in used]
    if width:
        lines = [piece for line in lines for piece in _wrap(line, width, " " * 12)]
    return ["", "status:", *lines] if lines else []


def _receiver(r: TraceResult) -> str:
    """Who got the packet: the destination, or the endpoint a Service's DNAT (ClusterIP, nodePort) chose."""
    ep = r.endpoint
    if not ep or not ep.get("endpoint"):
        return str(r.dst["name"])
    port = f":{r.port}" if r.port and r.proto != "icmp" else ""
    # the address the packet was sent to: svc/NAME alone is its ClusterIP; a LoadBalancer IP or an externalIP is said
    said = {"LoadBalancer": "LoadBalancer IP", "ExternalIP": "externalIP"}.get(ep.get("via") or "")
    sent = f"{r.dst['name']}'s {said} {r.dst['ip']}" if said else r.dst["name"]
    if ep.get("via") == "HostPort":  # portmap's DNAT of a pod's hostPort, no Service's (hostport.py)
        return (f"{ep['endpoint']}, whose hostPort is {r.dst['name']}{port} (portmap DNATed it to "
                f"{ep.get('endpoint_ip')}:{ep.get('endpoint_port')})")
    return (f"{ep['endpoint']}, endpoint of Service {ep['service']} ({sent}{port} DNATed "
            f"to {ep.get('endpoint_ip')}:{ep.get('endpoint_port')})")


def _reply_flow(r: TraceResult) -> str:
    """The reply as it leaves the destination: the request as it arrived, turned around."""
    first = r.reply.hops[0].observe if r.reply and r.reply.hops else None
    error = next((h.facts["icmp_error"] for h in r.reply.hops if h.facts.get("icmp_error")), None) if r.reply else None
    made = next((h.observe.flow for h in r.reply.hops if h.observe is not None), None) if r.reply else None
    if made is not None and made.quoted is not None:  # a REJECT's ICMP error, walked as itself
        return str(made)
    if first is not None and error:  # the rows saw the kernel's ICMP error in the reply's place
        return f"{first.flow}, seen as the kernel's ICMP {error}, which quotes the packet (conntrack relates it " \
               "to this flow)"
    if first is not None:
        return str(first.flow)
    return str(r.forward.final.reversed()) if r.forward.final else "(no packet)"


def _itself(r: TraceResult) -> str:
    """A packet to its own sender: through lo, or out and back in through a Service or its hostPort (hairpin)."""
    home = r.src.get("netns")
    if not home or r.forward.end_netns != home:
        return ""
    if all(h.netns == home for h in r.forward.hops):
        return (f" (itself: {r.dst['ip']} is its own address, so the kernel loops the packet back through lo and "
                f"it never leaves {home})")
    hair = next((h for h in r.forward.hops if h.kind == "bridge" and h.facts.get("hairpin")), None)
    node = hair.where.split()[-1] if hair else "the node"
    via = (f"{node}'s bridge {hair.facts['bridge']} sent the frame back out the port it came in on, {hair.device} "
           "in hairpin mode" if hair else "the node sent it back")
    src = r.forward.final.src if r.forward.final else None
    hostport = (r.endpoint or {}).get("via") == "HostPort"  # portmap's DNAT, and its 0x2000 mark's masquerade
    how = " (CNI-HOSTPORT-SETMARK's mark 0x2000, CNI-HOSTPORT-MASQ's MASQUERADE)" if hostport else ""
    masq = f", masqueraded to {src}{how} so that the reply comes back through {node} to be un-DNATed" \
        if src and src != r.src.get("ip") else ""
    if hostport:
        dnat = next((h for h in r.forward.hops if h.kind == "dnat" and h.facts.get("via") == "HostPort"), None)
        at = dnat.where.split()[-1] if dnat else node
        sent = (f", {node}'s bridge {hair.facts['bridge']} sending the frame back out the port it came in on, "
                f"{hair.device} in hairpin mode") if hair else ""
        return f" (itself, through its hostPort: portmap's DNAT on {at} sent it back to the pod{sent}{masq})"
    return f" (itself, through the Service: {via}{masq})"


PAD = 15  # where a row's details start
MIN_COLUMN = 40  # narrower than this, a row's decision continues under its details instead


def _rows(hops: list[Hop], width: int | None = None) -> list[str]:
    out = []
    pad = " " * PAD
    for h in hops:
        status = SEEN[h.seen]
        head = f"{label(h):>3}  {status:<8}  {h.netns:<22} {h.device:<13} "
        if width:
            indent = len(head) if width - len(head) >= MIN_COLUMN else PAD
            out += _wrap(head + h.decision, width, " " * indent)
        else:
            out.append(head + h.decision)
        arp = h.kind == "neigh" and ("arp_request" in h.facts or "arp_learned_from" in h.facts)  # arpstory.py
        if h.evidence and (h.kind in ("encap", "decap", "deliver") or arp):
            out.append(f"{pad}saw: {h.evidence}")
        if h.kind == "neigh" and h.facts.get("arp_reply"):  # the answer to the request above (arpstory.py)
            out.append(f"{pad}saw: {h.facts['arp_reply']}")
        if h.problem:
            out.append(f"{pad}!! {h.problem}")
        for c in h.commands:
            out += _wrap_command(f"{pad}$ {c}", width, pad + "    ") if width else [f"{pad}$ {c}"]
    return out


def _wrap(line: str, width: int, indent: str | None = None) -> list[str]:
    """One line cut at spaces to ``width``; continuations indented like the line (a little more)."""
    if len(line) <= width:
        return [line]
    if indent is None:
        lead = len(line) - len(line.lstrip())
        indent = " " * (lead + (3 if line.lstrip().startswith("!! ") else 2 if lead else 4))
    return textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False,
                         drop_whitespace=True) or [line]


def _wrap_command(line: str, width: int, indent: str) -> list[str]:
    """A command cut with shell continuations (`` \\``), so it can still be copied and pasted."""
    if len(line) <= width:
        return [line]
    parts = textwrap.wrap(line, width - 2, subsequent_indent=indent, break_long_words=False,
                          break_on_hyphens=False)
    return [p + " \\" for p in parts[:-1]] + parts[-1:]
