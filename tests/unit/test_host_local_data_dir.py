"""host-local's dataDir where a plugin's config hands host-local its IPAM (model/hostlocal.py, plan/cniadd.node_leases):
a plugin's own ipam, Flannel's ipam (absent or typeless: host-local), a wrapper's delegate.ipam. Without it the leases
went to the machine's /var/lib/cni/networks/<network>, shared by every lab, and outlived them."""

from __future__ import annotations

import json

from netlab.cni.leftover import left_behind
from netlab.model.cniconf import parse_conflist
from netlab.model.hostlocal import data_dir, host_local_ipam, with_data_dir
from netlab.plan.cniadd import node_leases

LAB = "/tmp/st/lab/cni/networks/n1"


def _net(*plugins: dict) -> str:
    return json.dumps({"cniVersion": "1.0.0", "name": "nw", "plugins": list(plugins)})


def test_a_wrappers_delegate_host_local_gets_the_nodes_folder():
    wrapper = {"type": "wrap", "delegate": {"type": "bridge", "bridge": "w0", "ipam": {"type": "host-local"}}}
    net = node_leases(parse_conflist(_net(wrapper, {"type": "portmap"})), LAB)
    assert net.plugins[0] == {"type": "wrap", "delegate": {"type": "bridge", "bridge": "w0",
                                                           "ipam": {"type": "host-local", "dataDir": LAB}}}
    assert net.plugins[1] == {"type": "portmap"} and net.raw["plugins"] == list(net.plugins)


def test_flannels_ipam_is_host_locals_also_absent_or_typeless():
    for given, made in (({}, {"dataDir": LAB}),
                        ({"ipam": {"routes": [{"dst": "0.0.0.0/0"}]}}, {"routes": [{"dst": "0.0.0.0/0"}],
                                                                         "dataDir": LAB}),
                        ({"ipam": {"type": "host-local"}}, {"type": "host-local", "dataDir": LAB})):
        plugin = {"type": "flannel", "delegate": {"hairpinMode": True}, **given}
        assert node_leases(parse_conflist(_net(plugin)), LAB).plugins[0] == {**plugin, "ipam": made}


def test_a_data_dir_of_the_conflists_own_or_another_ipam_is_kept():
    for plugin in ({"type": "wrap", "delegate": {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/x"}}},
                   {"type": "flannel", "ipam": {"dataDir": "/x"}},
                   {"type": "flannel", "ipam": {"type": "static"}},
                   {"type": "wrap", "delegate": {"type": "bridge", "ipam": {"type": "dhcp"}}},
                   {"type": "bridge", "ipam": {"type": "host-local", "dataDir": ""}},
                   {"type": "tuning"}):
        assert with_data_dir(plugin, LAB) is plugin
    assert data_dir({"type": "flannel", "ipam": {"dataDir": "/x"}}) == "/x"
    assert host_local_ipam({"type": "flannel", "ipam": {"type": "static"}}) is None


def test_a_failed_dels_words_name_the_nested_lease_folder(tmp_path):
    """A wrapper's delegate's dataDir, Flannel's default one; the lease is named only when its file is there (with
    no address on record, the folder is named as where it would be)."""
    wrap = {"type": "wrap", "delegate": {"ipam": {"type": "host-local", "dataDir": str(tmp_path)}}}
    prec = {"networks": [[json.loads(_net(wrap)), "eth0"]], "args": [["IP", "10.244.0.2"]]}
    assert left_behind(prec) == []  # host-local leased nothing there
    (tmp_path / "nw").mkdir()
    (tmp_path / "nw" / "10.244.0.2").write_text("cid\neth0")
    assert left_behind(prec) == [f"host-local's lease of 10.244.0.2 in {tmp_path}/nw"]
    prec = {"networks": [[json.loads(_net({"type": "flannel"})), "eth0"]]}
    assert left_behind(prec) == ["host-local's lease in /var/lib/cni/networks/nw"]
