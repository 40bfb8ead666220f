"""A pod re-attached through Debian's bridge plugin is reached from its node at once (QA q38 #5).

Its namespace deleted by hand, ``up`` makes it anew and ADDs it again: same address (netlab asks the planned one),
new MAC. The node's ``cni0`` had the old MAC REACHABLE: the plugin (1.1.x) only sets ``arp_notify``, whose ARP
the kernel sends before the host veth's bridge port forwards, so it never reached ``cni0``, and the node could not
reach the pod until its entry went STALE and failed, while ``status`` said all as planned. ``up`` now announces
a pod it ADDs to a running lab (cni/announce.py): the entry holds the new MAC, and a ping from the node answers.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip_json, netlab

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: {{conflist: net.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}]
"""


def test_a_pod_whose_namespace_was_deleted_is_reached_from_its_node_right_after_up(labs, tmp_path):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "0.4.0", "name": f"net-{tmp_path.name}",
        "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
                     "capabilities": {"ipRanges": True, "ips": True},
                     "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("cn2")
    labs.up(TOPOLOGY.format(lab=lab))
    node, pod = f"{lab}-n1", f"{lab}-b"
    b_ip = ip_json("-4", "addr", "show", "eth0", netns=pod)[0]["addr_info"][0]["local"]
    old_mac = ip_json("link", "show", "eth0", netns=pod)[0]["address"]
    assert in_netns(node, "ping", "-c1", "-W1", b_ip).returncode == 0
    assert [(n["lladdr"], n["state"]) for n in ip_json("-4", "neigh", "show", b_ip, netns=node)] \
        == [(old_mac, ["REACHABLE"])]

    subprocess.run(["ip", "netns", "del", pod], check=True)  # by hand, as the report did
    out = netlab("up", "-t", str(tmp_path / "topo.yaml")).stdout
    assert "re-attached pod b through CNI" in out
    new_mac = ip_json("link", "show", "eth0", netns=pod)[0]["address"]
    assert new_mac != old_mac and ip_json("-4", "addr", "show", "eth0", netns=pod)[0]["addr_info"][0]["local"] == b_ip
    assert [n["lladdr"] for n in ip_json("-4", "neigh", "show", b_ip, netns=node)] == [new_mac]
    assert in_netns(node, "ping", "-c1", "-W1", b_ip).returncode == 0  # right after up
    assert netlab("status", "--lab", lab, check=False).returncode == 0


WRAPPER = r"""#!/bin/sh
# Debian's bridge, its ADD result naming a host interface the node does not have (QA q42 4)
conf=$(cat)
out=$(printf '%s' "$conf" | {bin}/bridge)
rc=$?
if [ "$CNI_COMMAND" = ADD ]; then
  printf '%s' "$out" | sed -E 's/"name": *"veth[0-9a-f]+"/"name": "nosuch0"/'
else
  printf '%s' "$out"
fi
exit $rc
"""


def test_a_result_naming_a_host_interface_the_node_lacks_is_said_with_that_interface(labs, tmp_path):
    """QA q42 4: the warning said "10.244.0.2 on eth0 not announced (gratuitous ARP): the link does not run after
    3s", the pod's eth0 up and running, after waiting 3 s for nosuch0, which never comes. It names nosuch0 now."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "fzbr").write_text(WRAPPER.format(bin="/usr/lib/cni"))
    (tmp_path / "bin" / "fzbr").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "0.4.0", "name": f"net-{tmp_path.name}",
        "plugins": [{"type": "fzbr", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
                     "capabilities": {"ipRanges": True, "ips": True},
                     "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("fz")
    labs.up(TOPOLOGY.format(lab=lab).replace("conflist: net.conflist", "conflist: net.conflist, binDir: bin"))
    node = f"{lab}-n1"
    ips = {p: ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{p}")[0]["addr_info"][0]["local"] for p in "ab"}
    subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=True)
    r = netlab("up", "-t", str(tmp_path / "topo.yaml"), check=False)
    # b made anew; a too: the bridge's CHECK of the result it had fails on nosuch0, also right after the fresh ADD
    # (QA cnicheck 1): said, exit 1 as status, the lab kept
    assert "re-attached pod b through CNI" in r.stdout and "re-attached pod a through CNI" in r.stdout, r
    assert r.returncode == 1 and "netlab: pod a: CNI plugin fzbr's CHECK fails on its own fresh ADD: failed (exit 1): " \
        "Interface name nosuch0 not found" in r.stderr, r
    assert "nosuch0" not in [ln["ifname"] for ln in ip_json("link", netns=node)]
    for p in "ab":
        (eth0,) = ip_json("link", "show", "eth0", netns=f"{lab}-{p}")
        assert "LOWER_UP" in eth0["flags"] and eth0["operstate"] == "UP"  # the pod's own link runs
    assert "".join(ln for ln in r.stderr.splitlines(keepends=True) if "warning" in ln) == "".join(f"netlab: warning: {lab}-{p}: {ips[p]} on eth0 not announced (gratuitous ARP): "
                               f"nosuch0 in {node}, which the CNI result names, does not exist\n" for p in "ab"), r
