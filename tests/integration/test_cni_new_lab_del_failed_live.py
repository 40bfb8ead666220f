"""A new lab whose pod's CNI ADD fails, and whose DEL fails too (root, Debian's host-local behind a tiny plugin the
test writes into its tmp_path: ADD takes host-local's lease, then fails; DEL fails as many times as told, then runs
host-local's DEL).

The line promised "the next up or down runs DEL again", but the rollback takes the new lab's nodes (where alone its
plugins run) and its state: `down` then said "not up", and the lease stayed in the conflist's own dataDir, unnamed.
Now the line says the rollback runs DEL again, and what that DEL did: when it failed too, the lease that stays,
to remove by hand; when it passed, the lease is gone. Checked with host-local's files and ``ip netns``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from helpers import lab_namespaces, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"

DLF = """#!/bin/sh
conf=$(cat)
case "$CNI_COMMAND" in
VERSION) echo '{{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}';;
ADD) echo "$conf" | {bin}/host-local >/dev/null || exit 1
  echo '{{"cniVersion": "1.0.0", "code": 11, "msg": "dlf said no"}}'; exit 1;;
DEL) n=$(cat {dir}/dels 2>/dev/null || echo 0); echo $((n + 1)) > {dir}/dels
  if [ "$n" -lt "$(cat {dir}/fail_dels)" ]; then echo '{{"cniVersion": "1.0.0", "code": 12, "msg": "dlf DEL said no"}}'
    exit 1; fi
  echo "$conf" | exec {bin}/host-local;;
esac
"""


@pytest.mark.parametrize("fail_dels", [2, 1])
def test_a_new_labs_failed_add_and_del_say_what_the_rollbacks_del_left(labs, tmp_path, fail_dels):
    assert os.access(f"{CNI_BIN}/host-local", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"dl{uuid.uuid4().hex[:8]}"
    leases = tmp_path / "leases"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "dlf").write_text(DLF.format(bin=CNI_BIN, dir=tmp_path))
    (tmp_path / "bin" / "dlf").chmod(0o755)
    (tmp_path / "fail_dels").write_text(str(fail_dels))
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "dlf", "ipam": {"type": "host-local", "dataDir": str(leases)}, "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("da")
    _, proc = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n", check=False)
    said = proc.stderr
    assert proc.returncode == 4 and "dlf said no [code 11]; then its DEL failed too: CNI plugin dlf DEL: failed " \
        "(exit 1): dlf DEL said no [code 12] (the rollback runs DEL again); rolled back" in said, said
    assert "the next up or down" not in said and lab_namespaces(lab) == []
    assert (tmp_path / "dels").read_text().strip() == "2"  # the ADD's DEL and the rollback's
    files = sorted(p.name for p in (leases / network).iterdir() if p.name[0].isdigit())
    if fail_dels == 2:
        assert said.rstrip().endswith(f"; CNI DEL of pod a: CNI plugin dlf DEL: failed (exit 1): dlf DEL said no "
                                      f"[code 12]; the lab goes with its nodes, but host-local's lease of 10.244.0.2 "
                                      f"in {leases}/{network} stays (remove it by hand)"), said
        assert files == ["10.244.0.2"]
    else:
        assert "CNI DEL of pod a" not in said and files == []  # the rollback's DEL released it
    down = netlab("down", "--lab", lab)
    assert "is not up" in down.stdout + down.stderr
    assert not Path("/var/lib/cni/networks", network).exists()
