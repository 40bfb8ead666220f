"""trace from a pod whose eth0 or routes are gone (root; QA q57 #4).

Before, only "LOST at hop 1: no route to 10.244.1.2 in LAB-a: Network is unreachable", with no cause and no fix,
where a node's missing pod-CIDR route is named with its fix. Now the pod's missing eth0 is named, with `up` (which
makes it again) as the fix; the plan's routes deleted by hand are named, with the commands that add them back (and
`up`). Each fix is run as trace gives it, and the packet then arrives.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import as_planned, ip_json, netlab, traced
from netlab.errors import netlab_command, netlab_words

pytestmark = pytest.mark.root


def test_a_pods_missing_eth0_or_routes_are_named_with_their_fix(labs):
    lab = labs.name("co")
    path, _ = labs.up(f"""name: {lab}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
""")
    subprocess.run(["ip", "-n", f"{lab}-a", "link", "del", "eth0"], check=True)
    code, report = traced(lab, "a", "b")
    assert code == 1 and report["lost"]["hop"] == 1, report["lost"]
    assert "pod a has no eth0 (deleted" in report["lost"]["reason"], report["lost"]
    assert report["lost"]["fix"] == report["repair"] == netlab_command(f"up -t {path}"), report
    netlab(*netlab_words(report["lost"]["fix"]) or [])  # sudo netlab up ...: this run's netlab
    assert traced(lab, "a", "b")[0] == 0 and as_planned(lab)

    for dst in ("default", "10.244.0.0/16"):
        subprocess.run(["ip", "-n", f"{lab}-a", "route", "del", dst], check=True)
    code, report = traced(lab, "a", "b")
    assert code == 1, report["lost"]
    assert report["lost"]["reason"].endswith(": pod a lacks the plan's route to 10.244.0.0/16 and its default route "
                                             "(deleted)"), report["lost"]
    for command in report["lost"]["fix"].split(" && "):
        subprocess.run(command.split(), check=True)
    assert {r["dst"] for r in ip_json("route", netns=f"{lab}-a")} == {"default", "10.244.0.0/16", "10.244.0.0/24"}
    assert traced(lab, "a", "b")[0] == 0 and as_planned(lab)
