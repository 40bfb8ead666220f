"""A conflist lab's conflist broken while the lab is up (QA q42 2; root, Debian's bridge and host-local).

`up --lab L` and `impair`, which run the lab's saved topology, said the doctor's line "FAIL tool CNI plugins:
network.cni.conflist: ...: is not JSON", exit 3 (environment not ready: a missing tool), where `up -t FILE` and
`validate` say the file's line, exit 2 (invalid input). Now all say validate's line, exit 2, and change nothing:
the pod's eth0 keeps its address, and no qdisc is put on it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import ip_json, lab_down, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def _eth0(lab: str) -> tuple[list[str], list[str]]:
    """(IPv4 addresses of pod a's eth0, the kinds of the qdiscs in the pod and its node), as the kernel has them."""
    (link,) = ip_json("addr", "show", "dev", "eth0", netns=f"{lab}-a")
    kinds = []
    for ns in (f"{lab}-a", f"{lab}-n1"):
        out = subprocess.run(["tc", "-n", ns, "-j", "qdisc", "show"], check=True, capture_output=True, text=True)
        kinds += sorted({q["kind"] for q in json.loads(out.stdout or "[]")})
    return [a["local"] for a in link["addr_info"] if a["family"] == "inet"], kinds


@pytest.mark.parametrize("broken", ["not json", '{"plugins": []}'])
def test_up_lab_and_impair_of_a_lab_whose_conflist_broke_say_validate_s_line_exit_2(tmp_path, broken):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    lab = unique_lab("fz")
    conflist = tmp_path / "net.conflist"
    good = json.dumps({"cniVersion": "1.0.0", "name": lab, "plugins": [
        {"type": "bridge", "bridge": f"{lab[:8]}br", "isGateway": True, "isDefaultGateway": True,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"),
                  "ranges": [[{"subnet": "10.244.0.0/24"}]]}}]})
    conflist.write_text(good)
    path = write_topology(tmp_path, f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist}}}}\n"
                                    "nodes: [{name: n1}]\npods: [{name: a, node: n1}]\n")
    try:
        netlab("up", "-t", path)
        before = _eth0(lab)
        assert before[0] and "tbf" not in before[1], before
        conflist.write_text(broken)
        r = netlab("validate", "-t", path, check=False)
        line = r.stderr.strip()
        assert r.returncode == 2 and line.startswith(f"{path}:2: network.cni.conflist: {conflist}: "), r
        for args in (("up", "--lab", lab), ("impair", "--lab", lab, "a:eth0", "--rate", "1mbit"), ("up", "-t", path)):
            r = netlab(*args, check=False)
            assert (r.returncode, r.stderr) == (2, line + "\n"), r
        assert _eth0(lab) == before  # nothing changed: no qdisc of the rate
    finally:
        conflist.write_text(good)  # DEL runs with it
        lab_down(lab)
