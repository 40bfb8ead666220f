"""inspect's routes as the kernel's own `ip -j route` says them (root, a real lab of one node and one pod).

A route's origin (boot, kernel, ...) was `proto` in `inspect -o json`, where `ip -j route` says `protocol`; it is
`protocol` now, `proto` beside it with the same value for one release (docs/json.md's deprecated keys).
"""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, netlab

pytestmark = pytest.mark.root


def test_inspect_json_says_each_routes_origin_as_ip_j_route_does(labs):
    lab = labs.name("lf")
    labs.up(f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n")
    for name in ("n1", "a"):
        view = json.loads(netlab("inspect", "--lab", lab, name, "--section", "routes", "-o", "json").stdout)
        # -d: ip prints every route's origin, boot too (which it leaves out otherwise)
        kernel = {r["dst"]: r["protocol"] for r in ip_json("-d", "route", "show", "table", "main",
                                                            netns=f"{lab}-{name}")}
        ours = {r["dst"]: r.get("protocol") for r in view["routes"]}
        assert ours == kernel and {"boot", "kernel"} <= set(ours.values()), (name, ours, kernel)
        assert all(r["proto"] == r["protocol"] for r in view["routes"]), view["routes"]
