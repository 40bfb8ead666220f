"""A pod's /etc/hostname is its own hostname, as the file containerd and CRI-O bind-mount there: for `netlab exec`
and for its command containers. QA: `netlab exec POD -- cat /etc/hostname` printed the VM's name. Nothing is left
on the host for it: the host's /etc/hostname is untouched, before, during and after."""

from __future__ import annotations

import socket
import time

import pytest

from helpers import lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_exec_and_a_command_container_see_the_pods_hostname_in_etc_hostname(tmp_path):
    name = unique_lab("nd")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes:
  - name: n1
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1, hostname: bee, containers: [{{name: c, command: [sh, -c, "cat /etc/hostname; sleep 600"]}}]}}
""")
    with open("/etc/hostname") as fh:
        host = fh.read()
    with lab_up(path, name, in_process=True):
        assert netlab("exec", "--lab", name, "a", "--", "cat", "/etc/hostname").stdout == "a\n"
        assert netlab("exec", "--lab", name, "b", "--", "cat", "/etc/hostname").stdout == "bee\n"
        netlab("exec", "--lab", name, "a", "--", "test", "-f", str(path))  # /tmp (its tmpfs's moment) as the host's
        for _ in range(50):
            logs = netlab("logs", "--lab", name, "b", "-c", "c", check=False).stdout
            if logs:
                break
            time.sleep(0.1)
        assert logs == "bee\n"
        with open("/etc/hostname") as fh:
            assert fh.read() == host
        assert socket.gethostname() != "bee"
    with open("/etc/hostname") as fh:
        assert fh.read() == host
