"""The kernel's connected routes of the lab's addresses changed or deleted by hand (root): status names them, up
puts them back as the kernel made them, and traffic flows again (QA: observe.py left every proto kernel route out).

`ip -n N1 route replace 10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1 mtu 1000` on a node made
`ping -M do -s 1200` from a pod of the other node to one of its pods fail (message too long, mtu=1000), and
`ip -n A route del 10.244.0.0/24` cut pod a from its node's subnet, while status said all as planned and up
found nothing to change.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, ip, ip_json, netlab, pod_pair_lab

pytestmark = pytest.mark.root


def _connected(netns: str, dev: str) -> list[dict]:
    return [r for r in ip_json("route", "show", "table", "main", "proto", "kernel", "dev", dev, netns=netns)]


def test_connected_routes_changed_or_deleted_are_drift_and_up_puts_them_back(tmp_path):
    with pod_pair_lab(tmp_path, "kr") as (name, path):
        n1, a, b = f"{name}-n1", f"{name}-a", f"{name}-b"
        [cni0] = _connected(n1, "cni0")
        [eth0] = _connected(a, "eth0")
        pod_a = next(x["local"] for x in ip_json("-4", "addr", "show", "dev", "eth0", netns=a)[0]["addr_info"])
        assert "metrics" not in cni0 and cni0["scope"] == "link", cni0
        ping = ("ping", "-M", "do", "-s", "1200", "-c", "2", "-W", "2", pod_a)
        assert in_netns(b, *ping).returncode == 0

        ip("route", "replace", cni0["dst"], "dev", "cni0", "proto", "kernel", "scope", "link", "src", cni0["prefsrc"],
           "mtu", "1000", netns=n1)
        ip("route", "del", eth0["dst"], netns=a)
        assert [r.get("metrics") for r in _connected(n1, "cni0")] == [[{"mtu": 1000}]]
        assert _connected(a, "eth0") == []
        broken = in_netns(b, *ping)
        assert broken.returncode != 0 and "mtu=1000" in broken.stdout + broken.stderr, broken

        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 1, st.stdout
        assert (f"different: route {cni0['dst']} dev cni0 proto kernel scope link src {cni0['prefsrc']} in {n1} "
                f"(mtu 1000 (want none))") in st.stdout, st.stdout
        assert (f"missing: route {eth0['dst']} dev eth0 proto kernel scope link src {eth0['prefsrc']} in {a}"
                in st.stdout), st.stdout

        # b learned the path MTU 1000 to pod a from n1's "fragmentation needed" while n1's route had it: a route
        # exception of b's, which the kernel keeps net.ipv4.route.mtu_expires (600 s) after the route's repair
        [cached] = ip_json("route", "get", pod_a, netns=b)
        assert cached.get("metrics") == [{"mtu": 1000}], cached
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert out["changed"], out
        assert _connected(n1, "cni0") == [cni0]
        assert _connected(a, "eth0") == [eth0]
        # up flushed what the lab's namespaces learned: the full size gets through at once (lab/pmtu.py)
        assert "metrics" not in ip_json("route", "get", pod_a, netns=b)[0]
        assert in_netns(b, *ping).returncode == 0
        assert any("flushed the path MTUs learned" in line for line in out["fixed"]), out
        assert netlab("status", "--lab", name, check=False).returncode == 0


def test_a_path_mtu_learned_while_a_link_mtu_was_wrong_is_forgotten_when_up_repairs_it(tmp_path):
    """n1's veth to pod a set to mtu 1000: b learns path MTU 1000 to a (a route exception, 600 s); up sets the
    veth's MTU back and flushes what the namespaces learned, and `ping -M do -s 1400` gets through at once."""
    with pod_pair_lab(tmp_path, "km") as (name, path):
        n1, a, b = f"{name}-n1", f"{name}-a", f"{name}-b"
        pod_a = next(x["local"] for x in ip_json("-4", "addr", "show", "dev", "eth0", netns=a)[0]["addr_info"])
        ping = ("ping", "-M", "do", "-s", "1400", "-c", "2", "-W", "2", pod_a)
        assert in_netns(b, *ping).returncode == 0
        [veth] = [link["ifname"] for link in ip_json("link", "show", "master", "cni0", netns=n1)]
        ip("link", "set", veth, "mtu", "1000", netns=n1)
        broken = in_netns(b, *ping)
        assert broken.returncode != 0 and "mtu=1000" in broken.stdout + broken.stderr, broken
        assert ip_json("route", "get", pod_a, netns=b)[0].get("metrics") == [{"mtu": 1000}]
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert any("mtu" in line and veth in line for line in out["fixed"]), out
        assert "metrics" not in ip_json("route", "get", pod_a, netns=b)[0]
        assert in_netns(b, *ping).returncode == 0
        assert any("flushed the path MTUs learned" in line for line in out["fixed"]), out
        assert netlab("status", "--lab", name, check=False).returncode == 0
