"""A pod's /etc/resolv.conf and /etc/hosts, as `inspect POD` shows them and as `down -o json` reports them
removed, on a real lab (root): inspect prints what `cat` in the pod prints, and down lists every file it took
from /etc/netns (it said "removed_pod_files": [] without --force while it removed them all)."""

from __future__ import annotations

import json
import os

import pytest

from helpers import lab_down, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """name: {lab}
nodes: [{{name: n1}}]
network: {{mode: host-gw}}
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_inspect_shows_a_pods_files_and_down_lists_them_removed(tmp_path):
    lab = unique_lab("podf")
    netlab("up", "-t", write_topology(tmp_path, TOPO.format(lab=lab)))
    try:
        pods = ["web", "client", "kube-dns"]
        for pod in ("web", "client"):
            doc = json.loads(netlab("inspect", "--lab", lab, pod, "-s", "files", "-o", "json").stdout)
            text = netlab("inspect", "--lab", lab, pod, "-s", "files").stdout
            for path in ("/etc/resolv.conf", "/etc/hosts"):
                seen = netlab("exec", "--lab", lab, pod, "--", "cat", path).stdout  # what the pod's cat prints
                assert doc["files"][path] == {"kept": f"/etc/netns/{lab}-{pod}/{os.path.basename(path)}",
                                              "content": seen}, doc
                assert "".join(f"  {line}\n" for line in seen.splitlines()) in text, text
            assert "nameserver 10.96.0.10" in doc["files"]["/etc/resolv.conf"]["content"]
        refused = netlab("inspect", "--lab", lab, "underlay", "-s", "files", check=False)
        assert (refused.returncode, refused.stdout) == (2, ""), refused
        assert refused.stderr.count("\n") == 1 and "underlay is neither" in refused.stderr, refused.stderr
        there = sorted(f"/etc/netns/{lab}-{pod}/{name}" for pod in pods for name in ("resolv.conf", "hosts")
                       if os.path.exists(f"/etc/netns/{lab}-{pod}/{name}"))
        assert len(there) == 5, there  # the DNS pod has no resolv.conf of netlab's (dnsPolicy Default)
        down = netlab("down", "--lab", lab, "-o", "json")
        assert json.loads(down.stdout)["removed_pod_files"] == there, down.stdout
        assert not any(os.path.exists(path) for path in there)
        assert not lab_namespaces(lab)
    finally:
        lab_down(lab)
