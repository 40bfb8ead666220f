"""An address of the lab added again by hand with ``noprefixroute`` or a finite lifetime (root): status names it, up
mends it, and traffic flows (QA 62k #2, #3: both were "as planned").

* `ip -n N1 addr del 10.244.0.1/24 dev cni0; ip -n N1 addr add 10.244.0.1/24 brd + dev cni0 noprefixroute`: the
  connected route to n1's pods is gone (pod b on n2 cannot reach pod a on n1);
* the same on pod a's eth0 (its routes through the gateway went with the address): up failed every time ("replace
  route 10.244.0.0/16 ... network unreachable; rolled back", exit 4);
* `ip -n A addr del 10.244.0.2/24 dev eth0; ip -n A addr add 10.244.0.2/24 brd + dev eth0 valid_lft 40
  preferred_lft 40` and a's two routes added back: the kernel deletes the address 40 s later. up sets it forever in
  place (its routes stay).
"""

from __future__ import annotations


import time

import pytest

from helpers import in_netns, ip, ip_json, lab_up, status_details, unique_lab, up_repairs, write_topology

pytestmark = pytest.mark.root

TOPO = """name: {name}
network: {{mode: vxlan}}
nodes:
  - {{name: n1, ip: 192.168.122.2, podCIDR: 10.244.0.0/24}}
  - {{name: n2, ip: 192.168.122.3, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - {{name: b, node: n2, ip: 10.244.1.2}}
"""

FOREVER = 4294967295  # ip -j's valid_life_time / preferred_life_time of `forever`


def _addr(netns: str, dev: str) -> dict:
    [info] = [x for x in ip_json("-4", "addr", "show", "dev", dev, netns=netns)[0]["addr_info"]]
    return info


def _routes(netns: str) -> list[str]:
    return sorted(r["dst"] for r in ip_json("route", "show", "table", "main", netns=netns))


def _ping(netns: str, dst: str) -> bool:
    return in_netns(netns, "ping", "-c", "1", "-W", "2", dst).returncode == 0




def test_noprefixroute_and_a_finite_lifetime_are_drift_and_up_mends_them(tmp_path):
    name = unique_lab("fka")
    path = write_topology(tmp_path, TOPO.format(name=name))
    n1, a, b = (f"{name}-{x}" for x in ("n1", "a", "b"))
    with lab_up(path, name, in_process=True):
        cni0, eth0, pod_routes = _addr(n1, "cni0"), _addr(a, "eth0"), _routes(a)
        assert pod_routes == ["10.244.0.0/16", "10.244.0.0/24", "default"], pod_routes
        assert (eth0["valid_life_time"], "noprefixroute" in eth0) == (FOREVER, False)
        assert _ping(b, "10.244.0.2")

        # 1. cni0's address without its connected route: n1 reaches none of its pods
        ip("addr", "del", "10.244.0.1/24", "dev", "cni0", netns=n1)
        ip("addr", "add", "10.244.0.1/24", "brd", "+", "dev", "cni0", "noprefixroute", netns=n1)
        assert "10.244.0.0/24" not in _routes(n1) and not _ping(b, "10.244.0.2")
        code, details = status_details(name)
        assert code == 1 and [(d["state"], d["object"]) for d in details] == [
            ("different", f"address 10.244.0.1/24 on cni0 in {n1}")], details
        assert "noprefixroute" in details[0]["detail"], details
        up_repairs(path, name)
        assert _addr(n1, "cni0") == cni0 and "10.244.0.0/24" in _routes(n1) and _ping(b, "10.244.0.2")

        # 2. a pod's: its routes through the gateway went with the address, and need its connected route back
        ip("addr", "del", "10.244.0.2/24", "dev", "eth0", netns=a)
        ip("addr", "add", "10.244.0.2/24", "brd", "+", "dev", "eth0", "noprefixroute", netns=a)
        assert _routes(a) == [] and not _ping(b, "10.244.0.2")
        code, details = status_details(name)
        assert code == 1 and sorted((d["state"], d["resource"]["kind"]) for d in details) == [
            ("different", "address"), ("missing", "route"), ("missing", "route")], details
        fixed = up_repairs(path, name)
        assert fixed.index(f"add address 10.244.0.2/24 on eth0 in {a}") < fixed.index(
            f"replace route 10.244.0.0/16 via 10.244.0.1 dev eth0 in {a}"), fixed
        assert _addr(a, "eth0") == eth0 and _routes(a) == pod_routes and _ping(b, "10.244.0.2")

        # 3. a finite lifetime (the routes added back by hand): set forever in place, the routes kept
        ip("addr", "del", "10.244.0.2/24", "dev", "eth0", netns=a)
        ip("addr", "add", "10.244.0.2/24", "brd", "+", "dev", "eth0", "valid_lft", "40", "preferred_lft", "40",
           netns=a)
        ip("route", "add", "10.244.0.0/16", "via", "10.244.0.1", "dev", "eth0", netns=a)
        ip("route", "add", "default", "via", "10.244.0.1", "dev", "eth0", netns=a)
        assert _addr(a, "eth0")["valid_life_time"] <= 40 and _routes(a) == pod_routes and _ping(b, "10.244.0.2")
        code, details = status_details(name)
        assert code == 1 and [(d["state"], d["object"]) for d in details] == [
            ("different", f"address 10.244.0.2/24 on eth0 in {a}")], details
        assert "valid_lft" in details[0]["detail"] and "want forever" in details[0]["detail"], details
        # The kernel's seconds left count down: the words stay the same from one status to the next (they said
        # "valid_lft 38sec", then "37sec"), the seconds are the JSON's
        time.sleep(1.1)
        code, later = status_details(name)
        assert code == 1 and [d["detail"] for d in later] == [d["detail"] for d in details], (details, later)
        assert later[0]["valid_lft_s"] < details[0]["valid_lft_s"] <= 40, (details, later)
        assert up_repairs(path, name) == [f"replace address 10.244.0.2/24 on eth0 in {a}"]
        assert _addr(a, "eth0") == eth0 and _routes(a) == pod_routes and _ping(b, "10.244.0.2")
