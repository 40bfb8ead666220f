"""scapy as netlab uses it: its layers only, without the routing tables its import reads.

netlab uses scapy to dissect and word captured frames (``netlab capture``, the rows
of ``netlab trace``), to write pcaps and to build and read one DNS message. It never
sends a packet with scapy, so it never asks scapy for a route. scapy's import still
reads the IPv4 and IPv6 routing tables (scapy/route.py, route6.py: every route
dissected as a netlink message by scapy's own layers, about a third of the CPU of
``import scapy.layers.l2``: ~60 ms of ``netlab trace``'s start). Before netlab's first
import of a scapy layer, :func:`load` switches that reading off (scapy's own
``route_autoload`` settings, made for machines with a big routing table).
"""

from __future__ import annotations


def load() -> None:
    """scapy's configuration, loaded without reading the routing tables at the layers' import. Call it before
    importing any of scapy's layers (after that it changes nothing)."""
    from scapy.config import conf

    conf.route_autoload = False
    conf.route6_autoload = False
