"""Connected routes are each device's own, and an address's metric is the address's (root).

Review items: observe.py kept one kernel connected route per (table, dst, tos, metric), so another device's route of
the lab's prefix (an address added by hand on a veth of the node's, listed first once cni0 bounced) made the lab's
route look "different" (dev, src) and up's replace took that one's place; a hand-made proto kernel route through
another device was not seen at all. And `ip addr add 10.244.0.1/24 dev cni0 metric 50` made the kernel's connected
route metric 50: status said the metric-0 route "missing" and up added one beside it, the address left as it was.
"""

from __future__ import annotations

import pytest

from helpers import in_netns, ip_json, ipv4_of, module_lab, netlab, sh

pytestmark = pytest.mark.root


def topology(name: str) -> str:
    return f"name: {name}\nnodes: [{{name: n1}}, {{name: n2}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n2}}]\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with module_lab(tmp_path_factory, "kd", topology) as made:
        yield made


def connected(netns: str, dst: str) -> list[dict]:
    return [r for r in ip_json("route", "show", "table", "main", "proto", "kernel", netns=netns) if r["dst"] == dst]


def bounce(netns: str, dev: str) -> None:
    """Down and up: the kernel makes the device's connected route again, after the prefix's others."""
    sh("ip", "-n", netns, "link", "set", dev, "down")
    sh("ip", "-n", netns, "link", "set", dev, "up")


def status_lines(name: str) -> list[str]:
    st = netlab("status", "--lab", name, check=False)
    return [line.strip() for line in st.stdout.splitlines() if line.startswith("  ")]


def test_another_devices_route_of_the_prefix_listed_first_is_not_the_labs_differing(lab):
    name, path = lab
    n1 = f"{name}-n1"
    [mine] = connected(n1, "10.244.0.0/24")
    sh("ip", "-n", n1, "link", "add", "hand0", "type", "veth", "peer", "name", "hand1")
    sh("ip", "-n", n1, "addr", "add", "10.244.0.200/24", "dev", "hand0")
    sh("ip", "-n", n1, "link", "set", "hand1", "up")
    sh("ip", "-n", n1, "link", "set", "hand0", "up")
    bounce(n1, "cni0")
    assert [r["dev"] for r in connected(n1, "10.244.0.0/24")] == ["hand0", "cni0"]
    lines = status_lines(name)
    assert sorted(lines) == sorted([f"extra: address 10.244.0.200/24 on hand0 in {n1}", f"extra: link hand0 in {n1} "
                                    "(link)", f"extra: link hand1 in {n1} (link)"]), lines
    out = netlab("up", "-t", path).stdout
    assert "route" not in out, out  # the lab's route was never in question
    assert connected(n1, "10.244.0.0/24") == [mine]
    assert in_netns(n1, "ping", "-c", "1", "-W", "2", ipv4_of(f"{name}-a", "eth0")).returncode == 0
    assert netlab("status", "--lab", name, check=False).returncode == 0


def test_a_hand_made_connected_route_through_another_device_is_extra_and_only_it_goes(lab):
    name, path = lab
    n1 = f"{name}-n1"
    [mine] = connected(n1, "10.244.0.0/24")
    sh("ip", "-n", n1, "route", "prepend", "10.244.0.0/24", "dev", "eth0", "proto", "kernel", "scope", "link")
    assert [r["dev"] for r in connected(n1, "10.244.0.0/24")] == ["eth0", "cni0"]
    assert in_netns(n1, "ping", "-c", "1", "-W", "1", ipv4_of(f"{name}-a", "eth0")).returncode != 0  # sent out eth0
    assert status_lines(name) == [f"extra: route 10.244.0.0/24 dev eth0 proto kernel scope link in {n1}"]
    out = netlab("up", "-t", path).stdout
    assert f"del route 10.244.0.0/24 dev eth0 proto kernel scope link in {n1}" in out, out
    assert connected(n1, "10.244.0.0/24") == [mine]
    assert in_netns(n1, "ping", "-c", "1", "-W", "2", ipv4_of(f"{name}-a", "eth0")).returncode == 0
    assert netlab("status", "--lab", name, check=False).returncode == 0


def test_an_address_added_again_with_a_metric_is_drift_and_up_gives_it_the_plans_in_place(lab):
    name, path = lab
    n1 = f"{name}-n1"
    [mine] = connected(n1, "10.244.0.0/24")
    sh("ip", "-n", n1, "addr", "del", "10.244.0.1/24", "dev", "cni0")
    sh("ip", "-n", n1, "addr", "add", "10.244.0.1/24", "brd", "10.244.0.255", "dev", "cni0", "metric", "50")
    assert [r.get("metric") for r in connected(n1, "10.244.0.0/24")] == [50]
    assert status_lines(name) == [f"different: address 10.244.0.1/24 on cni0 in {n1} (metric 50 (want 0))"]
    out = netlab("up", "-t", path).stdout
    assert f"replace address 10.244.0.1/24 on cni0 in {n1}" in out and "route" not in out, out
    assert "del address" not in out, out
    assert connected(n1, "10.244.0.0/24") == [mine]  # the kernel's, of metric 0, alone
    (cni0,) = ip_json("-4", "addr", "show", "dev", "cni0", netns=n1)
    assert [(a["local"], a.get("metric")) for a in cni0["addr_info"]] == [("10.244.0.1", None)]
    assert netlab("status", "--lab", name, check=False).returncode == 0
