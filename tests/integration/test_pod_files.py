"""The files netlab writes for pods (/etc/netns/<pod namespace>/resolv.conf), on real labs (root).

- An edited resolv.conf is drift: `status` names it, one `up` rewrites it (same
  inode, so a container that has it bind-mounted sees the repair) and says so.
- Every file and directory is recorded ("intent") before it is made, so an
  `up` killed right after writing one leaves nothing that `down` misses
  (NETLAB_FAULT_POINT=resolv-written, see netlab/services/lifecycle.py).
- `down` removes only files at paths derived from the lab's own namespace
  names that carry netlab's first line for this lab; an edited state file
  cannot point it anywhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from helpers import in_netns, lab_namespaces, netlab
from netlab.realize.state_dir import STATE_ROOT

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network:
  mode: vxlan
  underlay: {{cidr: 192.168.122.0/24, mtu: 1500}}
nodes:
  - {{name: minikube, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
  - {{name: minikube-m02, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: fedora-1, node: minikube, ip: 10.244.0.2, labels: {{app: web}}}}
  - {{name: fedora-2, node: minikube-m02, ip: 10.244.1.3, labels: {{app: web}}}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{port: 80, targetPort: 8080}}]
"""


def resolv(lab: str, pod: str) -> str:
    return f"/etc/netns/{lab}-{pod}/resolv.conf"


def lab_files(lab: str) -> list[str]:
    """Every entry under /etc/netns named after one of the lab's namespaces."""
    try:
        return sorted(n for n in os.listdir("/etc/netns") if n.startswith(f"{lab}-"))
    except FileNotFoundError:
        return []


def test_an_edited_resolv_conf_is_repaired_and_up_says_so(labs):
    lab = labs.name("ec")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    f = resolv(lab, "fedora-1")
    with open(f) as fh:
        good = fh.read()
    assert good.startswith(f"# netlab {lab}:") and "nameserver 10.96.0.10" in good
    inode = os.stat(f).st_ino
    with open(f, "w") as fh:  # a learner's edit: netlab's first line is gone
        fh.write("nameserver 192.0.2.53\noptions timeout:1 attempts:1\n")

    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and f"{f} is different" in status.stdout, status.stdout
    assert in_netns(f"{lab}-fedora-1", "getent", "hosts", "web.default.svc.cluster.local").returncode != 0

    up = netlab("up", "-t", path)
    assert "nothing to change" not in up.stdout, up.stdout
    assert f"rewrote {f}" in up.stdout, up.stdout
    with open(f) as fh:
        assert fh.read() == good
    assert os.stat(f).st_ino == inode  # rewritten in place: bind mounts of it see the repair
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    hosts = in_netns(f"{lab}-fedora-1", "getent", "hosts", "web.default.svc.cluster.local")
    assert hosts.returncode == 0 and hosts.stdout.split()[0] == "10.96.0.20", hosts
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout, again.stdout


@pytest.mark.parametrize("mode", ["kill", "fail"])
def test_up_stopped_right_after_writing_resolv_conf_leaves_nothing_after_down(labs, mode):
    lab = labs.name("ec")
    env = {"NETLAB_FAULT_POINT": "resolv-written", "NETLAB_FAULT_MODE": mode}
    _, proc = labs.up(TOPOLOGY.format(lab=lab), check=False, env=env)
    if mode == "kill":
        assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)  # killed at the fault point
        assert lab_files(lab), "the fault point is after the first resolv.conf is written"
        down = netlab("down", "--lab", lab)
        assert "down" in down.stdout
    else:
        assert proc.returncode == 4 and "rolled back" in proc.stderr, proc.stderr
    assert lab_files(lab) == []
    assert lab_namespaces(lab) == []


def test_down_removes_only_netlab_files_at_the_lab_paths(labs):
    lab = labs.name("ec")
    labs.up(TOPOLOGY.format(lab=lab))
    # A look-alike: another namespace's directory holding a file with this lab's own first line.
    decoy_dir = f"/etc/netns/ecdecoy{uuid.uuid4().hex[:6]}"
    os.makedirs(decoy_dir)
    decoy = os.path.join(decoy_dir, "resolv.conf")
    try:
        with open(decoy, "w") as fh:
            fh.write(f"# netlab {lab}: not this lab's path\n")
        state_path = os.path.join(STATE_ROOT, lab, "state.json")
        with open(state_path) as fh:
            state = json.load(fh)
        rec = state["extra"]["services"]
        # A well-formed record naming another namespace (an unsafe name such as "../../tmp" makes the
        # whole state corrupt: tests/unit/test_state_schema.py).
        rec["resolv"][os.path.basename(decoy_dir)] = "created"
        rec["dirs"][os.path.basename(decoy_dir)] = "created"
        with open(state_path, "w") as fh:
            json.dump(state, fh)
        # A file of the lab's that a person rewrote entirely is theirs now: down leaves it.
        mine = resolv(lab, "fedora-2")
        with open(mine, "w") as fh:
            fh.write("nameserver 192.0.2.53\n")
        netlab("down", "--lab", lab)
        assert os.path.exists(decoy)
        assert os.path.exists(mine)
        assert lab_files(lab) == [f"{lab}-fedora-2"]
    finally:
        shutil.rmtree(decoy_dir, ignore_errors=True)
        shutil.rmtree(f"/etc/netns/{lab}-fedora-2", ignore_errors=True)
