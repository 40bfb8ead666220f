"""The bridge row of a frame switched to a pod of the same node says what the bridge's FDB held when the frame came,
not after the packet's answer taught it (root, real lab, tcpdump on a third pod).

Found: with the source pod's ARP entry for the destination usable (sent at once, no who-has) and the destination's
MAC not in cni0's FDB (aged out, 300 s; `bridge fdb del`), the bridge floods the frame to every port: tcpdump on a
third pod of the node sees it. The walk read the FDB after the packet, when the destination's reply had taught it,
and said "FDB: MAC is behind port vethX (learned)". With no ARP entry before the packet, the destination's ARP
answer crosses the bridge before the frame does, and teaches it: that frame is switched by the entry, not flooded.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip_json, ipv4_of, lab_up, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

LAB = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    containers: [{{name: http, ports: [{{containerPort: 8080, protocol: TCP}}]}}]
  - {{name: b, node: n1}}
  - {{name: c, node: n1}}
"""


def _mac(netns: str) -> str:
    [link] = ip_json("link", "show", "eth0", netns=netns)
    return link["address"]


def _fdb(node: str, mac: str) -> list[dict]:
    """cni0's FDB entries for ``mac``, as `bridge -j fdb show` gives them."""
    shown = in_netns(node, "bridge", "-j", "fdb", "show", "br", "cni0", check=True).stdout
    return [e for e in json.loads(shown or "[]") if e.get("mac") == mac]


def _forget(node: str, mac: str) -> None:
    """cni0 forgets ``mac`` (as its ageing would): the next frame to it is flooded unless a frame from it comes first."""
    for entry in _fdb(node, mac):
        subprocess.run(["bridge", "-n", node, "fdb", "del", mac, "dev", entry["ifname"], "master"], check=True,
                       timeout=10)
    assert not _fdb(node, mac)


def _port_row(d: dict, node: str) -> dict:
    [row] = [h for h in d["hops"] if h["netns"] == node and h["kind"] == "bridge" and h["facts"].get("mac")]
    return row


