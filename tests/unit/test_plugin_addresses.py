"""A pod's explicit ``ip:`` that its CNI plugins did not give it (an IPAM that picks its own): the lab follows the
plugins' address, and says so, naming the pod and both addresses (it was silent)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from netlab.model.lab import CniAttachment, resolve
from netlab.model.load import load_topology

TOPO = """name: pa
network: {cni: {conflist: net.conflist, binDir: bin}}
nodes: [{name: n1, podCIDR: 10.244.0.0/24}]
pods:
  - {name: s1, node: n1, ip: 10.244.0.20}
  - {name: s2, node: n1, ip: 10.244.0.30}
  - {name: free, node: n1}
"""


def lab_of(tmp_path, given: dict[str, str]):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "ptp", "ipam": {"type": "host-local"}}]}))
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "t.yaml").write_text(TOPO)
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    return lab.with_attachments({pod: CniAttachment(ip=IPv4Address(ip)) for pod, ip in given.items()})


def test_each_pod_whose_ip_the_plugins_did_not_give_is_named_with_both_addresses(tmp_path):
    lab = lab_of(tmp_path, {"s1": "10.244.0.2", "s2": "10.244.0.30", "free": "10.244.0.4"})
    assert lab.plugin_addresses() == ["pod s1: its CNI plugins gave it 10.244.0.2, not the ip: 10.244.0.20 of the "
                                      "topology (netlab follows the plugins' address)"]
    assert lab.pod("s1").ip == IPv4Address("10.244.0.2")  # followed, as before
    # Not attached yet (a fresh lab before its plugins ran, or a builtin lab): nothing to say.
    assert lab_of(tmp_path, {}).plugin_addresses() == []
