"""The files netlab writes for pods (/etc/netns/<pod namespace>/resolv.conf and hosts), on real labs (root).

- Every pod sees the kubelet's managed hosts file (kubernetes pkg/kubelet/kubelet_pods.go,
  managedHostsFileContent) in `netlab exec`, `ip netns exec` and its containers: `hostname -i` prints
  the pod's IP, `getent hosts <pod>` finds it; a node's `hostname` is the node's name.
- An edited resolv.conf (hosts file) is drift: `status` names it, one `up` rewrites it (same
  inode, so a container that has it bind-mounted sees the repair) and says so.
- Every file and directory is recorded ("intent") before it is made, so an
  `up` killed right after writing one leaves nothing that `down` misses
  (NETLAB_FAULT_POINT=resolv-written, hosts-written, see netlab/services/lifecycle.py).
- `down` removes only files at paths derived from the lab's own namespace
  names that carry netlab's first line for this lab; an edited state file
  cannot point it anywhere else, and a hosts file someone else wrote is
  never written, nor removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from helpers import (as_planned_here, in_netns, lab_namespaces, netlab, someone_elses_etc_netns, state_path, up_here,
                     wait_for)
from netlab.realize.state_dir import STATE_ROOT
from netlab.services import netns_files

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
    path = labs.up_here(TOPOLOGY.format(lab=lab))
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
    assert as_planned_here(lab)
    hosts = in_netns(f"{lab}-fedora-1", "getent", "hosts", "web.default.svc.cluster.local")
    assert hosts.returncode == 0 and hosts.stdout.split()[0] == "10.96.0.20", hosts
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout, again.stdout


@pytest.mark.parametrize("mode", ["kill", "fail"])
@pytest.mark.parametrize("point", ["resolv-written", "hosts-written"])
def test_up_stopped_right_after_writing_a_pod_file_leaves_nothing_after_down(labs, point, mode):
    lab = labs.name("hci")
    env = {"NETLAB_FAULT_POINT": point, "NETLAB_FAULT_MODE": mode}
    _, proc = labs.up(TOPOLOGY.format(lab=lab), check=False, env=env)
    if mode == "kill":
        assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)  # killed at the fault point
        file = "resolv.conf" if point == "resolv-written" else "hosts"
        assert any(os.path.exists(f"/etc/netns/{ns}/{file}") for ns in lab_files(lab)), \
            f"the fault point is after the first {file} is written"
        down = netlab("down", "--lab", lab)
        assert "down" in down.stdout
    else:
        assert proc.returncode == 4 and "rolled back" in proc.stderr, proc.stderr
    assert lab_files(lab) == []
    assert lab_namespaces(lab) == []


def test_down_removes_only_netlab_files_at_the_lab_paths(labs):
    lab = labs.name("ec")
    labs.up_here(TOPOLOGY.format(lab=lab))
    # A look-alike: another namespace's directory holding a file with this lab's own first line.
    decoy_dir = f"/etc/netns/ecdecoy{uuid.uuid4().hex[:6]}"
    decoy = os.path.join(decoy_dir, "resolv.conf")
    with someone_elses_etc_netns(make=(decoy_dir,), leftovers=(f"/etc/netns/{lab}-fedora-2",)):
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


# --- the kubelet's hosts file, and a node's hostname ------------------------------------------------

HOSTS_TOPOLOGY = TOPOLOGY.replace("services:\n", """  - name: reader
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: main
        command: [sh, -c, "cat /etc/hosts; echo hostname-i $(hostname -i); getent hosts reader; sleep 3600"]
services:
""", 1)

# managedHostsFileContent for a pod without hostname, subdomain or hostAliases (kubelet_pods.go).
KUBELET_HOSTS = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")


def hosts(lab: str, pod: str) -> str:
    return f"/etc/netns/{lab}-{pod}/hosts"


def kubelet_hosts(lab: str, ip: str, pod: str) -> str:
    """netlab's first line, then exactly what the kubelet writes."""
    with open(hosts(lab, pod)) as fh:
        first = fh.readline()
    assert first.startswith(f"# netlab {lab}:"), first
    return first + KUBELET_HOSTS + f"{ip}\t{pod}\n"


