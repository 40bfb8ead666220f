"""host-local's leases under a wrapper plugin stay in the lab's state directory, never the machine's /var/lib/cni
(root, Debian's bridge and host-local behind a tiny wrapper the test writes into its tmp_path).

The wrapper ``dlw`` runs the plugin under its ``delegate`` key with the runtime's ``runtimeConfig``. Named ``dlw``
it hands its ``delegate`` on whole, ``ipam`` too; named ``flannel`` it builds the delegate's ``ipam`` from its own
(``type`` host-local when it names none, an absent ``ipam`` an empty one), as Flannel's CNI plugin does
(flannel-io/cni-plugin ``getDelegateIPAM``). Neither conflist names a ``dataDir``: host-local kept the leases in
/var/lib/cni/networks/<network>, shared by every lab and left after ``down``. Checked with the lease files, ``ip -j``
and real traffic; ``down`` takes the lab's folder, leases and all.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from cni_wrapper import DELEGATING_PLUGIN
from helpers import ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
MACHINE = "/var/lib/cni"
STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"


def _machine_files(network: str) -> list[str]:
    """What host-local (or anything of this network) keeps under the machine's /var/lib/cni."""
    out = []
    for root, dirs, files in os.walk(MACHINE):
        out += [os.path.join(root, n) for n in dirs + files if network in os.path.join(root, n)]
    return sorted(out)


def _leases(lab: str, node: str, network: str) -> list[str]:
    d = Path(STATE, lab, "cni", "networks", node, network)
    return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.is_dir() else []


@pytest.mark.parametrize("wrapper, top", [
    ("dlw", {"delegate": {"type": "bridge", "bridge": "dlbr0", "isGateway": True, "isDefaultGateway": True,
                          "ipam": {"type": "host-local"}}}),
    ("flannel", {"delegate": {"type": "bridge", "bridge": "dlbr0", "isGateway": True, "isDefaultGateway": True}}),
])
def test_a_host_local_under_a_wrapper_keeps_its_leases_in_the_lab(labs, tmp_path, wrapper, top):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"dl{uuid.uuid4().hex[:8]}"  # the machine's folder would be /var/lib/cni/networks/<network>
    before = _machine_files(network)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / wrapper).write_text(DELEGATING_PLUGIN.format(bin=CNI_BIN))
    (tmp_path / "bin" / wrapper).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": wrapper, **top, "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("da")
    try:
        labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                "nodes: [{name: n1}, {name: n2}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n2}\n")
        assert _machine_files(network) == before == []
        assert (_leases(lab, "n1", network), _leases(lab, "n2", network)) == (["10.244.0.2"], ["10.244.1.2"])
        eth0 = ip_json("-4", "addr", "show", "dev", "eth0", netns=f"{lab}-a")[0]["addr_info"]
        assert [a["local"] for a in eth0] == ["10.244.0.2"]
        out = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
        assert out["ok"] and {(p["source"], p["destination"]) for p in out["probes"]} >= {("a", "b"), ("b", "a")}
        netlab("down", "--lab", lab)
        assert not Path(STATE, lab).exists() and lab_namespaces(lab) == []
        assert _machine_files(network) == []
    finally:  # down first: host-local's DEL makes its folder again (a lock file)
        netlab("down", "--lab", lab, check=False)
        for path in [p for p in _machine_files(network) if os.path.dirname(p) == f"{MACHINE}/networks"]:
            shutil.rmtree(path)  # this test's own network's folder, which host-local made without the fix
