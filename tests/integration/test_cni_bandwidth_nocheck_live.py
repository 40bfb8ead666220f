"""A pod the bandwidth plugin shapes, in a chain without CHECK (``disableCheck``, as the README recommends for
Debian's bandwidth and portmap CHECK bugs): its tbf deleted by hand is drift (root, Debian's bridge, host-local and
bandwidth).

Before, `status` said "all as planned" and `up` changed nothing while the pod ran unshaped (QA cnr63 2): a chain
without CHECK was compared only with what its cached result lists. Now the tbf bandwidth made, on the host veth
(ingress) and on the ifb (egress) its result lists, is held to the rate the plugin was given, as its own CHECK holds
it; `up` re-attaches the pod (DEL + ADD) and the plugin makes it again.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import lab_namespaces, netlab

pytestmark = pytest.mark.root

CONFLIST = {"cniVersion": "1.0.0", "name": "crbw-net", "disableCheck": True, "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
     "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}},
    {"type": "bandwidth", "capabilities": {"bandwidth": True}}]}


def tbfs(netns: str) -> dict[str, int]:
    """Each device's tbf rate, bytes a second, as `tc -j qdisc show` gives it."""
    return {q["dev"]: q["options"]["rate"] for q in json.loads(subprocess.run(
        ["tc", "-n", netns, "-j", "qdisc", "show"], check=True, capture_output=True, text=True).stdout)
        if q["kind"] == "tbf"}


def host_veth(lab: str, pod: str, node: str) -> str:
    peer = json.loads(subprocess.run(["ip", "-n", f"{lab}-{pod}", "-j", "link", "show", "eth0"], check=True,
                                     capture_output=True, text=True).stdout)[0]["link_index"]
    links = json.loads(subprocess.run(["ip", "-n", node, "-j", "link"], check=True, capture_output=True,
                                      text=True).stdout)
    return next(link["ifname"] for link in links if link["ifindex"] == peer)


@pytest.mark.parametrize("which", ["ingress", "egress"])
def test_a_deleted_bandwidth_tbf_is_drift_and_up_makes_it_again(labs, tmp_path, which):
    (tmp_path / "bw.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("crbw")
    labs.up(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: bw.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: a, node: n1, annotations: {{kubernetes.io/ingress-bandwidth: 2M, kubernetes.io/egress-bandwidth: 1Mi}}}}
""")
    n1 = f"{lab}-n1"
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    veth = host_veth(lab, "a", n1)
    before = tbfs(n1)
    [ifb] = [dev for dev in before if dev != veth]
    assert before == {veth: 2000000 // 8, ifb: 1048576 // 8}, before
    dev, rate = (veth, 2000000) if which == "ingress" else (ifb, 1048576)
    subprocess.run(["tc", "-n", n1, "qdisc", "del", "dev", dev, "root"], check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout + status.stderr
    assert (f"bandwidth's shaping of its {which} is gone: the node's {dev} has no tbf (the plugin gave it "
            f"{rate}bit)") in status.stdout, status.stdout
    up = netlab("up", "--lab", lab)
    assert "re-attached pod a through CNI" in up.stdout + up.stderr, up.stdout + up.stderr
    after = tbfs(n1)
    assert sorted(after.values()) == sorted(before.values()) and host_veth(lab, "a", n1) in after, after
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
