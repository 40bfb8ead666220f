"""The bridge row of a bridged DNAT: which of its two ways the kernel sent the frame back into the bridge.

A frame for the bridge's own MAC that br_netfilter DNATs at the bridge port (nat PREROUTING, a Service's DNAT) to
an address behind the same bridge is not handed up to the IP layer: br_nf_pre_routing_finish finds the route
leads out of the bridge device again and lets br_nf_pre_routing_finish_bridge send the frame back into the
bridge. How depends on the new destination's neighbour entry, as it is when the frame comes:

- connected (REACHABLE, PERMANENT, NOARP) with a cached Ethernet header: the header is written on the frame and
  the bridge switches it on from the port it came in by (br_handle_frame_finish). It never passes the bridge
  device: a capture there does not see it. The first packet sent through an entry caches its header
  (neigh_resolve_output); the kernel does not show it, but an entry's ages do (`ip -s neigh`'s used/updated):
  one used since it was written has it, one never used since it was made (a fresh static entry) has not;
- otherwise (no entry, STALE, an unfinished resolution, no cached header yet): the frame is marked as bridged
  DNAT and handed to the neighbour's output, which resolves the address first when it must (the ARP request
  leaves by the bridge device, the frame waits in the entry's queue), caches the header, and then transmits the
  frame on the bridge device itself. The bridge device's transmit sees the mark and forwards it on as if from its
  port; taps on the bridge device see the frame leave it.

The walk reads the entry's state before the packet (the neighbour row's ``state_before``, arpstory.py).
"""

from __future__ import annotations

from typing import Any

# A neighbour state with a resolved address whose cached header br_netfilter writes on the frame (NUD_CONNECTED)
CONNECTED = ("REACHABLE", "PERMANENT", "NOARP")
# States with an address the packet can be sent to at once (the output confirms the entry later)
USABLE = CONNECTED + ("STALE", "DELAY", "PROBE")
# States after the packet of an entry whose resolution got no answer: a frame it held was never sent
UNANSWERED = ("INCOMPLETE", "FAILED")


def through_device(before: str | None, cached: bool | None = True) -> bool | None:
    """The frame leaves by the bridge device (True), is switched straight back from the port (False), or it is
    not known (None: the entry before the packet was not read, or a connected one may have no cached header yet).
    ``cached``: whether the connected entry held its cached Ethernet header (the first packet sent through it
    builds it: a fresh static entry has none; kernel.neigh_header_before), None when that is not known."""
    if before is None:
        return None
    if before not in CONNECTED:
        return True
    return None if cached is None else not cached


def words(bridge: str, port: str | None, whose: str, before: str | None,
          cached: bool | None = True, after: str | None = None) -> tuple[str, dict[str, Any]]:
    """The row's text after "dst MAC is BRIDGE's own, ...", and its facts: ``whose``: the new destination's next
    hop and whose it is; ``before``: its neighbour entry's state before the packet ("no entry"; None: not
    read); ``cached``: whether a connected entry held its cached header (through_device); ``after``: the entry's
    state after the packet (INCOMPLETE or FAILED: no answer came, so the frame it held never left)."""
    head = (f"br_netfilter DNATs at the bridge port and the new destination is behind {bridge} too, so it sends the "
            f"frame back into the bridge")
    where = f" from port {port}" if port else ""
    way = through_device(before, cached)
    if way is None and before is not None:  # connected, and no telling whether its header is cached yet
        return (f"{head}: the ARP entry for {whose} was {before} before the packet; when a packet was sent through "
                f"it since it was written, br_netfilter writes its cached Ethernet header on the frame and the "
                f"bridge switches it straight on{where} (never seen on {bridge} itself), else (no header cached "
                f"yet) it hands the frame to the entry's output on {bridge}, which caches it (seen leaving "
                f"{bridge}): the kernel does not show which"), {"bridged_dnat_via": None, "neigh_before": before}
    if way is None:
        return (f"{head}: switched straight back{where} when the ARP entry for {whose} is resolved (never seen on "
                f"{bridge} itself), else through that entry's output on {bridge} (seen leaving {bridge})"), {}
    if not way:
        return (f"{head}: the ARP entry for {whose} was {before} before the packet, and a packet was sent through it "
                f"since it was written, so br_netfilter writes its cached Ethernet header on the frame and the bridge "
                f"switches it straight on{where} (never seen on {bridge} itself)"), \
            {"bridged_dnat_via": "port", "neigh_before": before}
    if before in CONNECTED:  # nothing was sent through it since it was made: no cached header yet
        return (f"{head}: the ARP entry for {whose} was {before} before the packet, but nothing was sent through it "
                f"since it was made, so it has no cached Ethernet header yet: br_netfilter hands the frame to the "
                f"entry's output on {bridge}, which caches one: the frame leaves by {bridge} itself (a capture on "
                f"{bridge} sees it), and {bridge}'s transmit forwards it on in the bridge as if it came in{where}"), \
            {"bridged_dnat_via": bridge, "neigh_before": before}
    then = "it sends the frame at once, and confirms the entry later" if before in USABLE else \
        "it asks who-has first and holds the frame until the answer"
    state = f"no ARP entry for {whose}" if before == "no entry" else f"the ARP entry for {whose} {before}"
    if before not in USABLE and after in UNANSWERED:  # held in the entry's queue: only the who-has left
        return (f"{head}: with {state} before the packet, br_netfilter hands the frame to that entry's output on "
                f"{bridge} ({then}): no answer came (the entry is {after} after the packet), so the frame never left "
                f"by {bridge} (a capture on {bridge} shows only the who-has requests); answered, it would leave by "
                f"{bridge} itself and {bridge}'s transmit would forward it on in the bridge as if it came in{where}"), \
            {"bridged_dnat_via": bridge, "neigh_before": before}
    return (f"{head}: with {state} before the packet, br_netfilter hands the frame to that entry's "
            f"output on {bridge} ({then}): the frame leaves by {bridge} itself (a capture on {bridge} sees it), and "
            f"{bridge}'s transmit forwards it on in the bridge as if it came in{where}"), \
        {"bridged_dnat_via": bridge, "neigh_before": before}