def test_the_bridge_row_says_a_frame_to_an_unlearned_mac_is_flooded(tmp_path):
    lab = unique_lab("tf")
    path = write_topology(tmp_path, LAB.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        node, a, b = f"{lab}-n1", ipv4_of(f"{lab}-a", "eth0"), ipv4_of(f"{lab}-b", "eth0")
        mac_a, mac_b = _mac(f"{lab}-a"), _mac(f"{lab}-b")
        # b knows a, and a knows b, for good: no who-has crosses cni0 before the SYN, nor probes after
        subprocess.run(["ip", "-n", f"{lab}-b", "neigh", "replace", a, "lladdr", mac_a, "dev", "eth0", "nud",
                        "permanent"], check=True, timeout=10)
        subprocess.run(["ip", "-n", f"{lab}-a", "neigh", "replace", b, "lladdr", mac_b, "dev", "eth0", "nud",
                        "permanent"], check=True, timeout=10)
        _forget(node, mac_a)
        with tcpdump(f"{lab}-c", "eth0", f"tcp and dst host {a}") as flooded:
            rc, d = traced(lab, "b", "a", "--port", "8080")
        assert rc == 0 and d["delivered"], d["lost"]
        assert any(f"> {a}.8080: Flags [S]" in line for line in flooded), flooded  # c got a's SYN: flooded
        row = _port_row(d, node)
        assert f"{mac_a} is not in the FDB yet: the bridge floods the frame" in row["decision"], row["decision"]
        assert row["facts"]["fdb_before"] == "no entry", row["facts"]
        # the reply taught it: the next SYN is switched to a's port alone
        with tcpdump(f"{lab}-c", "eth0", f"tcp and dst host {a}") as flooded:
            rc, d = traced(lab, "b", "a", "--port", "8080")
        assert rc == 0 and d["delivered"] and flooded == [], flooded
        row = _port_row(d, node)
        assert f"FDB: {mac_a} is behind port " in row["decision"] and "floods" not in row["decision"], row
        # No ARP entry before the packet: a's answer to b's who-has crosses cni0 first and teaches it
        subprocess.run(["ip", "-n", f"{lab}-b", "neigh", "del", a, "dev", "eth0"], check=True, timeout=10)
        _forget(node, mac_a)
        with tcpdump(f"{lab}-c", "eth0", f"tcp and dst host {a}") as flooded:
            rc, d = traced(lab, "b", "a", "--port", "8080")
        assert rc == 0 and d["delivered"] and flooded == [], flooded
        row = _port_row(d, node)
        assert f"FDB: {mac_a} is behind port " in row["decision"] and "floods" not in row["decision"], row
        assert ", from its ARP answer to this packet's who-has" in row["decision"], row["decision"]


HAIRPIN = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    labels: {{app: web}}
    containers: [{{name: http, ports: [{{containerPort: 8080, protocol: TCP}}]}}]
  - {{name: c, node: n1}}
  - {{name: d, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_a_hairpin_frame_is_switched_by_the_entry_its_own_way_in_taught(tmp_path):
    """a, svc/web's only endpoint, reaches svc/web: n1 DNATs the SYN back to a and cni0 sends it back out a's port
    (hairpin). cni0 held no entry for a's MAC, but learned it from that very SYN as it came in by a's port (source
    learning on ingress, before the forwarding decision): nobody else gets the frame. The control: c's SYN to
    svc/web, DNATed to a while cni0 does not know a, is flooded (d sees it)."""
    lab = unique_lab("tf")
    path = write_topology(tmp_path, HAIRPIN.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        node, a = f"{lab}-n1", ipv4_of(f"{lab}-a", "eth0")
        mac_a = _mac(f"{lab}-a")
        [bridge] = ip_json("addr", "show", "cni0", netns=node)
        gateway = next(i["local"] for i in bridge["addr_info"] if i["family"] == "inet")
        # the pods know the gateway, and n1 knows a, for good: no who-has from a crosses cni0 before the SYN
        for pod in ("a", "c"):
            subprocess.run(["ip", "-n", f"{lab}-{pod}", "neigh", "replace", gateway, "lladdr", bridge["address"],
                            "dev", "eth0", "nud", "permanent"], check=True, timeout=10)
        subprocess.run(["ip", "-n", node, "neigh", "replace", a, "lladdr", mac_a, "dev", "cni0", "nud", "permanent"],
                       check=True, timeout=10)
        syn = f"tcp and dst host {a} and dst port 8080"
        _forget(node, mac_a)
        with tcpdump(f"{lab}-d", "eth0", syn) as flooded:
            rc, d = traced(lab, "c", "svc/web", "--proto", "tcp", "--port", "80")
        assert rc == 0 and d["delivered"], d["lost"]
        assert any(f"> {a}.8080: Flags [S]" in line for line in flooded), flooded  # the control: flooded to d
        assert f"{mac_a} is not in the FDB yet: the bridge floods the frame" in _port_row(d, node)["decision"]
        _forget(node, mac_a)
        with tcpdump(f"{lab}-c", "eth0", syn) as at_c, tcpdump(f"{lab}-d", "eth0", syn) as at_d:
            rc, d = traced(lab, "a", "svc/web", "--proto", "tcp", "--port", "80")
        assert rc == 0 and d["delivered"], d["lost"]
        assert at_c == [] and at_d == [], (at_c, at_d)  # switched to a's port alone
        row = _port_row(d, node)
        assert row["facts"]["hairpin"] and row["facts"]["fdb_before"] == "no entry", row["facts"]
        assert f"FDB: {mac_a} is behind port {row['facts']['port']} (learned, from this packet's own frame, which " \
               f"came into cni0 from {mac_a} by port {row['facts']['port']}" in row["decision"], row["decision"]
        assert "floods" not in row["decision"], row["decision"]
