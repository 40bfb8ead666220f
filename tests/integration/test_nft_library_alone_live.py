"""The nft program missing, nft's library there (QA hostenv57 5): netlab writes and reads nftables through
libnftables (kernel/nft.py), yet `up` of a kube-proxy nftables lab was refused "FAIL tool nft: nft is not installed"
and `trace` ran the program. In a mount namespace of the test's own where /usr/sbin/nft is not a program, the doctor
says ok (its probes go through the library), and up, status and trace work."""

from __future__ import annotations

import os
import shutil

import pytest

from private_mounts import PrivateMounts

pytestmark = pytest.mark.root


def test_a_nftables_lab_without_the_nft_program_goes_through_the_library(labs, tmp_path):
    from netlab.kernel import libnftables

    if libnftables.load() is None:
        pytest.skip("libnftables1 is not installed")
    program = shutil.which("nft", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert program, "nft is not installed here"
    lab = labs.name("he")
    path = tmp_path / "topo.yaml"
    path.write_text(f"""name: {lab}
cluster: {{kubeProxyMode: nftables}}
nodes: [{{name: n1}}]
pods:
  - {{name: w1, node: n1, labels: {{app: web}}, containers: [{{name: http, ports: [{{containerPort: 8080}}]}}]}}
  - {{name: c1, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    ns = PrivateMounts(os.path.realpath(program))
    try:
        ns.run("mount", "--bind", "/dev/null", os.path.realpath(program))
        doctor = ns.netlab("doctor", "-t", str(path), check=False)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "ok    tool nft: the nft program is not installed (netlab looks in /usr/sbin" in doctor.stdout
        assert "kube-proxy's nftables objects (verdict maps" in doctor.stdout and "load" in doctor.stdout
        assert "ok    kernel nf_tables netdev hooks" in doctor.stdout, doctor.stdout
        up = ns.netlab("up", "-t", str(path), check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        status = ns.netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr
        trace = ns.netlab("trace", "--lab", lab, "c1", "svc/web", check=False)
        assert trace.returncode == 0 and "numgen vmap chose it" in trace.stdout, trace.stdout + trace.stderr
        down = ns.netlab("down", "--lab", lab, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        ns.close()
