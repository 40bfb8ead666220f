"""The doctor's verdict on what a conflist's plugins need against what Debian's plugins really do on this kernel
(root): a bridge + bandwidth chain with an egress rate (an ifb, the host veth's ingress qdisc, a u32 filter whose
mirred action redirects to the ifb, tbfs) and a bridge with a `vlan` (a VLAN-filtering bridge). Each chain is run by
hand, as a runtime runs it, in two namespaces of the test's own (a node and its pod): the doctor says ok for every
feature the chain needs exactly when its ADD works. Where it works, `tc -j` shows what the doctor tried and real
traffic passes the redirect (the ifb's counters); where the doctor FAILs (this VM: no CONFIG_BRIDGE_VLAN_FILTERING),
the plugin fails with the kernel's refusal and `up` stops before any change with the doctor's line."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import STATE_ROOT, in_netns, ip_json, lab_namespaces, netlab, unique_lab, write_topology
from netlab.kernel.netns import create_netns, remove_netns
from netlab.kernel.nstag import make_tag

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
EGRESS = ("ifb", "tbf", "ingress", "u32", "mirred")
BANDWIDTH = {"type": "bandwidth", "ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000,
             "egressBurst": 80_000}


def _bridge(tmp_path, **fields) -> dict:
    return {"type": "bridge", "bridge": "cni0", "isGateway": True, **fields,
            "ipam": {"type": "host-local", "subnet": "10.244.0.0/24", "dataDir": str(tmp_path / "ipam")}}


def _doctor(tmp_path, lab: str, plugins: list) -> tuple[str, int, dict]:
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "dn-net", "plugins": plugins}))
    path = write_topology(tmp_path, f"name: {lab}\nnetwork: {{cni: {{conflist: n.conflist}}}}\n"
                                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods: [{name: a, node: n1}]\n")
    proc = netlab("doctor", "-t", path, "-o", "json", check=False)
    return path, proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


@pytest.fixture
def node_and_pod():
    name = unique_lab("dn")
    made = []
    try:
        for ns in (f"{name}-node", f"{name}-pod"):
            create_netns(ns, make_tag("docneeds-test", ns))
            made.append(ns)
        yield made
    finally:
        for ns in made:
            remove_netns(ns)  # the bridge, the veths and the ifb go with them


def _add(plugins: list, node: str, pod: str) -> tuple[bool, str, dict]:
    """Each plugin's ADD in turn, the previous result handed on, as libcni runs a chain: (all worked, what the
    failing one said, the last result)."""
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"dn-{pod}", "CNI_NETNS": f"/run/netns/{pod}",
           "CNI_IFNAME": "eth0", "CNI_PATH": CNI_BIN, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result: dict = {}
    for plugin in plugins:
        conf = {"cniVersion": "1.0.0", "name": "dn-net", **plugin, **({"prevResult": result} if result else {})}
        proc = subprocess.run(["ip", "netns", "exec", node, f"{CNI_BIN}/{plugin['type']}"], input=json.dumps(conf),
                              capture_output=True, text=True, env=env, timeout=60)
        if proc.returncode != 0:
            return False, proc.stdout + proc.stderr, result
        result = json.loads(proc.stdout)
    return True, "", result


def _tc(node: str, *args: str) -> list:
    proc = in_netns(node, "tc", "-j", *args, check=True)
    return json.loads(proc.stdout or "[]")


def test_bandwidths_egress_redirect_is_ok_exactly_when_the_plugin_makes_it(tmp_path, node_and_pod):
    node, pod = node_and_pod
    plugins = [_bridge(tmp_path), BANDWIDTH]
    _, code, checks = _doctor(tmp_path, unique_lab("dn"), plugins)
    for name in EGRESS:
        assert checks[name]["needed"] and "the bandwidth plugin's egressRate of" in checks[name]["detail"], checks[name]
        rates = ("ingressRate", "egressRate") if name == "tbf" else ("egressRate",)  # a tbf each way
        assert checks[name]["items"] == [{"plugin": "bandwidth", "field": r, "pods": []} for r in rates]
    assert checks["ingress"]["title"] == "kernel qdisc ingress"
    assert checks["mirred"]["title"] == "kernel tc action mirred"
    verdict = all(checks[name]["status"] == "ok" for name in EGRESS)
    worked, said, result = _add(plugins, node, pod)
    assert worked == verdict, (said, {n: checks[n]["detail"] for n in EGRESS})
    if not worked:
        assert code == 3
        return
    host = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))
    [ifb] = [link["ifname"] for link in ip_json("link", "show", "type", "ifb", netns=node)]
    assert {q["kind"] for q in _tc(node, "qdisc", "show", "dev", host)} >= {"tbf", "ingress"}
    assert [q["kind"] for q in _tc(node, "qdisc", "show", "dev", ifb)] == ["tbf"]
    [u32] = [f for f in _tc(node, "filter", "show", "dev", host, "ingress") if f.get("options", {}).get("actions")]
    # what the doctor tried: a u32 matching every frame (0/0), flowid 1:1, mirred's egress redirect (the plugin's
    # netlink library adds two: one for the filter's RedirIndex, stolen, one for its action list, pass)
    assert (u32["kind"], u32["options"]["flowid"], u32["options"]["match"]["mask"]) == ("u32", "1:1", "0"), u32
    assert {(a["kind"], a["mirred_action"], a["direction"], a["to_dev"]) for a in u32["options"]["actions"]} == {
        ("mirred", "redirect", "egress", ifb)}, u32

    def sent(dev: str) -> int:
        [link] = ip_json("-s", "link", "show", "dev", dev, netns=node)
        return link["stats64"]["tx"]["packets"]

    before = sent(ifb)
    ping = in_netns(pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.244.0.1")
    assert ping.returncode == 0, ping.stdout + ping.stderr  # the pod's gateway, through the redirect and back
    assert sent(ifb) - before >= 3  # each echo request left the pod through the ifb


def test_a_vlan_bridge_is_ok_exactly_when_the_plugin_makes_it(tmp_path, node_and_pod):
    node, pod = node_and_pod
    lab = unique_lab("dn")
    plugins = [_bridge(tmp_path, vlan=100)]
    path, code, checks = _doctor(tmp_path, lab, plugins)
    check = checks["vlan_filtering"]
    assert check["needed"] and check["title"] == "kernel bridge VLAN filtering", check
    assert check["items"] == [{"plugin": "bridge", "field": "vlan", "pods": []}]
    worked, said, _ = _add(plugins, node, pod)
    assert worked == (check["status"] == "ok"), (said, check)
    if worked:
        [bridge] = ip_json("-d", "link", "show", "dev", "cni0", netns=node)
        assert bridge["linkinfo"]["info_data"]["vlan_filtering"] == 1
        return
    assert "operation not supported" in said, said  # the kernel's refusal, as the doctor's probe met it
    assert (code, check["status"]) == (3, "FAIL") and check["detail"].startswith("not in this kernel (ENOTSUP")
    assert "CONFIG_BRIDGE_VLAN_FILTERING" in check["fix"]
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("netlab: FAIL  kernel bridge VLAN filtering: not in this kernel") and \
        "the bridge plugin's vlan of" in line and line.endswith("(leave out vlan, or use a kernel that has it)"), line
    assert lab_namespaces(lab) == [] and not os.path.lexists(os.path.join(STATE_ROOT, lab))


def test_sbrs_ipv6_rules_are_tried_and_said_as_the_plugin_makes_them(tmp_path, node_and_pod):
    """sbr adds a policy rule for each of the pod's addresses, an IPv6 one too: the doctor tried an IPv4 rule only.
    Now its line says the IPv6 rule it tried beside it; Debian's bridge (an IPv4 and an IPv6 range) then sbr, run by
    hand in the test's namespaces, make both kinds, as `ip -j rule` shows in the pod."""
    node, pod = node_and_pod
    bridge = _bridge(tmp_path)
    bridge["ipam"] = {**bridge["ipam"], "ranges": [[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:10::/64"}]]}
    del bridge["ipam"]["subnet"]
    plugins = [bridge, {"type": "sbr"}]
    # the doctor of an IPv4 lab's bridge + sbr (one whose IPAM gives pods IPv6 is refused: labs are IPv4)
    _, code, checks = _doctor(tmp_path, unique_lab("dn"), [_bridge(tmp_path), {"type": "sbr"}])
    check = checks["fib_rules"]
    assert check["needed"] and check["items"] == [{"plugin": "sbr", "field": None, "pods": []}], check
    for sysctl in ("all", "default"):  # netlab's namespaces start without IPv6 (its labs are IPv4): this pod has it
        in_netns(pod, "sysctl", "-qw", f"net.ipv6.conf.{sysctl}.disable_ipv6=0", check=True)
    worked, said, result = _add(plugins, node, pod)
    assert worked, said
    assert {ip["address"].split("/")[0] for ip in result["ips"]} >= {"10.244.0.2"}, result
    made = {family: ip_json(family, "rule", "show", netns=pod) for family in ("-4", "-6")}
    sources = {family: [r["src"] for r in rules if r.get("table") not in ("local", "main", "default")]
               for family, rules in made.items()}
    assert sources["-4"] == ["10.244.0.2"] and len(sources["-6"]) == 1 and sources["-6"][0].startswith("fd00:10::"), \
        made  # sbr made both kinds here: so the doctor must say both
    assert (check["status"], code) == ("ok", 0), check
    assert check["detail"].startswith("added an IPv4 rule (from 10.0.0.1 lookup 100) in a throwaway namespace; "
                                      "added an IPv6 rule (from fd00::1 lookup 100) there too; asked for by the sbr "
                                      "plugin of "), check


def test_a_kernel_without_ipv6_rules_is_a_warning_on_the_policy_rules_line(tmp_path):
    """The IPv6 rule refused (the test hook: this kernel has them): the line warns, names the build option, and the
    doctor and `up`'s preflight go on (the lab's pods are IPv4)."""
    lab = unique_lab("dn")
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "dn-net", "plugins": [
        _bridge(tmp_path), {"type": "sbr"}]}))
    path = write_topology(tmp_path, f"name: {lab}\nnetwork: {{cni: {{conflist: n.conflist}}}}\n"
                                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods: [{name: a, node: n1}]\n")
    proc = netlab("doctor", "-t", path, check=False, env={"NETLAB_DOCTOR_MISSING": "fib_rules6"})
    [line] = [x for x in proc.stdout.splitlines() if "policy routing rules" in x]
    assert line.startswith("warn  kernel policy routing rules: added an IPv4 rule (from 10.0.0.1 lookup 100) in a "
                           "throwaway namespace; IPv6 rules missing: an IPv6 rule (from fd00::1 lookup 100): reported "
                           "missing by NETLAB_DOCTOR_MISSING (a test hook), so the sbr plugin's ADD fails for a pod "
                           "given an IPv6 address (an IPv4 one works)"), line
    assert "fix: boot a kernel with CONFIG_IPV6_MULTIPLE_TABLES" in line and proc.returncode != 3, proc.stdout


def test_a_vlan_trunk_asks_for_vlan_filtering_exactly_when_the_plugin_reads_it(tmp_path, node_and_pod):
    """Debian 12's bridge (1.1.1) reads no vlanTrunk (upstream's since v1.3.0): the doctor counted it as needing
    VLAN filtering, and on this VM (no CONFIG_BRIDGE_VLAN_FILTERING) `up` refused a conflist whose plugin would
    never use it. The plugin's own ADD is the judge: a plain bridge, no port VLANs, where it ignores the trunk."""
    node, pod = node_and_pod
    lab = unique_lab("dn")
    plugins = [_bridge(tmp_path, vlanTrunk=[{"minID": 10, "maxID": 20}])]
    path, code, checks = _doctor(tmp_path, lab, plugins)
    by_hand = [{**plugins[0], "ipam": {**plugins[0]["ipam"], "dataDir": str(tmp_path / "ipam-by-hand")}}]
    worked, said, result = _add(by_hand, node, pod)  # its own leases: the lab's up below takes 10.244.0.2 too
    if not worked or ip_json("-d", "link", "show", "dev", "cni0", netns=node)[0]["linkinfo"]["info_data"][
            "vlan_filtering"] == 1:  # a bridge plugin that reads it (v1.3.0 and on): VLAN filtering is needed
        assert checks["vlan_filtering"]["items"] == [{"plugin": "bridge", "field": "vlanTrunk", "pods": []}], checks
        return
    host = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))
    ports = json.loads(in_netns(node, "bridge", "-j", "vlan", "show", "dev", host, check=True).stdout or "[]")
    assert not any(p.get("vlans") for p in ports), ports  # no VLAN 10-20 on the pod's port: the trunk was ignored
    assert "vlan_filtering" not in checks and code == 0, checks.get("vlan_filtering")
    # the plugin found named: Debian's package, as dpkg says it installed it (not "Debian 12's is 1.1.1" on any machine)
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"],
                             capture_output=True, text=True, check=True).stdout
    said = (f"the bridge plugin {CNI_BIN}/bridge reads no vlanTrunk (added in containernetworking-plugins v1.3.0; it is "
            f"Debian's containernetworking-plugins {version}): the vlanTrunk of {tmp_path / 'n.conflist'} has no "
            "effect, its pods' ports get no VLANs and the bridge no VLAN filtering")
    plugins_line = checks["cni-plugins"]
    assert plugins_line["status"] == "warn" and said in plugins_line["detail"], plugins_line
    checked = netlab("validate", "-t", path, check=False)  # no root needed to read the binary: validate says it too
    assert checked.returncode == 0 and [line for line in checked.stderr.splitlines() if "vlanTrunk" in line] == [
        f"netlab: note: {path}:2: network.cni.conflist: {said}"], checked.stderr
    proc = netlab("up", "-t", path, check=False)  # refused before (exit 3): up now makes it, and says it
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [line for line in proc.stderr.splitlines() if "vlanTrunk" in line] == [
            f"netlab: warning: {said}"], proc.stderr
        [bridge] = ip_json("-d", "link", "show", "dev", "cni0", netns=f"{lab}-n1")
        assert bridge["linkinfo"]["info_data"]["vlan_filtering"] == 0
    finally:
        netlab("down", "--lab", lab, check=False)
