"""`netlab impair` on a lab whose user's conflist names its own bridge (root, Debian's bridge and host-local plugins).

impair took a node's pod bridge to be cni0 whatever the conflist said: with a bridge plugin's ``bridge: tbr0`` it
listed "n1:cni0: no such interface", refused n1:tbr0 ("use one of eth0, cni0, flannel.1"), and took n1:cni0 with a
warning, recording an impairment no `up` can ever put (status exit 1 for good). A pod-less node's bridge (none made
yet) was taken and recorded the same way. Checked against the kernel's qdiscs and status's exit code.
"""

from __future__ import annotations

import json

import pytest

from helpers import netlab

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: {{conflist: net.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods: [{{name: a, node: n1}}]
"""
BRIDGE = {"type": "bridge", "bridge": "tbr0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
          "mtu": 1450, "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}}


def _qdiscs(netns: str, dev: str) -> list[str]:
    import subprocess
    r = subprocess.run(["tc", "-n", netns, "-j", "qdisc", "show", "dev", dev], capture_output=True, text=True)
    return [q["kind"] for q in json.loads(r.stdout or "[]")] if r.returncode == 0 else []


def test_impair_shapes_the_conflists_bridge_and_refuses_what_is_not_there(labs, tmp_path):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": f"net-{tmp_path.name}",
                                                       "plugins": [{**BRIDGE, "ipam": {**BRIDGE["ipam"],
                                                                    "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("fb")
    labs.up(TOPOLOGY.format(lab=lab))
    listed = netlab("impair", "--lab", lab)
    assert "cni0" not in listed.stdout, listed.stdout
    for target in ("n1:cni0", "n2:tbr0"):  # no such bridge there: the conflist's is tbr0; n2 has no pod yet
        r = netlab("impair", "--lab", lab, target, "--rate", "1mbit", check=False)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (target, r.returncode, r.stdout, r.stderr)
        assert netlab("status", "--lab", lab, check=False).returncode == 0, target  # nothing recorded
    done = netlab("impair", "--lab", lab, "n1:tbr0", "--rate", "1mbit", check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "tbf" in _qdiscs(f"{lab}-n1", "tbr0") or "htb" in _qdiscs(f"{lab}-n1", "tbr0"), _qdiscs(f"{lab}-n1", "tbr0")
    shown = netlab("impair", "--lab", lab, "n1:tbr0").stdout
    assert "rate 1mbit" in shown, shown
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 0, (st.stdout, st.stderr)
