"""Every namespace `netlab exec` runs in has a UTS namespace of its own, whose hostname is the name the topology
gives it: pods, nodes, internet hosts, the gateway and the underlay (workload/node_uts.py). An internet host, the
gateway and the underlay showed the machine's hostname: they shared the host's. (A LoadBalancer has no namespace of
its own: the gateway routes its IP to the nodes.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers import lab_namespaces, netlab, state_path, write_topology

pytestmark = pytest.mark.root


def topology(lab: str, balancer: bool = True) -> str:
    kind = "type: LoadBalancer, " if balancer else ""
    return f"""name: {lab}
nodes: [{{name: n1}}]
pods: [{{name: web, node: n1, labels: {{app: web}}}}]
services: [{{name: web, {kind}selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}]
internet: {{cidr: 203.0.113.0/24, gateway: {{ip: 203.0.113.1}}, hosts: [{{name: example, ip: 203.0.113.10}}]}}
"""


def pins(lab: str) -> list[str]:
    udir = os.path.realpath(state_path(lab, "uts"))
    with open("/proc/self/mountinfo") as fh:
        points = [line.split(" ")[4] for line in fh]
    return sorted(os.path.basename(p) for p in points if p.startswith(udir + "/"))


def hostname(lab: str, name: str) -> str:
    return netlab("exec", "--lab", lab, name, "--", "hostname").stdout.strip()


def test_every_exec_target_has_its_own_hostname_and_down_takes_them_all(labs):
    lab = labs.name("uts")
    path, _ = labs.up(topology(lab))
    targets = ["web", "kube-dns", "n1", "example", "gateway", "underlay"]
    assert pins(lab) == sorted(targets)
    host = os.uname().nodename
    for name in targets:
        assert hostname(lab, name) == name
    assert os.uname().nodename == host  # the host's own is never changed
    assert netlab("status", "--lab", lab).returncode == 0
    # A pin unmounted by hand: status names it, exec says so, up makes it again.
    subprocess.run(["umount", "-l", os.path.realpath(state_path(lab, "uts", "example"))], check=True)
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and "uts: host example: UTS namespace (hostname example) is missing" in st.stdout
    ran = netlab("exec", "--lab", lab, "example", "--", "hostname")
    assert ran.stdout.strip() == host and "host example's UTS namespace is missing" in ran.stderr
    assert "made host example's UTS namespace (hostname example)" in netlab("up", "-t", path).stdout
    assert hostname(lab, "example") == "example"
    # The gateway's route of the LoadBalancer IP goes with the lab's last LoadBalancer Service; no pin comes or goes.
    routes = subprocess.run(["ip", "-n", f"{lab}-gateway", "route"], capture_output=True, text=True, check=True)
    assert "203.0.113.254 via " in routes.stdout, routes.stdout
    write_topology(Path(path).parent, topology(lab, balancer=False))
    netlab("up", "-t", path)
    routes = subprocess.run(["ip", "-n", f"{lab}-gateway", "route"], capture_output=True, text=True, check=True)
    assert "203.0.113.254" not in routes.stdout and pins(lab) == sorted(targets), routes.stdout
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))
    with open("/proc/self/mountinfo") as fh:
        assert not [line for line in fh if f"/{lab}/" in line]