def test_a_pod_sees_the_kubelets_hosts_file_and_a_node_its_own_name(labs):
    lab = labs.name("hci")
    labs.up_here(HOSTS_TOPOLOGY.format(lab=lab))
    want = kubelet_hosts(lab, "10.244.0.2", "fedora-1")
    out = netlab("exec", "--lab", lab, "fedora-1", "--", "sh", "-c",
                 "hostname -i; getent hosts fedora-1; cat /etc/hosts")
    lines = out.stdout.split("\n", 2)
    assert lines[0] == "10.244.0.2" and lines[1].split() == ["10.244.0.2", "fedora-1"], out.stdout
    assert lines[2] == want
    assert in_netns(f"{lab}-fedora-1", "getent", "hosts", "fedora-1").stdout.split() == ["10.244.0.2", "fedora-1"]
    assert in_netns(f"{lab}-fedora-1", "cat", "/etc/hosts").stdout == want
    dns_pod = netlab("exec", "--lab", lab, "kube-dns", "--", "cat", "/etc/hosts").stdout
    assert dns_pod.endswith("\tkube-dns\n") and KUBELET_HOSTS in dns_pod  # dnsPolicy Default changes resolv only

    # A container started by netlab has it mounted too.
    log = state_path(lab, "logs", "reader.main.log")

    def logged() -> str:
        try:
            with open(log) as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    assert wait_for(lambda: "reader" in logged().rsplit("hostname-i", 1)[-1], timeout=10), logged()
    text = logged()
    assert text.startswith(kubelet_hosts(lab, "10.244.0.9", "reader")), text
    assert "hostname-i 10.244.0.9\n" in text and "10.244.0.9      reader" in text

    # A node's hostname is its node name, as on a real node; only netlab's exec joins its UTS namespace.
    assert netlab("exec", "--lab", lab, "minikube", "--", "hostname").stdout == "minikube\n"
    assert netlab("exec", "--lab", lab, "minikube-m02", "--", "hostname").stdout == "minikube-m02\n"
    assert in_netns(f"{lab}-minikube", "hostname").stdout == os.uname().nodename + "\n"
    assert as_planned_here(lab)


def test_an_edited_hosts_file_is_repaired_in_place_and_a_lost_node_hostname_made_again(labs):
    lab = labs.name("hci")
    path = labs.up_here(TOPOLOGY.format(lab=lab))
    f = hosts(lab, "fedora-1")
    good = kubelet_hosts(lab, "10.244.0.2", "fedora-1")
    inode = os.stat(f).st_ino
    with open(f, "w") as fh:  # a learner's edit: netlab's first line is gone
        fh.write("127.0.0.1\tlocalhost\n")
    pin = state_path(lab, "uts", "minikube")
    subprocess.run(["umount", pin], check=True)  # the node's UTS namespace, lost

    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and f"{f} is different" in status.stdout, status.stdout
    assert "uts: node minikube: UTS namespace (hostname minikube) is missing" in status.stdout, status.stdout
    assert in_netns(f"{lab}-fedora-1", "getent", "hosts", "fedora-1").returncode != 0
    exec_ = netlab("exec", "--lab", lab, "minikube", "--", "hostname")
    assert exec_.stdout != "minikube\n" and "node minikube's UTS namespace is missing" in exec_.stderr

    up = netlab("up", "-t", path)
    assert f"rewrote {f} (it was edited)" in up.stdout, up.stdout
    assert "made node minikube's UTS namespace (hostname minikube)" in up.stdout, up.stdout
    with open(f) as fh:
        assert fh.read() == good
    assert os.stat(f).st_ino == inode  # rewritten in place: bind mounts of it see the repair
    assert in_netns(f"{lab}-fedora-1", "hostname", "-i").returncode == 1  # ip netns exec: the host's hostname
    assert netlab("exec", "--lab", lab, "fedora-1", "--", "hostname", "-i").stdout == "10.244.0.2\n"
    assert netlab("exec", "--lab", lab, "minikube", "--", "hostname").stdout == "minikube\n"
    assert as_planned_here(lab)
    assert "nothing to change" in netlab("up", "-t", path).stdout


def test_a_hosts_file_someone_else_wrote_is_never_written_nor_removed(labs):
    lab = labs.name("hci")
    theirs_dir = f"/etc/netns/{lab}-fedora-2"
    theirs = os.path.join(theirs_dir, "hosts")
    with someone_elses_etc_netns(make=(theirs_dir,), leftovers=(f"/etc/netns/{lab}-fedora-1",)):
        with open(theirs, "w") as fh:
            fh.write("192.0.2.7\tfedora-2\n")
        path, up = labs.up(TOPOLOGY.format(lab=lab))
        assert f"pod fedora-2: {theirs} exists and is not netlab's; left alone" in up.stdout + up.stderr, up
        assert netlab("exec", "--lab", lab, "fedora-2", "--", "hostname", "-i").stdout == "192.0.2.7\n"
        assert netlab("up", "-t", path, check=False).returncode == 0
        # A file of the lab's that a person rewrote entirely is theirs now: down leaves it.
        mine = hosts(lab, "fedora-1")
        with open(mine, "w") as fh:
            fh.write("10.0.0.1\tfedora-1\n")
        netlab("down", "--lab", lab)
        with open(theirs) as fh:
            assert fh.read() == "192.0.2.7\tfedora-2\n"
        assert os.path.exists(mine)
        assert lab_files(lab) == [f"{lab}-fedora-1", f"{lab}-fedora-2"]
        assert os.listdir(theirs_dir) == ["hosts"]  # netlab's resolv.conf went, theirs stayed


