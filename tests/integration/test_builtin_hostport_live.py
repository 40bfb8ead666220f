"""A builtin lab's hostPort, through the portmap rules netlab writes as the node's 10-flannel.conflist's portmap
would (root).

validate refused it ("network.cni builtin runs none"), though every node's conflist chains portmap, as a real
Flannel cluster does, where hostPort works. Now the node's nat table holds exactly the rules Debian's portmap
(/usr/lib/cni/portmap, run here in a scratch namespace with the pod's container id) makes for the pod's ADD,
in kube-proxy's iptables and nftables modes; real traffic from the other node and from the internet host reaches
the pod, and so does the node's own 127.0.0.1; inspect shows portmap's rules; a trace to the hostPort lists the
nat table in both modes and sees the pod, and one from the pod to its own hostPort says it hairpins through
portmap's DNAT; a deleted DNAT is named by status and by trace (with its fix) and put back by up; the machine's
own namespace is untouched.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import in_netns, ipv4_of, lab_namespaces, netlab
from netlab.errors import netlab_command
from netlab.plan.portmap_rules import container_id

pytestmark = pytest.mark.root


def topology(lab: str, mode: str) -> str:
    return (f"name: {lab}\nnetwork: {{mode: host-gw}}\ncluster: {{kubeProxyMode: {mode}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
            "pods:\n"
            "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, hostPort: 18080}]}]}\n"
            "  - {name: b, node: n2}\n"
            "internet:\n  cidr: 203.0.113.0/24\n  gateway: {ip: 203.0.113.1}\n"
            "  hosts: [{name: example, ip: 203.0.113.10}]\n")


def saved(netns: str | None, table: str = "nat", backend: str = "") -> list[str]:
    """``iptables-save`` of a namespace (None: the machine's own), without its comments and counters."""
    argv = [f"iptables-{backend}-save" if backend else "iptables-save"] + (["-t", table] if table else [])
    out = subprocess.run((["ip", "netns", "exec", netns] if netns else []) + argv, check=True, capture_output=True,
                         text=True).stdout.splitlines()
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in out if not line.startswith("#")]


def portmaps(lines: list[str]) -> list[str]:
    return [line for line in lines if "CNI-" in line]


def real_plugin(lab: str, pod_ip: str, commands: tuple[str, ...] = ("ADD",)) -> list[str]:
    """What Debian's portmap makes for pod a's ADD (network cbr0, netlab's container id for the pod), in a scratch
    namespace of this test's own; ``commands``: ("ADD", "DEL") what its DEL then leaves."""
    scratch = f"{lab}-pm"
    conf = {"cniVersion": "0.3.1", "name": "cbr0", "type": "portmap", "capabilities": {"portMappings": True},
            "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp",
                                                "hostIP": ""}]},
            "prevResult": {"cniVersion": "0.3.1", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                           "ips": [{"version": "4", "address": f"{pod_ip}/24", "interface": 0}]}}
    subprocess.run(["ip", "netns", "add", scratch], check=True)
    try:
        for command in commands:
            env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id(lab, "a"),
                   "CNI_NETNS": f"/run/netns/{scratch}", "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni",
                   "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            subprocess.run(["ip", "netns", "exec", scratch, "/usr/lib/cni/portmap"], input=json.dumps(conf), env=env,
                           check=True, capture_output=True, text=True)
        return portmaps(saved(scratch))
    finally:
        subprocess.run(["ip", "netns", "del", scratch], check=True)


def answers(netns: str, address: str) -> dict | None:
    """What the echo server says to ``curl http://address:18080/`` from ``netns`` (None: no answer)."""
    got = in_netns(netns, "curl", "-s", "-m", "5", f"http://{address}:18080/")
    return json.loads(got.stdout) if got.returncode == 0 and got.stdout.strip() else None


