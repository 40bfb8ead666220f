"""A plugin sees the node's /sys, never the machine's (root, Debian's bridge and host-local, real namespaces; QA
cnf63 #2).

netlab ran each plugin in the node's network namespace but the machine's mount namespace: /sys was the one the
machine mounted in its own network namespace, so a plugin reading /sys/class/net/eth0/address got the machine's
eth0 (and one writing there would change the machine's device). Now each plugin starts as `ip netns exec` starts
a command (iproute2's netns_switch): a mount namespace of its own, / made rslave, /sys detached and a sysfs mounted
fresh in the node's network namespace. The machine's mounts are as they were after.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

SEER = """#!/bin/bash
# seer: chained after bridge; writes what the plugin's /sys and /proc say, hands the prevResult on
conf=$(cat)
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'; exit 0;;
ADD)
  out=$(jq -r .out <<<"$conf")/$CNI_CONTAINERID
  { readlink /proc/self/ns/net; ls /sys/class/net | tr '\\n' ' '; echo; cat /sys/class/net/*/address | tr '\\n' ' '
    echo; } > "$out"
  jq -c .prevResult <<<"$conf";;
esac
exit 0
"""


def _mounts_below(top: str) -> list[str]:
    """The machine's mounts at ``top`` and below it (what findmnt lists for this process's mount namespace)."""
    out = subprocess.run(["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", "-R", top], capture_output=True,
                         text=True, check=True).stdout
    return sorted(out.splitlines())


def _host_devices() -> tuple[set[str], set[str]]:
    names = set(os.listdir("/sys/class/net"))
    return names, {open(f"/sys/class/net/{n}/address").read().strip() for n in names}


def test_a_plugin_sees_its_nodes_devices_in_sys_and_the_machines_mounts_stay(labs, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "seer").write_text(SEER)
    (tmp_path / "bin" / "seer").chmod(0o755)
    (tmp_path / "seen").mkdir()
    (tmp_path / "sn.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "sn", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "capabilities": {"ips": True, "ipRanges": True},
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "seer", "out": str(tmp_path / "seen")}]}))
    sys_before, host_before = _mounts_below("/sys"), _host_devices()
    lab = labs.name("cfsy")
    _, proc = labs.up(f"""name: {lab}
network: {{cni: {{conflist: sn.conflist, binDir: bin}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
""", check=False)
    assert proc.returncode == 0, proc.stderr
    seen = [p.read_text().splitlines() for p in sorted((tmp_path / "seen").iterdir())]
    assert len(seen) == 2, seen
    nodes = {}
    for node in ("n1", "n2"):
        links = ip_json("link", "show", netns=f"{lab}-{node}")
        nodes[f"net:[{os.stat(f'/run/netns/{lab}-{node}').st_ino}]"] = (
            {link["ifname"] for link in links}, {link["address"] for link in links})
    host_names, host_macs = _host_devices()
    nodes_names = set().union(*(names for names, _ in nodes.values()))
    for ns, names, macs in seen:
        assert ns in nodes, (ns, nodes)  # the node's network namespace
        node_names, node_macs = nodes[ns]
        assert set(names.split()) == node_names, (names, node_names)  # the node's devices, not the machine's
        assert set(macs.split()) <= node_macs and not set(macs.split()) & (host_macs - node_macs), (macs, host_macs)
    # the machine's /sys is still its own: its devices (as before: a module loaded meanwhile may add some), none
    # of a node's
    assert host_before[0] <= host_names and not host_names & (nodes_names - host_before[0]), host_names
    assert _mounts_below("/sys") == sys_before  # no mount came to, or went from, the machine's /sys
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
    assert _mounts_below("/sys") == sys_before
