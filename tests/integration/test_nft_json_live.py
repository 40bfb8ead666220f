"""An nft that cannot answer as JSON, or that does not start, on the real machine (root): each command runs in a
private mount namespace of its own (``unshare -m``) where a file is bound over the machine's (a wrapper that
refuses ``-j`` as an nft built without ``--with-json`` does, over /usr/sbin/nft; an empty file over libnftables.so.1):
the machine's files are never touched. The doctor fails the nft line with the fix, ``up`` of a running lab is
refused before any change (its kube-proxy table, links and traffic as they were), and status says the failure in
one line, exit 3, not a traceback. The fake machine's side: tests/unit/test_doctor_nft_json.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import NETLAB, in_netns, netlab, state_path


def forget_known(lab: str) -> None:
    """What the lab's up left known of its tables (kernel/nftgen.py) taken away: status reads them with nft."""
    if os.path.exists(state_path(lab, "nft-written.json")):
        os.unlink(state_path(lab, "nft-written.json"))

pytestmark = pytest.mark.root

NFT = "/usr/sbin/nft"
NO_JSON = "Error: JSON support not compiled-in"
# nft as a build without JSON answers -j (src/main.c), the rest the real program's (a copy: /usr/sbin/nft is hidden)
WRAPPER = ('#!/bin/sh\nfor a in "$@"; do case "$a" in -j|--json) echo "' + NO_JSON + '" >&2; exit 1;; esac; done\n'
           'exec {real} "$@"\n')
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: nftables}}
nodes: [{{name: n1}}]
pods:
  - {{name: client, node: n1}}
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
# A TCP connection through the Service's ClusterIP (kube-proxy's DNAT, in nft's table) to the echo server.
CONNECT = "import socket; socket.create_connection(('10.96.0.20', 80), timeout=5).close(); print('connected')"


def hidden(binds: list[tuple[str, str]], *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """netlab ``args`` in a private mount namespace with each (source, target) bound over the machine's file."""
    script = " && ".join(f'mount --bind "{src}" "{dst}"' for src, dst in binds) + ' && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "hide", *NETLAB, *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def kernel_of(lab: str) -> tuple[str, str]:
    """The node's kube-proxy table (nft -j, counters left out) and its links (ip -j), as the real tools say."""
    table = json.loads(in_netns(f"{lab}-n1", NFT, "-j", "list", "table", "ip", "kube-proxy", check=True).stdout)
    rules = [o for o in table["nftables"] if "metainfo" not in o]
    links = json.loads(in_netns(f"{lab}-n1", "ip", "-j", "link", check=True).stdout)
    return json.dumps(rules, sort_keys=True), json.dumps(sorted(link["ifname"] for link in links))


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_an_nft_without_json_is_refused_up_front_and_said_in_one_line(labs, tmp_path):
    lab = labs.name("nj")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    real = tmp_path / "nft.real"
    shutil.copy(NFT, real)
    wrapper = tmp_path / "nft"
    wrapper.write_text(WRAPPER.format(real=real))
    wrapper.chmod(0o755)
    binds = [(str(wrapper), NFT)]
    before = kernel_of(lab)
    assert "dnat" in before[0]
    for way in ("process", ""):  # the program only, and the library (the default) with the program beside it
        env = {"NETLAB_NFT": way}
        doc = hidden(binds, "doctor", "-t", path, env=env)
        line = next(x for x in doc.stdout.splitlines() if x.startswith(("ok    tool nft", "FAIL  tool nft")))
        assert doc.returncode == 3 and line.startswith("FAIL  tool nft: /usr/sbin/nft; ") and \
            f"`nft -j list tables` fails ({NO_JSON})" in line and "apt-get install nftables" in line, doc.stdout
        up = hidden(binds, "up", "-t", path, env=env)
        assert up.returncode == 3 and one_line(up) == f"netlab: {line}", up.stderr
        forget_known(lab)
        status = hidden(binds, "status", "--lab", lab, env={"NETLAB_NFT": "process"})
        assert status.returncode == 3 and one_line(status) == (
            f"netlab: {lab}-n1: nft -j list table ip kube-proxy failed: {NO_JSON}; fix: an nft built with JSON "
            "support: apt-get install nftables libnftables1 (Debian's and Ubuntu's have it)"), status.stderr
    assert kernel_of(lab) == before  # nothing changed by the refused ups
    assert "connected" in in_netns(f"{lab}-client", "python3", "-c", CONNECT, check=True).stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0  # the machine's nft: as planned


def test_a_broken_libnftables_is_named_not_the_kernel(labs, tmp_path):
    lab = labs.name("nj")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    library = os.path.realpath("/usr/lib/x86_64-linux-gnu/libnftables.so.1")
    assert os.path.isfile(library), "libnftables1 missing: run scripts/setup.sh"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    binds = [(str(empty), library)]
    doc = hidden(binds, "doctor", "-t", path)
    lines = {x.split(":")[0]: x for x in doc.stdout.splitlines()}
    assert doc.returncode == 3, doc.stdout
    for title in ("FAIL  kernel nf_tables", "FAIL  tool nft"):
        assert "the nft program does not start (" in lines[title] and lines[title].endswith(
            "fix: reinstall nft's library: apt-get install --reinstall libnftables1 nftables"), lines[title]
        assert "CONFIG_NF_TABLES" not in lines[title], lines[title]
    forget_known(lab)
    status = hidden(binds, "status", "--lab", lab)
    assert status.returncode == 3 and one_line(status).startswith(
        f"netlab: {lab}-n1: nft -j list table ip kube-proxy failed: ") and "libnftables.so.1" in status.stderr and \
        status.stderr.rstrip().endswith("apt-get install --reinstall libnftables1 nftables"), status.stderr
