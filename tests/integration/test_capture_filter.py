"""`netlab capture NAME:IFACE EXPRESSION`: tcpdump's filter, compiled by libpcap and run by the kernel on the
capture's socket, on a real lab while two kinds of traffic cross the interface (QA qt defect 7: on a busy
interface `-c N` was eaten by frames of other kinds). One small lab of its own, always taken down."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import netlab

pytestmark = pytest.mark.root

A, B = "10.244.0.2", "10.244.0.3"
# UDP datagrams to a port nothing serves, five a second, as long as the test needs them
UDP_SENDER = (f"import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"for _ in range(300):\n    s.sendto(b'hello', ('{B}', 9999)); time.sleep(0.2)\n")


def _lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


def test_a_filter_keeps_only_the_frames_it_matches(labs):
    lab = labs.name("cf")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\n"
            f"pods: [{{name: a, node: n1, ip: {A}}}, {{name: b, node: n1, ip: {B}}}]\n")
    ns = f"{lab}-a"
    pinger = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-q", "-i", "0.2", "-w", "60", B],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sender = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", UDP_SENDER],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        every = _lines(netlab("capture", "--lab", lab, "a:eth0", "-c", "12", "--timeout", "20", timeout=60))
        udp = _lines(netlab("capture", "--lab", lab, "a:eth0", "-c", "6", "--timeout", "20", "udp", timeout=60))
        echo = _lines(netlab("capture", "--lab", lab, "a:eth0", "-c", "4", "--timeout", "20",
                             "icmp[icmptype] == icmp-echo", timeout=60))
        js = json.loads(netlab("capture", "--lab", lab, "a:eth0", "-c", "3", "--timeout", "20", "-o", "json",
                               "dst", "host", B, "and", "udp", timeout=60).stdout)
        bad = netlab("capture", "--lab", lab, "a:eth0", "-c", "1", "--timeout", "20", "udp prot 53", check=False,
                     timeout=60)
    finally:
        for proc in (pinger, sender):
            proc.terminate()
            proc.wait(timeout=15)
    # Both kinds crossed a's eth0 while the captures ran (and B's ICMP port unreachable answers).
    assert any(": ICMP echo request, id " in line for line in every), every
    assert any(f" > {B}.9999: UDP, length 5" in line for line in every), every
    assert len(udp) == 6 and all(f"IP (ttl 64) {A}." in line and f" > {B}.9999: UDP, length 5" in line
                                 for line in udp), udp
    assert len(echo) == 4 and all(f"IP (ttl 64) {A} > {B}: ICMP echo request, id " in line for line in echo), echo
    assert js["filter"] == f"dst host {B} and udp" and len(js["frames"]) == 3, js
    assert all(f["summary"].endswith(f" > {B}.9999: UDP, length 5") for f in js["frames"]), js
    # An expression libpcap cannot compile: one line, exit 2, nothing captured (no "capturing on").
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "netlab: capture filter 'udp prot 53': can't parse filter expression: syntax error\n"
