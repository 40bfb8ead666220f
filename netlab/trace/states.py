"""Where a packet is while :class:`~netlab.trace.walk.Walker` follows it: the walk's three states."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalOut:
    """A socket in ``netns`` sent the packet: OUTPUT (a node reaching a Service is DNATed here), then routing."""

    netns: str


@dataclass(frozen=True)
class FrameIn:
    """A frame arrives on ``dev`` in ``netns``, addressed to ``mac``: a bridge port, the wrong host, or up to IP."""

    netns: str
    dev: str
    mac: str
    came: str = ""  # where it came from, when not by the device's veth peer (a macvlan sibling)


@dataclass(frozen=True)
class IpIn:
    """The IP layer of ``netns`` got the packet from ``dev``: PREROUTING (DNAT), then routing.

    ``came`` says where the frame came from. ``bridge_mac`` is set when ``dev``
    is a bridge that handed the frame up because that MAC is its own (``port``:
    the bridge port it came in on); the bridge's row is written here, once this
    namespace's DNAT and route are known.
    """

    netns: str
    dev: str
    came: str = ""
    bridge_mac: str | None = None
    port: str | None = None


State = LocalOut | FrameIn | IpIn
