"""A conflist whose host-local gives pods IPv6 addresses is refused before any change (root, Debian's bridge and
host-local, real namespaces; QA cnf63 #4).

IPv6 is off in every lab namespace (disable_ipv6=1), and the kernel refuses an IPv6 address there: Debian's bridge
with isGateway failed every ADD ("could not add IP address to ...: permission denied", the gateway on its bridge) after
validate and doctor said ok, and up rolled back; without isGateway it turns IPv6 on for the pod's eth0 itself, and the
pod gets an address netlab neither plans nor shows. Both are shown with the plugins themselves in namespaces of the
test's own, IPv6 off as a lab has it (and on: the gateway's ADD passes); then validate and up refuse the conflist in
one line, nothing made."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from helpers import ip, netlab

pytestmark = pytest.mark.root

RANGES = [[{"subnet": "fd00::/64"}]]


def _add(node: str, pod: str, leases: str, gateway: bool = True) -> subprocess.CompletedProcess:
    conf = {"cniVersion": "1.0.0", "name": "v6", "type": "bridge", "bridge": "cf6br", "isGateway": gateway,
            "ipam": {"type": "host-local", "dataDir": leases, "ranges": RANGES}}
    env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "cf6", "CNI_NETNS": f"/run/netns/{pod}",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
    return subprocess.run(["ip", "netns", "exec", node, "/usr/lib/cni/bridge"], input=json.dumps(conf), env=env,
                          capture_output=True, text=True, timeout=30)


def _namespaces(tag: str, ipv6_off: str) -> tuple[str, str]:
    node, pod = f"cf6n{tag}", f"cf6p{tag}"
    for ns in (node, pod):
        ip("netns", "add", ns)
        for key in ("all", "default"):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6={ipv6_off}"],
                           check=True)
    return node, pod


def test_the_kernel_refuses_a_pods_ipv6_address_where_ipv6_is_off_and_up_refuses_the_conflist_first(labs, tmp_path):
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    try:
        node, pod = _namespaces(tag + "x", "1")
        made += [node, pod]
        off = _add(node, pod, str(tmp_path / "leases-off"))
        assert off.returncode != 0 and "permission denied" in off.stdout, off
        node, pod = _namespaces(tag + "y", "0")
        made += [node, pod]
        on = _add(node, pod, str(tmp_path / "leases-on"))
        assert on.returncode == 0 and json.loads(on.stdout)["ips"][0]["address"].startswith("fd00::"), on
        node, pod = _namespaces(tag + "z", "1")
        made += [node, pod]
        own = _add(node, pod, str(tmp_path / "leases-own"), gateway=False)  # it turns IPv6 on for eth0 itself
        assert own.returncode == 0 and json.loads(own.stdout)["ips"][0]["address"].startswith("fd00::"), own
        turned = subprocess.run(["ip", "netns", "exec", pod, "sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6"],
                                capture_output=True, text=True, check=True)
        assert turned.stdout.strip() == "0"
    finally:
        for ns in made:
            ip("netns", "del", ns, check=False)

    lab = labs.name("cf6")
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "v6", "plugins": [
        {"type": "bridge", "isGateway": True, "capabilities": {"ipRanges": True},
         "ipam": {"type": "host-local", "ranges": RANGES}}]}))
    (tmp_path / "t.yaml").write_text(f"name: {lab}\nnetwork: {{cni: {{conflist: net.conflist}}}}\n"
                                     "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods: [{name: a, node: n1}]\n")
    line = (f"network.cni.conflist: {tmp_path / 'net.conflist'}'s plugins[0] (bridge) ipam.ranges[0][0].subnet "
            "fd00::/64 gives pods an IPv6 address (host-local IPAM): labs are IPv4 only, with IPv6 off in every "
            "namespace")
    for command in ("validate", "up"):
        proc = netlab(command, "-t", str(tmp_path / "t.yaml"), check=False)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and line in proc.stderr, proc
    assert not [n for n in ip("netns", "list").stdout.split() if n.startswith(f"{lab}-")]
