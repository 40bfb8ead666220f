"""Service probes' source ports (probe/sockets.py): one process takes them in turn, never the same one twice
before the range wraps, even once the last socket is closed: two Service flows of one pod from one port towards
two addresses of one endpoint would share a reply tuple in conntrack, which then moves the second to a port of
its own choosing, where a later direct flow meets it."""

from __future__ import annotations

import socket

from netlab.probe import sockets


def test_service_ports_are_taken_in_turn_not_drawn_again():
    lo, hi = sockets.SERVICE_PORTS
    span = hi - lo + 1
    got = []
    for _ in range(40):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            sockets.bind_service_port(s)
            got.append(s.getsockname()[1])
    offsets = [(port - lo) % span for port in got]
    steps = [(b - a) % span for a, b in zip(offsets, offsets[1:])]
    assert all(lo <= p <= hi for p in got) and len(set(got)) == len(got), got
    assert all(1 <= step <= 3 for step in steps), steps  # the next free one (another process may hold one)