@pytest.mark.parametrize("mode, backend", [("iptables", ""), ("nftables", ""), ("iptables", "legacy")])
def test_a_builtin_pod_s_host_port_is_portmap_s_dnat_and_status_trace_and_up_know_it(labs, mode, backend):
    """``backend``: the lab's iptables (NETLAB_IPTABLES; "" the machine's, iptables-nft on Debian 12), which its
    rules, portmap's with them, are in, as a node's plugins use the node's ``iptables``."""
    host = [saved(None, "", b) for b in ("nft", "legacy")]
    lab = labs.name("ht")
    path, _ = labs.up(topology(lab, mode), env={"NETLAB_IPTABLES": backend} if backend else None)
    n1, a_ip = f"{lab}-n1", ipv4_of(f"{lab}-a", "eth0")
    n1_ip = ipv4_of(n1, "eth0")

    # the node's chains are those the real plugin makes, rule for rule and in its order
    ours = portmaps(saved(n1, backend=backend))
    assert not portmaps(saved(n1, backend="nft" if backend == "legacy" else "legacy"))
    assert ours == real_plugin(lab, a_ip), ours
    [dnat] = [line for line in ours if "-j DNAT" in line]
    assert dnat.endswith(f"--dport 18080 -j DNAT --to-destination {a_ip}:8080"), dnat
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")

    # real traffic: the other node and the internet host reach pod a at n1's address and hostPort
    for client in (f"{lab}-n2", f"{lab}-example"):
        said = answers(client, n1_ip)
        assert said is not None and said["pod"] == "a" and said["server"] == f"{a_ip}:8080", (client, said)
    # and the node itself at 127.0.0.1: portmap's route_localnet=1 on cni0 (nftables mode leaves all's 0)
    said = answers(n1, "127.0.0.1")
    assert said is not None and said["pod"] == "a" and said["server"] == f"{a_ip}:8080", said

    # inspect shows portmap's chains and the node's jumps into them, which status checks (QA: hidden)
    shown = json.loads(netlab("inspect", "--lab", lab, "n1", "-s", "iptables", "-o", "json").stdout)["iptables"]
    shown_nat = [re.sub(r"^\[\d+:\d+\] ", "", line) for line in shown["nat"]]
    assert [line for line in shown_nat if "CNI-" in line and line.startswith("-A")] == \
        [line for line in ours if line.startswith("-A")], shown_nat
    for hook in ("PREROUTING", "OUTPUT", "POSTROUTING"):
        assert any(line.startswith(f"-A {hook} ") and "-j CNI-HOSTPORT-" in line for line in shown_nat), hook

    # a trace to the hostPort: portmap's DNAT row lists the nat table (iptables in both modes, QA: nft's table in
    # nftables mode), and the pod behind the port is captured, so the row that delivers to it is seen
    traced = json.loads(netlab("trace", "--lab", lab, "b", "n1", "--port", "18080", "-o", "json").stdout)
    [row] = [h for h in traced["hops"] if h["kind"] == "dnat" and h["netns"] == n1]
    ipt = "iptables-legacy" if backend == "legacy" else "iptables"  # the lab's own (the machine's plain one is nft)
    assert f"ip netns exec {n1} {ipt}-save -c -t nat" in row["commands"], row
    assert not [c for c in row["commands"] if "nft " in c], row
    assert [h["seen"] for h in traced["hops"] if h["kind"] == "deliver"] == [True], traced["hops"]
    assert traced["hops"][-1]["netns"] == f"{lab}-a", traced["hops"]

    # pod a to its own hostPort: back through portmap's DNAT and the mark's masquerade, no Service's
    hairpin = netlab("trace", "--lab", lab, "a", "n1", "--port", "18080").stdout
    said = next(line for line in hairpin.splitlines() if line.startswith("result:"))
    assert said.startswith(f"result: delivered to a, whose hostPort is n1:18080 (portmap DNATed it to {a_ip}:8080) "
                           "(itself, through its hostPort: portmap's DNAT on n1 sent it back to the pod, n1's "
                           "bridge cni0 sending the frame back out the port it came in on"), hairpin
    assert "CNI-HOSTPORT-MASQ's MASQUERADE" in said and "Service" not in said, said

    # the DNAT deleted by hand: the connection is refused, status names the rule, trace the lost DNAT in the pod's
    # chain (the dispatch still jumps there) and the command that puts it back
    restore = f"iptables-{backend or 'nft'}-restore"
    subprocess.run(["ip", "netns", "exec", n1, restore, "--noflush"], input=f"*nat\n-D{dnat[2:]}\nCOMMIT\n",
                   text=True, check=True)
    assert answers(f"{lab}-n2", n1_ip) is None
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode != 0 and f"missing rule: {dnat}" in status.stdout, status.stdout
    refused = netlab("trace", "--lab", lab, "b", "n1", "--port", "18080", check=False)
    trace = refused.stdout
    assert refused.returncode != 0
    chain = dnat.split()[1]
    assert (f"tcp port 18080 of n1 is pod a's hostPort, but portmap's DNAT of its hostPort 18080/tcp to "
            f"{a_ip}:8080 is gone: the pod's chain {chain}, where CNI-HOSTPORT-DNAT sends 18080/tcp, has no "
            f"`{dnat}`; up writes the node's nat rules again") in trace, trace
    # the fix names the lab's backend's own iptables: copied into a shell, it edits the ruleset the lab is in
    fix = f"ip netns exec {n1} {ipt} -t nat {dnat}"
    assert any(line.startswith(f"  fix: {fix}   (or: {netlab_command('up')} ") and line.endswith(", which repairs the lab)")
               for line in trace.splitlines()), trace
    assert f"(ip netns exec {n1} {ipt}-save -t nat)" in trace, trace
    subprocess.run(fix.split(), check=True)  # the fix, run as trace gives it, puts back the lab's rule
    assert portmaps(saved(n1, backend=backend)) == ours
    assert answers(f"{lab}-n2", n1_ip)["pod"] == "a"
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    if backend:
        subprocess.run(["ip", "netns", "exec", n1, restore, "--noflush"], input=f"*nat\n-D{dnat[2:]}\nCOMMIT\n",
                       text=True, check=True)
    else:
        # the dispatch's jump deleted: trace names it, and its fix (with portmap's comment) is what status plans
        [jump] = [line for line in ours if line.startswith("-A CNI-HOSTPORT-DNAT ")]
        subprocess.run(["ip", "netns", "exec", n1, restore, "--noflush"], input=f"*nat\n-D{jump[2:]}\nCOMMIT\n",
                       text=True, check=True)
        trace = netlab("trace", "--lab", lab, "b", "n1", "--port", "18080", check=False).stdout
        assert (f"no rule of the node's nat CNI-HOSTPORT-DNAT jumps to the pod's chain {chain} for 18080/tcp (its "
                "DNAT there is intact)") in trace, trace
        [again] = [line[len("  fix: "):].split("   (or: ")[0] for line in trace.splitlines()
                   if line.startswith("  fix: ")]
        subprocess.run(["bash", "-c", again], check=True)
        assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
        assert answers(f"{lab}-n2", n1_ip)["pod"] == "a"
        subprocess.run(["ip", "netns", "exec", n1, restore, "--noflush"], input=f"*nat\n-D{dnat[2:]}\nCOMMIT\n",
                       text=True, check=True)

    # up puts it back; trace follows it to the pod
    assert "restore iptables nat in " + n1 in netlab("up", "-t", path).stdout
    assert portmaps(saved(n1, backend=backend)) == ours
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert answers(f"{lab}-example", n1_ip)["pod"] == "a"
    trace = netlab("trace", "--lab", lab, "b", "n1", "--port", "18080").stdout
    assert f"result: delivered to a, whose hostPort is n1:18080 (portmap DNATed it to {a_ip}:8080)" in trace, trace

    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
    assert [saved(None, "", b) for b in ("nft", "legacy")] == host  # the machine's own namespace: nothing of the lab's, nothing changed


