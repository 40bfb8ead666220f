"""A conflist's bridge on a node whose last pod went is its plugins' to trace, as it is to status (root, Debian's
bridge and host-local from /usr/lib/cni).

The bridge plugin makes its bridge (``qnbr0``) at a node's first ADD and never deletes it: after the node's last pod
is taken out of the topology, ``qnbr0`` stays on the node, and no pod's CNI result names it any more. status leaves
it and the routes on it to the plugins (the conflist names it), but trace built its map of the plugins' devices
from the pods' results alone, so on that node it held such a route against the plan and called it extra.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import in_netns, ip_json, lab_down, netlab, unique_lab
from netlab import Lab
from netlab.trace import strayroutes
from netlab.trace.targets import lab_map

pytestmark = pytest.mark.root

CONFLIST = {"cniVersion": "1.0.0", "name": "tcnet", "plugins": [
    {"type": "bridge", "bridge": "qnbr0", "isGateway": True, "capabilities": {"ipRanges": True},
     "ipam": {"type": "host-local"}}]}
TOPOLOGY = """name: {lab}
network: {{cni: {{conflist: net.conflist, binDir: bin}}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1}}
{more}"""


def test_the_bridge_a_conflist_keeps_on_a_node_without_pods_is_not_extra_to_trace(tmp_path):
    assert os.access("/usr/lib/cni/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    lab = unique_lab("tc")
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    (tmp_path / "bin").mkdir()
    topo = tmp_path / "t.yaml"
    topo.write_text(TOPOLOGY.format(lab=lab, more="  - {name: b, node: n2}\n"))
    try:
        netlab("up", "-t", str(topo))
        topo.write_text(TOPOLOGY.format(lab=lab, more=""))  # n2's last pod goes: DEL, the bridge stays
        netlab("up", "-t", str(topo))
        n2 = f"{lab}-n2"
        assert [link["ifname"] for link in ip_json("link", "show", "qnbr0", netns=n2)] == ["qnbr0"]
        in_netns(n2, "ip", "route", "add", "10.244.1.0/25", "dev", "qnbr0", check=True)  # a route on it
        assert netlab("status", "--lab", lab, check=False).returncode == 0  # the plugins', not extra
        [route] = ip_json("route", "show", "10.244.1.0/25", netns=n2)
        assert route["dev"] == "qnbr0", route
        lm = lab_map(Lab(lab).model)
        assert "qnbr0" in (lm.plugin_devs.get(n2) or ())
        assert strayroutes.extra_route(lm, n2, "10.244.1.5", None, "qnbr0", "10.244.1.0/25 dev qnbr0 scope link") \
            is None
    finally:
        lab_down(lab)
