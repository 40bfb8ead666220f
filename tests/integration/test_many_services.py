"""A lab with enough Services that a new node's nat table is written with ``-Z`` first (plan/iptables.py's
ZERO_FIRST), through ``netlab up`` itself (root): the kernel holds exactly the plan, status finds nothing,
a second ``up`` changes nothing, and real connections to ClusterIPs reach their endpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import diff_snapshots, host_snapshot, in_netns, many_services_topology, netlab, unique_lab
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import services
from netlab.plan.iptables import ZERO_FIRST_CHAINS
from netlab.realize import netfilter_drift

pytestmark = pytest.mark.root

SERVICES = ZERO_FIRST_CHAINS // 2  # a Service of one endpoint: a KUBE-SVC and a KUBE-SEP chain each

CLIENT = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
          "s.sendall(b'hi\\n');print(s.recv(4096).decode().strip())")  # the echo server answers one line


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("msvc")
    path = tmp_path_factory.mktemp("many") / f"{name}.yaml"
    path.write_text(many_services_topology(name, SERVICES))
    before = host_snapshot()
    try:
        netlab("up", "-t", str(path))
        yield {"name": name, "path": str(path)}
    finally:
        netlab("down", "--lab", name, check=False)
    assert f"{name}-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert diff_snapshots(before, host_snapshot()) == []


def test_the_node_holds_exactly_the_plan_and_a_second_up_changes_nothing(lab):
    model = resolve(load_topology(lab["path"]))
    nat = next(r for r in services.resources(model) if r.kind == "nat" and r.table == "nat")
    assert len(nat.chains) >= ZERO_FIRST_CHAINS
    assert "-Z" in netfilter_drift.table_payload(nat, None).splitlines()  # what `up` wrote into the new node
    save = in_netns(f"{lab['name']}-n1", "iptables-save", "-t", "nat").stdout
    assert sorted(line for line in save.splitlines() if line.startswith("-A ")) == sorted(nat.rules)
    status = netlab("status", "--lab", lab["name"], check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    again = netlab("up", "-t", lab["path"], "-o", "json")
    assert json.loads(again.stdout)["changed"] is False


@pytest.mark.parametrize("i", [0, SERVICES - 1])
def test_a_cluster_ip_answers_from_its_endpoint(lab, i):
    client = f"{lab['name']}-p{(i + 1) % SERVICES}"
    proc = in_netns(client, sys.executable, "-c", CLIENT, f"10.96.1.{i + 1}", "80", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pod"] == f"p{i}", proc.stdout  # the echo server says which pod answered
