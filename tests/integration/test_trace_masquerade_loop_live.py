"""A routing loop through nodes that masquerade, against the real packets (root).

3-node vxlan lab, pod a on n1 pings c on n3; n1 routes c's address via n2, n2 via n3, n3 via n1. tcpdump -v on the
nodes' eth0: n2 masquerades the pod's packet to 192.168.122.3, n1 the one back from n3 to 192.168.122.2, n2 that to
192.168.122.3 again, each with a new echo id (each lap's packet is a new flow to conntrack); n1 gets it from n3
with TTL 1 and drops it (IpInHdrErrors). Its time exceeded for 192.168.122.3 is held back: n1, which routes the
packet back out of the device it came in by to a router on 192.168.122.3's own link, sent 192.168.122.3 ICMP
redirects on the laps before, and the per-host ICMP rate limit holds the error (IcmpOutRateLimitHost); nothing
comes back to the pod. trace printed 121 rows n1 → n2 → n3 → n1, a MASQUERADE row each pass, and no loop.
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, underlay: {{cidr: 192.168.122.0/24, mtu: 1500}}}}
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
pods:
  - {{name: a, node: n1}}
  - {{name: c, node: n3}}
"""
NEXT = {"n1": "192.168.122.3", "n2": "192.168.122.4", "n3": "192.168.122.2"}


def nstat(ns: str) -> dict[str, int]:
    out = in_netns(ns, "nstat", "-az", check=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)", out, re.M)}


def test_a_loop_through_masquerading_nodes_is_said_once_where_its_ttl_runs_out(tmp_path):
    lab = unique_lab("trm")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        c = in_netns(f"{lab}-c", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout.split()[3].split("/")[0]
        for node, via in NEXT.items():
            in_netns(f"{lab}-{node}", "ip", "route", "add", f"{c}/32", "via", via, "dev", "eth0", check=True)
        n1 = f"{lab}-n1"
        before = nstat(n1)
        with tcpdump(n1, "eth0", "icmp", settle=0.5) as at_n1, tcpdump(f"{lab}-a", "eth0", "icmp", settle=0.5) as back:
            in_netns(f"{lab}-a", "ping", "-c1", "-W2", c, timeout=10)
        after = nstat(n1)
        # the kernel: n1 drops it (TTL 1), sends no time exceeded, the rate limit held it; the pod hears nothing
        assert after["IpInHdrErrors"] - before["IpInHdrErrors"] == 1, (before, after)
        assert after["IcmpOutRateLimitHost"] - before["IcmpOutRateLimitHost"] == 1, (before, after)
        assert after["IcmpOutRedirects"] > before["IcmpOutRedirects"], (before, after)
        assert not any("exceeded" in line for line in at_n1 + back), (at_n1, back)
        ids = {m.group(1) for line in at_n1 if (m := re.search(r"192\.168\.122\.3 > \S+: ICMP echo request, id (\d+)",
                                                                line))}
        assert len(ids) > 5, at_n1  # a new echo id each lap: the packet never comes back as it was
        rc, d = traced(lab, "a", "c")
        hops = d["hops"]
        loop = hops[-1]
        assert rc == 1 and loop["kind"] == "loop" and len(hops) < 50, [(h["netns"], h["kind"]) for h in hops]
        assert loop["facts"]["loop"] == [f"{lab}-n2", f"{lab}-n3", n1], loop["facts"]
        assert (loop["netns"], loop["device"]) == (n1, "eth0") and loop["facts"]["ttl_expires"] == n1, loop
        assert loop["facts"].get("time_exceeded_held") is True and not loop["facts"].get("time_exceeded_from")
        assert "none comes back" in loop["problem"] and "IcmpOutRateLimitHost" in loop["problem"], loop["problem"]
        # blamed on n1's extra route, and said where it was lost: the loop
        lost = d["lost"]
        assert lost["netns"] == n1 and f"was lost in {n1} eth0: a loop: " in lost["reason"], lost
        assert lost["fix"].startswith(f"ip -n {n1} route del {c}/32 via 192.168.122.3 dev eth0"), lost["fix"]
        assert not any("exceeded" in e["text"] for e in d["icmp_errors"]), d["icmp_errors"]
