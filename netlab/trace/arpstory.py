"""The ARP exchanges the traced packet waited for, from the trace's own capture.

A packet whose next hop has no usable ARP entry (none, or one that failed)
does not leave at once: the kernel queues it behind the entry, broadcasts
``who-has`` and sends it when the answer comes. The walk reads each
neighbour entry after the packet, so on its own it would say "REACHABLE" of
an entry that did not exist before the packet (and "DELAY" of one the
destination only learned from the sender's own request). With the entries
read before the packet (``state_before``, set by the walker) and the ARP
frames the capture kept, the neighbour row says what happened: the state
before, the request the kernel sent and the answer (its ``saw:`` lines), or
the request the entry was learned from. A row whose entry is missing after
the packet (a problem) gets the requests, answered or not, as before.

Pure: the walk's rows and the decoded frames come in.
"""

from __future__ import annotations

from typing import Any, Callable

from netlab.trace.flow import Packet
from netlab.trace.hops import Hop, Walk

USABLE = ("PERMANENT", "NOARP", "REACHABLE", "STALE", "DELAY", "PROBE")  # a MAC the packet can go to at once


def relevant(p: Packet, w: Walk) -> bool:
    """An ARP frame about one of the walk's next hops (kept in the pcap)."""
    if p.arp is None:
        return False
    ips = {h.facts["ip"] for h in w.hops if h.kind == "neigh" and "ip" in h.facts}
    return p.arp["tpa"] in ips or p.arp["spa"] in ips


def _asks(h: Hop, packets: list[Packet]) -> list[Packet]:
    return [p for p in packets if p.arp and p.arp["op"] == 1 and p.arp["tpa"] == h.facts["ip"]
            and p.netns == h.netns and p.ifname == h.device and p.direction == "out"]


def _answers(h: Hop, packets: list[Packet]) -> list[Packet]:
    return [p for p in packets if p.arp and p.arp["op"] == 2 and p.arp["spa"] == h.facts["ip"]
            and p.netns == h.netns and p.ifname == h.device and p.direction == "in"]


def story(w: Walk, packets: list[Packet], name_ip: Callable[[str], str] = str) -> list[dict[str, Any]]:
    """Every ARP exchange of the walk's next hops, for ``-o json``'s ``arp`` (and the rows they explain, rewritten
    in place): a missing entry's requests; a healthy row's exchange when the entry was not usable before the
    packet. ``name_ip``: an address and whose it is."""
    out = []
    for h in w.hops:
        if h.kind != "neigh" or "ip" not in h.facts:
            continue
        ip = h.facts["ip"]
        asks = _asks(h, packets)
        answers = [p for p in packets if p.arp and p.arp["op"] == 2 and p.arp["spa"] == ip and p.netns == h.netns] \
            if h.problem else _answers(h, packets)
        if h.problem:
            if asks or answers:
                out.append({"text": asks[0].summary if asks else f"who-has {ip}", "count": len(asks),
                            "netns": h.netns, "ifname": h.device, "answered": bool(answers)})
            continue
        before = h.facts.get("state_before")
        if before is None or before in USABLE:
            continue  # the packet left at once: an entry it found, or nothing known of before
        was = "no ARP entry" if before == "no entry" else f"ARP entry {before}"
        whose, now = name_ip(ip), f"{h.facts.get('lladdr')} ({h.facts.get('state')})"
        if asks:
            reply = f"{name_ip(answers[0].arp['spa'])} answered" if answers and answers[0].arp else "no answer seen"
            h.decision = (f"{was} for {whose} before the packet: the kernel held the packet back, asked who-has "
                          f"{ip} ({len(asks)}x) and sent it once {reply}; the entry is now {now}")
            h.evidence = asks[0].summary or None
            h.facts.update(arp_request=asks[0].summary, arp_reply=answers[0].summary if answers else None)
            out.append({"text": asks[0].summary, "count": len(asks), "netns": h.netns, "ifname": h.device,
                        "answered": bool(answers), "reply": answers[0].summary if answers else None,
                        "state_before": before, "ip": ip})
            continue
        heard = [p for p in packets if p.arp and p.arp["op"] == 1 and p.arp["spa"] == ip and p.netns == h.netns
                 and p.ifname == h.device and p.direction == "in"]
        if heard:  # the kernel keeps the address of whoever asks it for its own
            h.decision = (f"{was} for {whose} before the packet: learned from the ARP request {whose} sent for "
                          f"{heard[0].arp['tpa'] if heard[0].arp else '?'} (the kernel keeps the address of whoever "
                          f"asks for its own); the entry is now {now}")
            h.evidence = heard[0].summary or None
            h.facts["arp_learned_from"] = heard[0].summary
    return out
