"""`capture -o json`'s frames say the frame's own headers, as tcpdump -e shows it (QA out59 1): on a node's eth0, a
VXLAN packet's `src_mac`/`dst_mac`, `ttl` and `flow` were its inner frame's (flannel.1's MACs, the pod's TTL and
flow), eth0's own MACs in `summary` alone. The inner frame's are under `vxlan`'s `inner` now (docs/json.md)."""

from __future__ import annotations

import json

import pytest
from capture_cli import NoKernel, fake_capture
from cli_inprocess import run_cli

from netlab.trace.capture import Frame

ETH0 = ("52:54:00:00:00:01", "52:54:00:00:00:02")  # the nodes' eth0s
FLANNEL = ("aa:aa:aa:00:00:01", "aa:aa:aa:00:00:02")  # their flannel.1s


def _frames() -> list[bytes]:
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    inner = Ether(src=FLANNEL[0], dst=FLANNEL[1]) / IP(src="10.244.0.2", dst="10.244.1.3", ttl=63) / ICMP(id=4242)
    vxlan = Ether(src=ETH0[0], dst=ETH0[1]) / IP(src="192.168.122.215", dst="192.168.122.7", ttl=64) / \
        UDP(sport=34785, dport=8472) / VXLAN(vni=1, flags=0x08) / inner  # Linux's header
    plain = Ether(src=ETH0[0], dst=ETH0[1]) / IP(src="10.244.0.2", dst="10.244.1.3", ttl=62) / ICMP(id=4242)
    return [bytes(vxlan), bytes(plain)]


@pytest.fixture
def frames_json(monkeypatch):
    class _Capture(NoKernel):
        ended = None

        def __init__(self, namespaces, iface, bpf=None):
            pass

    def live(capture, count, timeout, keep, note=None):
        for n, data in enumerate(_frames()):
            keep(Frame("lab-a", "eth0", "out", 1000.0 + n, data, len(data)))

    fake_capture(monkeypatch, _Capture, live)
    res = run_cli("capture", "--lab", "lab", "a:eth0", "-c", "2", "-o", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["frames"]


def test_a_vxlan_frames_own_macs_ttl_and_flow_are_its_top_level_and_its_inner_frames_are_under_vxlan(frames_json):
    vx = frames_json[0]
    assert (vx["src_mac"], vx["dst_mac"]) == ETH0
    assert vx["summary"].startswith(f"{ETH0[0]} > {ETH0[1]}, ")  # tcpdump -e's first MACs, as summary begins
    assert vx["ttl"] == 64 and vx["flow"] == "192.168.122.215:34785 → 192.168.122.7:8472 udp"
    assert vx["vxlan"] == {"src": "192.168.122.215", "dst": "192.168.122.7", "sport": 34785, "dport": 8472, "vni": 1,
                           "ttl": 64, "inner": {"src_mac": FLANNEL[0], "dst_mac": FLANNEL[1], "ttl": 63,
                                                "flow": "10.244.0.2 → 10.244.1.3 icmp id 4242"}}
    assert f"| inner {FLANNEL[0]} > {FLANNEL[1]}, " in vx["summary"]
    assert list(vx) == ["ts", "direction", "length", "summary", "src_mac", "dst_mac", "flow", "vxlan", "ttl", "dns"]


def test_a_plain_frame_is_as_before(frames_json):
    plain = frames_json[1]
    assert (plain["src_mac"], plain["dst_mac"], plain["ttl"], plain["vxlan"]) == (*ETH0, 62, None)
    assert plain["flow"] == "10.244.0.2 → 10.244.1.3 icmp id 4242"


def test_the_doc_says_the_frames_own_headers_and_where_the_inner_ones_went():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "json.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `capture` |"))
    assert "as tcpdump -e shows the frame" in row and "`inner`" in row
    changed = [line for line in doc.split("## Deprecated keys", 1)[1].split("\n## ", 1)[0].splitlines()
               if line.startswith("| capture | `frames[]` of a VXLAN packet |")]
    assert [line.split(" | ")[2] for line in changed] == ["`src_mac`, `dst_mac`", "`ttl`", "`flow`"]
