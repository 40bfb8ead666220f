"""A new lab whose pod's CNI ADD host-local refuses before leasing anything (root, Debian's bridge + host-local, its
own range with a rangeStart outside its subnet: host-local refuses the config at ADD and at DEL alike).

The ADD's DEL and the rollback's fail too, and the line after "rolled back" said "host-local's lease of 10.244.0.2
in <dataDir>/<network> stays (remove it by hand)": the planned address, while host-local had written nothing.
Now the lease is said only when its file is there. Checked against the disk.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from helpers import lab_namespaces

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def test_an_add_host_local_refused_before_leasing_claims_no_lease_left(labs, tmp_path):
    assert os.access(f"{CNI_BIN}/host-local", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"lf{uuid.uuid4().hex[:8]}"
    leases = tmp_path / "leases"
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "bridge", "bridge": f"b{network}"[:15], "isGateway": True,
         "ipam": {"type": "host-local", "dataDir": str(leases),
                  "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.245.0.5"}]]}}]}))
    lab = labs.name("lf")
    _, proc = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: {CNI_BIN}}}}}\n"
                      "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1, ip: 10.244.0.2}\n", check=False)
    said = proc.stderr
    assert proc.returncode == 4 and "CNI plugin bridge ADD" in said and "rolled back" in said, said
    assert "rangeStart" in said or "10.245.0.5" in said, said  # host-local's own refusal
    assert not (leases / network).exists()  # host-local refused the config before making its folder: no lease
    assert "lease of" not in said and "remove it by hand" not in said, said
    assert said.rstrip().endswith("; the lab goes with its nodes and state directory, and what its plugins kept goes "
                                  "with them"), said
    assert lab_namespaces(lab) == []