def test_status_says_the_pod_files_up_leaves_alone_as_up_does_and_exits_0(labs, tmp_path):
    """A hosts file someone wrote and a resolv.conf symlink: up leaves them and says so; status says the same as
    warnings, no drift, exit 0 (it said "different/missing ... up writes it again", exit 1, for ever)."""
    lab = labs.name("sy")
    b_dir, a_dir = f"/etc/netns/{lab}-fedora-2", f"/etc/netns/{lab}-fedora-1"
    decoy = tmp_path / "decoy-resolv"
    decoy.write_text("nameserver 192.0.2.53\n")
    with someone_elses_etc_netns(make=(b_dir, a_dir)):
        with open(os.path.join(b_dir, "hosts"), "w") as fh:
            fh.write("192.0.2.7\tfedora-2\n")
        os.symlink(decoy, os.path.join(a_dir, "resolv.conf"))
        path, up = labs.up(TOPOLOGY.format(lab=lab))
        left = [f"pod fedora-2: {b_dir}/hosts exists and is not netlab's; left alone",
                f"pod fedora-1: {a_dir}/resolv.conf exists and is not netlab's; left alone"]
        for line in left:
            assert line in up.stdout + up.stderr, up
        for _ in range(2):
            status = netlab("status", "--lab", lab, check=False)
            assert status.returncode == 0, status
            assert "up writes it again" not in status.stdout + status.stderr, status
            for line in left:
                assert f"netlab: warning: {line}" in status.stderr, status
            assert "nothing to change" in netlab("up", "-t", path).stdout
        netlab("down", "--lab", lab)
        assert decoy.read_text() == "nameserver 192.0.2.53\n"
        assert os.path.islink(os.path.join(a_dir, "resolv.conf"))


def test_a_pod_taken_out_of_the_topology_takes_its_files(labs):
    lab = labs.name("hci")
    path = labs.up_here(TOPOLOGY.format(lab=lab))
    assert os.path.exists(hosts(lab, "fedora-2"))
    smaller = TOPOLOGY.format(lab=lab).replace("  - {name: fedora-2, node: minikube-m02, ip: 10.244.1.3, labels: "
                                               "{app: web}}\n", "")
    assert "fedora-2" not in smaller.split("services:")[0]
    with open(path, "w") as fh:
        fh.write(smaller)
    up_here(path)
    assert f"{lab}-fedora-2" not in lab_files(lab) and os.path.exists(hosts(lab, "fedora-1"))


ONE_POD = """name: {lab}
nodes: [{{name: n1}}]
pods: [{{name: a, node: n1}}]
"""


def etc_netns_made_by_netlab() -> bool:
    return os.path.isdir("/etc/netns") and netns_files.made_by_netlab("/etc/netns")


def test_the_last_of_two_labs_to_go_removes_the_etc_netns_netlab_made(labs):
    """Labs side by side: the lab that made /etc/netns may go first; the last lab to leave removes it."""
    someone_elses = os.path.isdir("/etc/netns") and not etc_netns_made_by_netlab()
    first, second = labs.name("ea"), labs.name("eb")
    labs.up_here(ONE_POD.format(lab=first), "first.yaml")
    assert lab_files(first) == [f"{first}-a"]
    assert someone_elses or etc_netns_made_by_netlab()  # the mark of the /etc/netns netlab made
    labs.up_here(ONE_POD.format(lab=second), "second.yaml")
    netlab("down", "--lab", first)
    assert lab_files(first) == [] and lab_files(second) == [f"{second}-a"]
    netlab("down", "--lab", second)
    assert lab_files(second) == []
    if someone_elses:
        assert os.path.isdir("/etc/netns") and not etc_netns_made_by_netlab()  # theirs: never removed
    else:  # gone, unless another test's lab has a directory there right now
        assert not etc_netns_made_by_netlab() or os.listdir("/etc/netns"), "netlab's empty /etc/netns was left"
