"""What trace's rows say of two ways the kernel sends a packet, checked with tcpdump on a real lab (root).

- A UDP datagram to a port nothing is bound to: the destination's kernel answers with an ICMP port unreachable
  that quotes it, and conntrack relates it to the datagram's flow. tcpdump in the client sees it arrive; the
  trace's reply rows said NOT SEEN on every hop (a TCP reset's rows were seen) (qa-q45 #1).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from contextlib import contextmanager
from typing import Iterator

import pytest

from helpers import in_netns, lab_up, traced, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root


@contextmanager
def tcpdump(netns: str, dev: str, expression: str) -> Iterator[list[str]]:
    """``tcpdump -p -n -l -i DEV EXPRESSION`` in ``netns`` for the body (not promiscuous: the frames the device
    itself sends or takes); its lines land in the list yielded once it stopped. Started when it says it listens."""
    lines: list[str] = []
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "tcpdump", "-p", "-n", "-l", "-i", dev, expression],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        said = b""
        while b"listening on" not in said:  # after "verbose output suppressed ...", maybe in the same read
            ready, _, _ = select.select([proc.stderr], [], [], 30)
            chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
            assert chunk, f"tcpdump did not say it listens: {said!r}"
            said += chunk
        yield lines
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        lines += [line for line in out.decode().splitlines() if line.strip()]


def test_a_refused_datagrams_reply_rows_follow_the_icmp_error_that_came_back(tmp_path):
    lab = unique_lab("tu")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1), f"{lab}.yaml")
    with lab_up(path, lab):
        client, server = f"{lab}-fedora-1", f"{lab}-fedora-2"
        assert ":9999 " not in in_netns(server, "ss", "-Hlun", check=True).stdout
        with tcpdump(client, "eth0", "icmp") as seen:
            rc, d = traced(lab, "fedora-1", "fedora-2", "--proto", "udp", "--port", "9999")
        assert rc == 1 and d["delivered"] and not d["reply_received"], d["lost"]
        assert d["refused"].startswith(f"no socket is bound to udp port 9999 in {server}; its kernel answered with "
                                       "an ICMP port unreachable"), d["refused"]
        # the kernel's own view: the error came back to the client
        assert any("10.244.1.3 > 10.244.0.2: ICMP 10.244.1.3 udp port 9999 unreachable" in line for line in seen), seen
        rows = [h for h in d["reply_hops"] if h["observe"] is not None]
        assert rows and all(h["seen"] for h in rows), [(h["index"], h["netns"], h["device"], h["seen"]) for h in rows]
        last = d["reply_hops"][-1]
        assert (last["netns"], last["kind"]) == (client, "deliver")
        assert "ICMP 10.244.1.3 udp port 9999 unreachable" in last["evidence"], last["evidence"]
        assert last["facts"]["icmp_error"] == "destination unreachable: port unreachable"
        assert d["reply_lost"] is None  # it was no lost reply: the error is the answer, and it arrived

