#!/usr/bin/env python3
"""Benchmark ``netlab up --watch``: how long a deleted route stays gone.

A lab of two nodes and ``--pods`` pods per node is brought up and watched
(``netlab up -t FILE --watch`` in a process of its own). Each round deletes
the route to the other node's pod CIDR in node-1 and waits, on an rtnetlink
socket of that namespace, for the route to come back (no polling: the time is
the kernel's notification). Beside it, measured in the same run on the same
lab with the watcher stopped, the baseline a user has without the watcher:
`netlab up -t FILE` run right after the deletion (a new process each time:
interpreter start, the doctor's checks, the whole lab read and compared).

Usage (root): sudo .venv/bin/python scripts/bench_watch.py [--pods 2] [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from netlab.kernel import events, netlink, rtnl, rtnl_parse  # noqa: E402
from netlab.kernel import netns as nsmod  # noqa: E402

NETLAB = [sys.executable, "-m", "netlab"]
ROUTE = "10.244.1.0/24"


def topology(name: str, pods: int) -> str:
    lines = [f"name: {name}", "nodes:", "  - name: node-1", "  - name: node-2", "pods:"]
    for node in (1, 2):
        lines += [f"  - {{name: p{node}-{i}, node: node-{node}}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def route_socket(netns: str) -> netlink.Conn:
    with nsmod.entered(netns):
        import socket

        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, netlink.NETLINK_ROUTE)
        sock.bind((0, 1 << (events.RTNLGRP_IPV4_ROUTE - 1)))
    return netlink.Conn(sock=sock)


def wait_route_back(conn: netlink.Conn, timeout: float = 30.0) -> float:
    """Seconds until the kernel announces the route again."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not select.select([conn.sock], [], [], timeout)[0]:
            break
        for m in netlink.split(conn.sock.recv(1 << 16)):
            if m.mtype == rtnl.RTM_NEWROUTE:
                r = rtnl_parse.parse_route(m)
                if f"{r.dst}/{r.dst_len}" == ROUTE:
                    return time.monotonic() - t0
    raise TimeoutError("the route did not come back")


def delete_route(netns: str) -> None:
    subprocess.run(["ip", "-n", netns, "route", "del", ROUTE], check=True)  # the break, as a learner makes it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=2, help="pods per node")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    name = f"bx{uuid.uuid4().hex[:6]}"
    tmp = tempfile.mkdtemp(prefix="bench-watch-")
    path = os.path.join(tmp, "lab.yaml")
    with open(path, "w") as fh:
        fh.write(topology(name, args.pods))
    node = f"{name}-node-1"
    subprocess.run(NETLAB + ["up", "-t", path], check=True, capture_output=True)
    watcher = None
    try:
        conn = route_socket(node)
        watcher = subprocess.Popen(NETLAB + ["up", "-t", path, "--watch"], stdout=subprocess.PIPE, text=True)
        assert watcher.stdout is not None
        watcher.stdout.readline()  # "... watching": it listens from now on
        watched = []
        for _ in range(args.rounds):
            delete_route(node)
            watched.append(wait_route_back(conn))
            time.sleep(0.3)
        watcher.send_signal(signal.SIGINT)
        watcher.wait(30)
        watcher = None
        by_hand = []
        for _ in range(args.rounds):
            delete_route(node)
            t0 = time.monotonic()
            subprocess.run(NETLAB + ["up", "-t", path], check=True, capture_output=True)
            by_hand.append(time.monotonic() - t0)
        conn.close()
        print(f"lab {name}: 2 nodes, {2 * args.pods} pods; route {ROUTE} deleted in node-1, {args.rounds} rounds")
        for label, xs in (("up --watch (notification to route back)", watched),
                          ("baseline: netlab up after the deletion", by_hand)):
            print(f"  {label:45s} median {statistics.median(xs) * 1000:7.1f} ms   "
                  f"max {max(xs) * 1000:7.1f} ms")
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        subprocess.run(NETLAB + ["down", "--lab", name], capture_output=True)
        os.unlink(path)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
