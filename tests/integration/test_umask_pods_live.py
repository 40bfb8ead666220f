"""The umask of the netlab that brings a lab up reaches no pod (root, QA hostenv57 1): ``(umask 077; netlab up)``
made /etc/netns/<pod>/ 0700 and its hosts and resolv.conf 0600, so a pod's process of another user could not
resolve a Service's name, and a command container started with umask 0077 where the kubelet's start with 0022."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from helpers import NETLAB, netlab

pytestmark = pytest.mark.root


def _topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: w1
    node: n1
    labels: {{app: web}}
    containers: [{{name: http, ports: [{{containerPort: 8080}}]}}]
  - name: c1
    node: n1
    containers: [{{name: sh, command: [sh, -c, "umask; exec sleep 1000"]}}]
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def _up_with_umask(path: str, umask: int) -> subprocess.CompletedProcess:
    return subprocess.run([*NETLAB, "up", "-t", path], capture_output=True, text=True, timeout=300, umask=umask)


def _mode(path: str) -> int:
    return os.stat(path).st_mode & 0o777


def test_a_umask_077_up_gives_pods_the_kubelets_modes_and_umask(labs, tmp_path):
    lab = labs.name("he")
    path = str(tmp_path / "topo.yaml")
    with open(path, "w") as fh:
        fh.write(_topology(lab))
    proc = _up_with_umask(path, 0o077)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for pod in ("w1", "c1"):
        folder = f"/etc/netns/{lab}-{pod}"
        assert _mode(folder) == 0o755
        for name in ("hosts", "resolv.conf"):
            assert _mode(f"{folder}/{name}") == 0o644, name
    got = netlab("exec", "--lab", lab, "w1", "--", "setpriv", "--reuid", "65534", "--regid", "65534",
                 "--clear-groups", "getent", "hosts", "web.default.svc.cluster.local", check=False)
    assert got.returncode == 0 and got.stdout.split()[1:] == ["web.default.svc.cluster.local"], got.stdout + got.stderr
    deadline = time.monotonic() + 10
    while (log := netlab("logs", "--lab", lab, "c1").stdout) == "" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log == "0022\n"
    in_container = subprocess.run([*NETLAB, "exec", "--lab", lab, "c1", "-c", "sh", "--", "sh", "-c", "umask"],
                                  capture_output=True, text=True, timeout=60, umask=0o077)
    assert in_container.stdout == "0022\n", in_container.stderr  # kubectl exec -c: the container's umask
    in_pod = subprocess.run([*NETLAB, "exec", "--lab", lab, "c1", "--", "sh", "-c", "umask"],
                            capture_output=True, text=True, timeout=60, umask=0o077)
    assert in_pod.stdout == "0077\n", in_pod.stderr  # ip netns exec's: the caller's own
    assert "all as planned" in netlab("status", "--lab", lab).stdout


def test_status_says_a_pods_file_of_the_wrong_mode_and_up_repairs_it(labs, tmp_path):
    lab = labs.name("he")
    path, _ = labs.up(_topology(lab))
    hosts = f"/etc/netns/{lab}-w1/hosts"
    os.chmod(hosts, 0o600)
    proc = netlab("status", "--lab", lab, check=False)
    assert proc.returncode != 0 and f"hosts: {hosts} is mode 0600, not 0644" in proc.stdout, proc.stdout
    proc = _up_with_umask(path, 0o077)
    assert proc.returncode == 0 and f"rewrote {hosts} (its mode was 0600)" in proc.stdout, proc.stdout + proc.stderr
    assert _mode(hosts) == 0o644
    assert "all as planned" in netlab("status", "--lab", lab).stdout
