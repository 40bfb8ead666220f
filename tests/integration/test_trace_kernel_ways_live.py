"""What trace's rows say of two ways the kernel sends a packet, checked with tcpdump on a real lab (root).

- A UDP datagram to a port nothing is bound to: the destination's kernel answers with an ICMP port unreachable
  that quotes it, and conntrack relates it to the datagram's flow. tcpdump in the client sees it arrive; the
  trace's reply rows said NOT SEEN on every hop (a TCP reset's rows were seen) (qa-q45 #1).
- A pod's packet to its Service, DNATed by br_netfilter at cni0's port to a pod behind cni0 too (bridged DNAT):
  with the endpoint's ARP entry missing, the kernel ARPs on cni0 and sends the frame out through cni0, where
  tcpdump -p sees it; with a connected entry the bridge switches it straight on and cni0 sees nothing. The bridge
  row said "never seen on cni0 itself" in both cases (qa-q45 #2).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from helpers import in_netns, ip_json, ipv4_of, lab_up, traced, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root

SERVICE_LAB = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - name: a
    node: n1
    labels: {{app: web}}
    containers: [{{name: http, ports: [{{containerPort: 8080, protocol: TCP}}]}}]
  - {{name: b, node: n1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
"""


@contextmanager
def tcpdump(netns: str, dev: str, expression: str, settle: float = 0.0) -> Iterator[list[str]]:
    """``tcpdump -p -n -l --immediate-mode -i DEV EXPRESSION`` in ``netns`` for the body (not promiscuous: the
    frames the device itself sends or takes), started once it says it listens; its lines land in the list yielded
    once it stopped, ``settle`` seconds after the body (what comes late: a loop's time exceeded). --immediate-mode:
    without it the capture's buffer holds packets for up to a second, and one still there when tcpdump stops is
    lost."""
    lines: list[str] = []
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "tcpdump", "-p", "-n", "-l", "--immediate-mode", "-i",
                             dev, expression], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        said = b""
        while b"listening on" not in said:  # after "verbose output suppressed ...", maybe in the same read
            ready, _, _ = select.select([proc.stderr], [], [], 30)
            chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
            assert chunk, f"tcpdump did not say it listens: {said!r}"
            said += chunk
        yield lines
        time.sleep(settle)
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


def _bridge_row(d: dict, node: str) -> dict:
    [row] = [h for h in d["hops"] if (h["netns"], h["device"], h["kind"]) == (node, "cni0", "bridge")]
    return row


def test_a_bridged_dnat_row_says_whether_the_frame_went_out_through_cni0(tmp_path):
    lab = unique_lab("tu")
    path = write_topology(tmp_path, SERVICE_LAB.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        node = f"{lab}-n1"
        a = ipv4_of(f"{lab}-a", "eth0")
        # none yet on a fresh lab (as if it had expired): a learner's `ip neigh del`, which may find nothing
        subprocess.run(["ip", "-n", node, "neigh", "del", a, "dev", "cni0"], capture_output=True, timeout=10)
        assert not [n for n in ip_json("neigh", "show", a, "dev", "cni0", netns=node) if "lladdr" in n]
        with tcpdump(node, "cni0", f"arp or (tcp and dst host {a})") as seen:
            rc, d = traced(lab, "b", "svc/web", "--port", "80")
        assert rc == 0 and d["delivered"], d["lost"]
        assert any(f"ARP, Request who-has {a} tell" in line for line in seen), seen
        assert any(f"> {a}.8080: Flags [S]" in line for line in seen), seen  # the SYN left by cni0 itself
        row = _bridge_row(d, node)
        assert row["seen"] is True and row["observe"]["direction"] == "out", row
        assert row["facts"]["bridged_dnat_via"] == "cni0" and row["facts"]["neigh_before"] == "no entry", row["facts"]
        assert "never seen on cni0" not in row["decision"] and "the frame leaves by cni0 itself" in row["decision"]
        # A connected entry (made permanent, so it stays so; its header cached by the packet above): br_netfilter
        # writes that header on the frame and the bridge switches it on from the port. cni0 sees none of it.
        [entry] = ip_json("neigh", "show", a, "dev", "cni0", netns=node)
        subprocess.run(["ip", "-n", node, "neigh", "replace", a, "lladdr", entry["lladdr"], "dev", "cni0", "nud",
                        "permanent"], check=True, timeout=10)
        with tcpdump(node, "cni0", f"arp or (tcp and dst host {a})") as seen:
            rc, d = traced(lab, "b", "svc/web", "--port", "80")
        assert rc == 0 and d["delivered"], d["lost"]
        assert seen == [], seen
        assert d["hops"][-1]["seen"] is True  # the SYN did arrive at a
        row = _bridge_row(d, node)
        assert row["seen"] is None and row["observe"] is None, row
        # used before it was rewritten (a rewrite keeps a cached header; one made by hand and never used has none):
        # the entry's ages cannot tell, so the row says both ways (qa-q54 #1), unseen on cni0 as tcpdump says
        assert "bridged_dnat_via" not in row["facts"] and row["facts"]["neigh_before"] == "PERMANENT", row["facts"]
        assert "(never seen on cni0 itself), else (no header cached yet)" in row["decision"], row["decision"]
        assert "(seen leaving cni0): the kernel does not show which" in row["decision"], row["decision"]


def test_a_fresh_static_entry_has_no_cached_header_so_the_bridged_dnat_frame_leaves_by_cni0(tmp_path):
    """`ip neigh add ... nud permanent` makes a connected entry without the cached Ethernet header br_netfilter
    writes on a frame it switches straight on: the first packet sent through the entry builds it, through the
    entry's output on cni0, where tcpdump sees the frame. The row said "switched straight on ... never seen on
    cni0" (qa-q54 #1); the entry's ages (`ip -s neigh`: used as old as updated, never used since it was made) say
    it has none yet."""
    lab = unique_lab("tu")
    path = write_topology(tmp_path, SERVICE_LAB.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        node = f"{lab}-n1"
        a = ipv4_of(f"{lab}-a", "eth0")
        [link] = ip_json("link", "show", "eth0", netns=f"{lab}-a")
        subprocess.run(["ip", "-n", node, "neigh", "del", a, "dev", "cni0"], capture_output=True, timeout=10)
        subprocess.run(["ip", "-n", node, "neigh", "add", a, "lladdr", link["address"], "dev", "cni0", "nud",
                        "permanent"], check=True, timeout=10)
        with tcpdump(node, "cni0", f"arp or (tcp and dst host {a})") as seen:
            rc, d = traced(lab, "b", "svc/web", "--port", "80")
        assert rc == 0 and d["delivered"], d["lost"]
        assert any(f"> {a}.8080: Flags [S]" in line for line in seen), seen  # the SYN left by cni0 itself
        row = _bridge_row(d, node)
        assert row["facts"]["bridged_dnat_via"] == "cni0" and row["facts"]["neigh_before"] == "PERMANENT", row
        assert row["seen"] is True and "never seen on cni0" not in row["decision"], row
        assert "nothing was sent through it since it was made, so it has no cached Ethernet header yet" in \
            row["decision"], row["decision"]
        # now used (its header cached by that packet): switched straight on, cni0 sees nothing
        with tcpdump(node, "cni0", f"arp or (tcp and dst host {a})") as seen:
            rc, d = traced(lab, "b", "svc/web", "--port", "80")
        assert rc == 0 and d["delivered"] and seen == [], seen
        row = _bridge_row(d, node)
        assert row["facts"]["bridged_dnat_via"] == "port" and row["seen"] is None, row
