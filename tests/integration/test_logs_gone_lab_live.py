"""`netlab logs` of a lab `netlab list` shows gone (every namespace of it deleted by hand, `ip netns delete`; its
state and logs left): the log is printed, after the line status, exec, probe and get say of the lab, exit 3 as
theirs (root; the last pass's Left: logs was not checked, it printed the log, exit 0, and said nothing)."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import lab_down, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, containers: [{{name: main, command: [sh, -c, "echo served 3 requests; sleep infinity"]}}]}}
"""


def test_logs_of_a_gone_lab_prints_its_log_after_status_s_line(tmp_path):
    lab = unique_lab("wa")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        assert netlab("logs", "--lab", lab, "a").stdout == "served 3 requests\n"
        for name in lab_namespaces(lab):  # this lab's own, by exact name
            subprocess.run(["ip", "netns", "delete", name], check=True)
        assert lab_namespaces(lab) == []
        rows = json.loads(netlab("list", "-o", "json").stdout)
        assert [r["phase"] for r in rows if r["lab"] == lab] == ["gone"]
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 3 and status.stdout == "" and len(status.stderr.splitlines()) == 1, status
        for args in ((), ("-f",)):
            r = netlab("logs", "--lab", lab, "a", *args, check=False)
            assert (r.returncode, r.stdout, r.stderr) == (3, "served 3 requests\n", status.stderr), r
        r = netlab("logs", "--lab", lab, "a", "-p", check=False)
        assert (r.returncode, r.stdout, r.stderr) == (3, "", status.stderr), r
    finally:
        lab_down(lab)
