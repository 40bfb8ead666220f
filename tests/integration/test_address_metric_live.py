"""An address given another metric by hand (root): up gives it the planned one in place, and what hangs on its
device stays (closing61's left item: up deleted the address and added it again, which took the device's routes and
ARP entries with it for a moment, a pod's only address taking its default route and its gateway's entry).

`ip -n A addr replace 10.244.0.2/24 dev eth0 metric 50` moves pod a's connected route to metric 50; up's replace
(RTM_NEWADDR, NLM_F_REPLACE, no IFA_RT_PRIORITY: metric 0) moves it back, and the kernel keeps the address, its
default route and the gateway's ARP entry the pod learned (which no up puts back: not the plan's).
"""

from __future__ import annotations

import pytest

from helpers import in_netns, ip, ip_json, lab_up, status_details, unique_lab, up_repairs, write_topology

pytestmark = pytest.mark.root

TOPO = "name: {name}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n"


def test_an_address_metric_is_mended_in_place_and_its_routes_and_neighbours_stay(tmp_path):
    name = unique_lab("lam")
    path = write_topology(tmp_path, TOPO.format(name=name))
    a = f"{name}-a"
    with lab_up(path, name, in_process=True):
        [info] = [x for x in ip_json("-4", "addr", "show", "dev", "eth0", netns=a)[0]["addr_info"]]
        address = f"{info['local']}/{info['prefixlen']}"
        [default] = ip_json("route", "show", "default", netns=a)
        gateway = default["gateway"]
        assert in_netns(a, "ping", "-c", "1", "-W", "2", gateway).returncode == 0
        [learned] = [n for n in ip_json("neigh", "show", "dev", "eth0", netns=a) if n["dst"] == gateway]

        ip("addr", "replace", address, "dev", "eth0", "metric", "50", netns=a)
        [connected] = ip_json("route", "show", "proto", "kernel", "dev", "eth0", netns=a)
        assert connected.get("metric") == 50, connected
        code, details = status_details(name)
        assert code == 1 and [(d["state"], d["object"]) for d in details] == [
            ("different", f"address {address} on eth0 in {a}")], details

        fixed = up_repairs(path, name)
        assert not any(line.startswith(("del address", "add address")) for line in fixed), fixed
        [connected] = ip_json("route", "show", "proto", "kernel", "dev", "eth0", netns=a)
        assert "metric" not in connected, connected
        # The address never left: the pod's learned entry for its gateway (flushed with a device's last address)
        # and its default route are still there
        assert [n["lladdr"] for n in ip_json("neigh", "show", "dev", "eth0", netns=a) if n["dst"] == gateway] == [
            learned["lladdr"]]
        assert ip_json("route", "show", "default", netns=a) == [default]
        assert in_netns(a, "ping", "-c", "1", "-W", "2", gateway).returncode == 0
