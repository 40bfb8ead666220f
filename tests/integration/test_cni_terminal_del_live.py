"""A pod that terminates in a lab whose CNI plugins attach its pods has its sandbox's CNI DEL run, as a kubelet stops
a terminal pod's sandbox and containerd's StopPodSandbox DELs it (root).

With Debian's bridge + host-local + portmap (a conflist, as test_cni_hostport's), a pod whose command serves its
hostPort answers through portmap's DNAT while it runs; once it exits 0 (restartPolicy Never: Completed) `status`
says its DEL has not run, and the next `up` runs it: portmap's CNI-DN chain and dispatch rule go, host-local's lease
file goes, the pod's eth0 goes with its namespace, `status` says all as planned, `get pods` keeps its IP (as the API keeps a Completed
pod's podIP), a second `up` runs no plugin for it, and `down` is clean. In reference mode (bridge alone) the plan
holds the pod side of an attached pod (and refuses a hostPort: no portmap): after the DEL status compares none of
it, and finds nothing missing.
Before, nothing happened: the rules, the lease and the veth stayed as long as the lab ran.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import ipv4_of, lab_namespaces, netlab, traced, wait_for
from netlab import Lab
from netlab.api.jsonio import to_json
from test_terminal_hostport_live import SERVER, dial  # the pod's job serving 8080, dialled from pod b

pytestmark = pytest.mark.root

STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"
CONFLIST = {"cniVersion": "1.0.0", "name": "tmnet", "disableCheck": True, "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
     "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}
TOPOLOGY = """name: {lab}
network: {{mode: host-gw, cni: {cni}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1, restartPolicy: Never,
      containers: [{{name: job, command: [python3, {server}, {go}], ports: [{{containerPort: 8080{host}}}]}}]}}
  - {{name: b, node: n2}}
"""
def nat_rules(netns: str) -> list[str]:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"], check=True,
                          capture_output=True, text=True).stdout.splitlines()


def leases(lab: str, node: str) -> list[str]:
    """host-local's lease files of the node (a file per leased address, in the lab's state directory)."""
    return sorted(p.name for p in Path(STATE, lab, "cni", "networks", node).glob("*/*") if p.name[0].isdigit())


def pod_a(lab: str) -> dict:
    return next(to_json(p) for p in Lab(lab).pods() if p.name == "a")


def calls_for_a(lab: str) -> list[tuple[str, str]]:
    calls = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]
    return [(c["command"], c["plugin"]) for c in calls if c["pod"] == "a" and c["command"] in ("ADD", "DEL")]


def terminate(lab: str, go: Path) -> None:
    go.touch()
    assert wait_for(lambda: pod_a(lab)["status"] == "Completed", 20), pod_a(lab)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    assert ("  cni: pod a has terminated (its containers exited for good: Completed or Error), but its sandbox's CNI "
            "DEL has not run: its plugins' state stays (its eth0, its address's lease, its hostPort rules); up runs "
            "it, as a kubelet stops a terminated pod's sandbox") in status.stdout.splitlines(), status.stdout


def test_a_terminal_pod_s_sandbox_is_deled_its_host_port_rules_and_lease_go(labs, tmp_path):
    (tmp_path / "tm.conflist").write_text(json.dumps(CONFLIST))
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("tm")
    path, _ = labs.up(TOPOLOGY.format(lab=lab, cni="{conflist: tm.conflist}", server=server, go=go, host=", hostPort: 18080"))
    n1 = f"{lab}-n1"
    a_ip, n1_ip = ipv4_of(f"{lab}-a", "eth0"), ipv4_of(n1, "eth0")

    # running: portmap's DNAT takes the other node's connection to the pod's server; host-local leased its address
    assert wait_for(lambda: dial(lab, n1_ip) == "job", 10), dial(lab, n1_ip)
    assert [r for r in nat_rules(n1) if r.startswith("-A CNI-DN-") and f"--to-destination {a_ip}:8080" in r]
    assert a_ip in leases(lab, "n1")
    added = calls_for_a(lab)

    # it exits 0: Completed; status says its sandbox's DEL has not run, and up runs it
    terminate(lab, go)
    up = netlab("up", "-t", path)
    assert ("ran the CNI DEL of terminated pod a's sandbox (its containers exited for good: Completed or Error): a "
            "kubelet stops such a pod's sandbox, and its plugins took back what their ADD made (its eth0, its "
            "address's lease, its hostPort rules)") in up.stdout, up.stdout
    assert calls_for_a(lab) == added + [("DEL", plugin) for _, plugin in reversed(added)]  # each plugin's, once

    # what the plugins made for it is gone; portmap's shared chains stay, as its DEL leaves them
    rules = nat_rules(n1)
    assert not [r for r in rules if r.startswith("-A CNI-DN-") or "dnat name:" in r], rules
    assert ":CNI-HOSTPORT-DNAT - [0:0]" in rules, rules
    assert a_ip not in leases(lab, "n1")
    assert f"{lab}-a" not in lab_namespaces(lab)  # removed with the stopped sandbox, as containerd removes it
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    got = pod_a(lab)
    assert (got["status"], got["ip"], got["network_detached"]) == ("Completed", a_ip, False), got

    # real traffic: the node refuses the hostPort; trace says why and blames nothing
    assert dial(lab, n1_ip) == "ConnectionRefusedError"
    code, after = traced(lab, "b", "n1", "--port", "18080")
    assert code == 1 and after["endpoint"] is None, after
    assert after["refused"].endswith("tcp port 18080 of n1 is pod a's hostPort, but pod a has terminated (its "
                                     "containers exited for good: Completed or Error): a kubelet stops a terminated "
                                     "pod's sandbox, whose CNI DEL took out portmap's DNAT of it"), after["refused"]
    assert not [h for h in after["hops"] if h.get("problem")], after["hops"]

    # up again: nothing for the pod (no ADD, no second DEL)
    before = calls_for_a(lab)
    assert "CNI DEL" not in netlab("up", "-t", path).stdout
    assert calls_for_a(lab) == before

    down = netlab("down", "--lab", lab)
    assert down.stderr == "", down.stderr
    assert not lab_namespaces(lab)
    assert not Path(STATE, lab).exists()


def test_a_reference_lab_s_terminal_pod_is_deled_and_status_expects_none_of_its_pod_side(labs, tmp_path):
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("tm")
    path, _ = labs.up(TOPOLOGY.format(lab=lab, cni="reference", server=server, go=go, host=""))
    a_ip = ipv4_of(f"{lab}-a", "eth0")
    assert a_ip in leases(lab, "n1")

    terminate(lab, go)
    assert "ran the CNI DEL of terminated pod a's sandbox" in netlab("up", "-t", path).stdout
    assert a_ip not in leases(lab, "n1")
    assert f"{lab}-a" not in lab_namespaces(lab)  # removed with the stopped sandbox, as containerd removes it
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    assert (pod_a(lab)["status"], pod_a(lab)["ip"]) == ("Completed", a_ip)
    probe = netlab("probe", "--lab", lab, check=False)
    assert probe.returncode == 0, probe.stdout + probe.stderr

    down = netlab("down", "--lab", lab)
    assert down.stderr == "", down.stderr
    assert not lab_namespaces(lab)
