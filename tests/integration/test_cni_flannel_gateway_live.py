"""The pods' gateway on a Flannel chain's bridge is held to its cached ADD result too (root; Debian's bridge and
host-local behind helpers.DELEGATING_PLUGIN named ``flannel``, which does what Flannel's CNI plugin does to its
``delegate``).

kube-flannel.yml's 10-flannel.conflist is cniVersion 0.3.1 (no CHECK) with ``"delegate": {"hairpinMode": true,
"isDefaultGateway": true}``: no ``type``, and Flannel's plugin makes it ``bridge`` with ``isGateway`` true
(flannel-io/cni-plugin). netlab read only a delegate that names ``"type": "bridge"`` as its pods' gateway, so
cni0 without its gateway address (the pods cut off the other nodes) was "all as planned" (review). Checked with
``ip -j addr``, status, up's re-attach and real traffic.
"""

from __future__ import annotations

import json

import pytest

from cni_wrapper import DELEGATING_PLUGIN
from helpers import as_planned_here, ip, ip_json, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def test_a_flannel_chains_gateway_taken_off_cni0_is_drift_and_up_puts_it_back(labs, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "flannel").write_text(DELEGATING_PLUGIN.format(bin=CNI_BIN))
    (tmp_path / "bin" / "flannel").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "0.3.1", "name": "cbr0", "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True},
         "ipam": {"dataDir": str(tmp_path / "leases")}, "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("fg")
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: {tmp_path}/net.conflist, "
                      f"binDir: {tmp_path}/bin}}}}\nnodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, "
                      "{name: n2, podCIDR: 10.244.1.0/24}]\npods: [{name: a, node: n1}, {name: c, node: n2}]\n")
    ip("addr", "del", "10.244.0.1/24", "dev", "cni0", netns=f"{lab}-n1")
    status = netlab("status", "--lab", lab, check=False)
    said = ("cni: pod a: it differs from its chain's cached ADD result: the node's cni0 lacks the pods' gateway "
            "10.244.0.1 (cniVersion 0.3.1 has no CHECK)")
    assert status.returncode == 1 and said in status.stdout, status.stdout + status.stderr
    up = netlab("up", "-t", path)
    assert "re-attached pod a through CNI" in up.stdout, up.stdout
    addrs = ip_json("addr", "show", "cni0", netns=f"{lab}-n1")[0]["addr_info"]
    assert {(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"} == {("10.244.0.1", 24)}, addrs
    assert as_planned_here(lab)
    probe = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert probe["ok"] and ("a", "c") in {(p["source"], p["destination"]) for p in probe["probes"]}, probe
