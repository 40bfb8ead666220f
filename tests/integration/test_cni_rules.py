"""What CNI plugins keep on a conflist lab's node (root, Debian's plugins).

- iptables rules (bridge's ipMasq, firewall): their jumps from the node's built-in chains are theirs: status does
  not call them extra, and up, repairing the lab's own rules around them, keeps them where the plugins put them (it
  used to delete them, and re-attach every pod when firewall's CHECK then failed, at every up).
- host-local's leases: a node's own (a real node's /var/lib/cni is on its own disk), in the lab's state directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import uuid

import pytest

from helpers import lab_namespaces, netlab, state_path

pytestmark = pytest.mark.root


def builtin_rules(netns: str, table: str, chain: str) -> list[str]:
    save = subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", table], check=True,
                          capture_output=True, text=True).stdout
    return [line for line in save.splitlines() if line.startswith(f"-A {chain} ")]


def test_the_plugins_jumps_stay_theirs_through_status_and_repair(labs, tmp_path):
    (tmp_path / "fw.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "fw-net", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"), "ranges": [[{"subnet": "10.244.0.0/24"}]]}},
        {"type": "firewall"}]}))
    lab = labs.name("cr")
    path, _ = labs.up(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: fw.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}]
""")
    node = f"{lab}-n1"
    forward, postrouting = builtin_rules(node, "filter", "FORWARD"), builtin_rules(node, "nat", "POSTROUTING")
    assert forward[0].endswith("-j CNI-FORWARD"), forward  # firewall inserts its jump on top
    masq = [line for line in postrouting if "-j CNI-" in line]
    assert len(masq) == 2 and postrouting[-2:] == masq, postrouting  # ipMasq appends one per pod
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    # The calls so far: every pod's ADD (a first ADD that firewall failed racing the other pod's for its chains,
    # then its DEL and the ADD of a new sandbox, as the kubelet makes a sandbox again: cni/retry.py), status's CHECKs.
    made = len(json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"])

    # The lab's own jumps deleted by hand: up puts them back around the plugins', which stay as they were.
    lab_fwd = next(line for line in forward if "FLANNEL-FWD" in line)
    lab_post = next(line for line in postrouting if "FLANNEL-POSTRTG" in line)
    for table, line in (("filter", lab_fwd), ("nat", lab_post)):
        subprocess.run(["ip", "netns", "exec", node, "iptables", "-t", table, "-D", *shlex.split(line)[1:]], check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "missing rule: " + lab_fwd in status.stdout and "extra" not in status.stdout
    netlab("up", "-t", path)
    assert builtin_rules(node, "filter", "FORWARD") == forward
    assert builtin_rules(node, "nat", "POSTROUTING") == postrouting
    netlab("status", "--lab", lab)
    # No pod was re-attached by the repair (every call since a CHECK) and the pods still talk, through the firewall's
    # rules.
    calls = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]
    assert {c["command"] for c in calls[:made]} >= {"ADD", "CHECK"}, [c["command"] for c in calls[:made]]
    assert {c["command"] for c in calls[made:]} == {"CHECK"}, [c["command"] for c in calls[made:]]
    b_ip = json.loads(subprocess.run(["ip", "-n", f"{lab}-b", "-j", "addr", "show", "eth0"], check=True,
                                     capture_output=True, text=True).stdout)[0]["addr_info"][0]["local"]
    subprocess.run(["ip", "netns", "exec", f"{lab}-a", "ping", "-c1", "-W2", b_ip], check=True, capture_output=True)
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)


def test_where_no_plugin_runs_a_jump_to_a_cni_chain_is_someones_rule_and_goes(labs):
    """A builtin lab runs no CNI plugin: a jump to a chain named like a plugin's, made by hand in a node's
    FORWARD, is drift like any other rule of someone's, and up takes it out (the chain itself, not the lab's,
    stays)."""
    lab = labs.name("cr")
    path, _ = labs.up(f"""name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}]
""")
    node = f"{lab}-n1"
    forward = builtin_rules(node, "filter", "FORWARD")
    for argv in (["-N", "CNI-MINE"], ["-I", "FORWARD", "-j", "CNI-MINE"]):
        subprocess.run(["ip", "netns", "exec", node, "iptables", *argv], check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "extra rule: -A FORWARD -j CNI-MINE" in status.stdout, status.stdout
    netlab("up", "-t", path)
    assert builtin_rules(node, "filter", "FORWARD") == forward
    netlab("status", "--lab", lab)
    b_ip = json.loads(subprocess.run(["ip", "-n", f"{lab}-b", "-j", "addr", "show", "eth0"], check=True,
                                     capture_output=True, text=True).stdout)[0]["addr_info"][0]["local"]
    subprocess.run(["ip", "netns", "exec", f"{lab}-a", "ping", "-c1", "-W2", b_ip], check=True, capture_output=True)


def test_two_labs_of_one_conflist_keep_their_leases_apart(labs, tmp_path):
    """host-local without a dataDir kept its leases in the machine's /var/lib/cni/networks/<network>, shared by
    every node of every lab: the second lab of the same conflist failed ("10.244.0.2 is not available") and the
    leases outlived the labs. Each node's leases are now in its lab's state directory, gone with it."""
    net = f"lease-{uuid.uuid4().hex[:8]}"
    machine = f"/var/lib/cni/networks/{net}"  # where host-local would have put them: never made, checked
    (tmp_path / "leases.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
         "capabilities": {"ipRanges": True},  # each node's pod CIDR, from the runtime
         "ipam": {"type": "host-local"}}]}))
    names = [labs.name("cl"), labs.name("cl")]
    absent = [d for d in ("/var/lib/cni", "/var/lib/cni/networks") if not os.path.exists(d)]
    try:
        for lab in names:
            labs.up(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: leases.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
""", file=f"{lab}.yaml")
        assert not os.path.exists(machine)
        for lab in names:
            for node, pod in (("n1", "a"), ("n2", "b")):
                leases = state_path(lab, "cni", "networks", node, net)
                ip = json.loads(subprocess.run(["ip", "-n", f"{lab}-{pod}", "-j", "addr", "show", "eth0"], check=True,
                                               capture_output=True, text=True).stdout)[0]["addr_info"][0]["local"]
                assert ip in os.listdir(leases), (lab, node, os.listdir(leases))
            netlab("status", "--lab", lab)
        for lab in names:
            netlab("down", "--lab", lab)
            assert not os.path.exists(state_path(lab, "cni"))
    finally:  # only the old code made these: this test's own network, by its unique name, and empty parents
        for lab in names:  # first: a DEL of the old code's host-local makes its folder again
            netlab("down", "--lab", lab, check=False)
        if os.path.isdir(machine):
            shutil.rmtree(machine)
        for folder in reversed(absent):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
