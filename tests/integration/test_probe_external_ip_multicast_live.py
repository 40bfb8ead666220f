"""A multicast and a broadcast externalIP on a real lab (root): the kernel connects no TCP to either (a pod's
connect() says Network is unreachable, as the note says), and probe of the freshly built lab leaves those flows
out with that reason, probes the Service's ordinary externalIP, and finds everything as expected (exit 0)."""

from __future__ import annotations

import json

import pytest

from helpers import lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
nodes: [{{name: n1}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods: [{{name: p, node: n1, labels: {{a: b}}, containers: [{{name: c, ports: [{{containerPort: 80}}]}}]}}]
services: [{{name: s, selector: {{a: b}}, externalIPs: [239.1.1.1, 255.255.255.255, 198.51.100.7], ports: [{{port: 80}}]}}]
"""
CONNECT = ("import errno, socket, sys\ns = socket.socket()\ntry:\n    s.connect((sys.argv[1], 80))\n"
           "except OSError as e:\n    print(errno.errorcode[e.errno])\nelse:\n    print('connected')\n")


def test_probe_leaves_out_what_the_kernel_never_connects_and_says_why(tmp_path):
    name = unique_lab("fz")
    path = write_topology(tmp_path, TOPO.format(name=name))
    valid = netlab("validate", "-t", path)
    assert "externalIP 239.1.1.1 is a multicast address (224.0.0.0/4)" in valid.stdout + valid.stderr, valid
    with lab_up(path, name):
        for ip in ("239.1.1.1", "255.255.255.255"):  # the kernel's answer, from the pod and the internet host
            for who in ("p", "client"):
                got = netlab("exec", "--lab", name, who, "--", "python3", "-I", "-c", CONNECT, ip).stdout.strip()
                assert got == "ENETUNREACH", (who, ip, got)
        run = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        doc = json.loads(run.stdout)
        ext = [p for p in doc["probes"] if p["service"] and p["service"]["via"] == "ExternalIP"]
        assert all(p["as_expected"] for p in doc["probes"]), run.stdout
        assert sorted(p["source"] for p in ext) == ["client", "kube-dns", "n1", "p"], ext
        assert all("198.51.100.7" in json.dumps(p["service"]) for p in ext), ext
        assert run.returncode == 0, run
        skipped = [n for n in doc["not_probed"] if "(externalIP 239.1.1.1)" in n or "(externalIP 255.255" in n]
        assert skipped == [
            "svc/s tcp/80 (externalIP 239.1.1.1): not probed: a multicast address (224.0.0.0/4): no host's kernel "
            "connects TCP to it (connect() says Network is unreachable), so no client reaches the Service there",
            "svc/s tcp/80 (externalIP 255.255.255.255): not probed: the limited broadcast address: no host's kernel "
            "connects TCP to it (connect() says Network is unreachable), so no client reaches the Service there"], \
            doc["not_probed"]
