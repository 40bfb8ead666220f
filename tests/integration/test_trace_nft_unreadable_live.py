"""``trace`` in an nftables-mode lab whose nft fails (root): each trace runs in a private mount namespace of its own
(``unshare -m``) with a wrapper that exits 1 bound over /usr/sbin/nft, and ``NETLAB_NFT=process`` (the program, not
the library): the machine's nft is never touched. Before, trace took kube-proxy's unreadable table for no table and
said nothing of it: a packet the node did not DNAT was explained by where it got lost later. Now the notes name the
node's table and nft's one line, and so does the row of a packet the node did not DNAT. The fake kernel's side:
tests/unit/test_trace_nft_unreadable.py."""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab
from test_nft_json_live import TOPOLOGY, hidden

pytestmark = pytest.mark.root

NFT = "/usr/sbin/nft"
ERROR = "Error: Could not process rule: Operation not permitted"
SAID = f"nft -j list table ip kube-proxy failed: {ERROR}"


def test_trace_says_kube_proxys_table_could_not_be_read_and_nfts_line(labs, tmp_path):
    lab = labs.name("fo")
    labs.up(TOPOLOGY.format(lab=lab))
    wrapper = tmp_path / "nft"
    wrapper.write_text(f'#!/bin/sh\necho "{ERROR}" >&2\nexit 1\n')
    wrapper.chmod(0o755)
    binds, env = [(str(wrapper), NFT)], {"NETLAB_NFT": "process"}
    note = (f"n1's table ip kube-proxy could not be read ({SAID}): what this trace says of kube-proxy's rules there "
            "is not checked against the kernel")

    proc = hidden(binds, "trace", "--lab", lab, "client", "svc/web", "--proto", "tcp", "-o", "json", env=env)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"], proc.stdout + proc.stderr
    assert note in d["notes"], d["notes"]

    in_netns(f"{lab}-n1", NFT, "delete", "element", "ip", "kube-proxy", "service-ips", "{ 10.96.0.20 . tcp . 80 }",
             check=True)
    proc = hidden(binds, "trace", "--lab", lab, "client", "svc/web", "--proto", "tcp", "-o", "json", env=env)
    d = json.loads(proc.stdout)
    lost = d["lost"]
    assert proc.returncode == 1 and lost["netns"] == f"{lab}-n1", proc.stdout + proc.stderr
    assert lost["reason"].startswith("n1 did not DNAT this packet for Service default/web (") and \
        f"its table ip kube-proxy could not be read ({SAID}): trace cannot say which of kube-proxy's rules is " \
        "missing there" in lost["reason"], lost
    assert note in d["notes"], d["notes"]

    proc = netlab("trace", "--lab", lab, "client", "svc/web", "--proto", "tcp", "-o", "json", check=False,
                  env=env, timeout=120)
    lost = json.loads(proc.stdout)["lost"]  # the machine's nft: the element it lacks, as before
    assert "the element `10.96.0.20 . tcp . 80 : goto service-" in lost["reason"] and "could not be read" not in \
        lost["reason"], lost