def test_a_node_keeps_portmap_s_shared_chains_after_its_last_host_port_goes_as_the_real_del_leaves_them(labs):
    """portmap's DEL takes out the pod's CNI-DN- chain and its dispatch rule alone: CNI-HOSTPORT-DNAT (empty),
    -SETMARK, -MASQ and their jumps stay. netlab deleted them all when an up took out the node's last hostPort.
    Now the running lab's node keeps what the real plugin's ADD then DEL leave, status says all as planned, and
    the same file brought up afresh has none."""
    lab = labs.name("hf")
    text = topology(lab, "iptables")
    path, _ = labs.up(text)
    n1, a_ip = f"{lab}-n1", ipv4_of(f"{lab}-a", "eth0")
    assert portmaps(saved(n1))
    without = text.replace(", hostPort: 18080", "")
    assert without != text
    path, _ = labs.up(without)
    left = portmaps(saved(n1))
    assert left == real_plugin(lab, a_ip, ("ADD", "DEL")), left
    assert "-A CNI-HOSTPORT-DNAT" not in "\n".join(left) and not [line for line in left if "CNI-DN-" in line]
    assert not portmaps(saved(f"{lab}-n2"))
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert "restore iptables nat" not in netlab("up", "-t", path).stdout  # nothing to change
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
    labs.up(without)
    assert not portmaps(saved(n1))
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
