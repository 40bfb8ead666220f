"""A node's Flannel route given an mtu and a src by hand (root): status names them, inspect shows them as ip
does, up replaces the route without them (QA fl59 1).

`ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink mtu 1300 src 10.244.0.1` on n1 caps what
n1 forwards to n2's pods at 1300 bytes (probe --mtu: fragmentation needed), while status said all as planned and
up found nothing to change: the route's metrics and preferred source were not read.
"""

from __future__ import annotations

import json

import pytest

from helpers import ip, ip_json, netlab, pod_pair_lab

pytestmark = pytest.mark.root


def test_a_route_s_mtu_and_src_are_drift_and_up_takes_them_away(tmp_path):
    with pod_pair_lab(tmp_path, "fb") as (name, path):
        n1 = f"{name}-n1"
        [planned] = ip_json("route", "show", "dev", "flannel.1", netns=n1)
        peer_cidr, vtep = planned["dst"], planned["gateway"]
        cni0 = next(r["prefsrc"] for r in ip_json("route", "show", "dev", "cni0", netns=n1))
        assert "metrics" not in planned and "prefsrc" not in planned, planned
        ip("route", "replace", peer_cidr, "via", vtep, "dev", "flannel.1", "onlink", "mtu", "lock", "1300", "src", cni0,
           netns=n1)
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 1, st.stdout
        assert (f"different: route {peer_cidr} via {vtep} dev flannel.1 onlink in {n1} (src {cni0} (want none), "
                f"mtu lock 1300 (want none))") in st.stdout, st.stdout
        shown = netlab("inspect", "--lab", name, "n1", "--section", "routes").stdout
        assert f"{peer_cidr} via {vtep} dev flannel.1 src {cni0} onlink mtu lock 1300\n" in shown, shown
        mtu = json.loads(netlab("probe", "--lab", name, "--mtu", "-o", "json", check=False).stdout)
        assert any("fragmentation needed" in (p.get("detail") or "") for p in mtu["probes"]), mtu["summary"]
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert out["changed"], out
        [route] = ip_json("route", "show", "dev", "flannel.1", netns=n1)
        assert route == planned, route
        assert netlab("status", "--lab", name, check=False).returncode == 0
