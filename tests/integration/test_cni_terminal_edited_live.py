"""An edited conflist with a terminal pod whose CNI DEL has not run yet, in a lab whose plugins attach its pods (root).

The pod's record names the config its ADD used; `status` named it among the pods to re-attach ("changed since pod a
was attached with it ... --reconfigure") and a plain `up` refused the lab. A terminal pod is never ADDed again: its
stopped sandbox's DEL runs with the config its ADD used (libcni DELs with the cached config, whatever the file says
now), so `status` names only that DEL, with a plain `up` as its repair, and `up` runs it: Debian's bridge is handed
the old config (the CNI log's stdin), host-local releases the lease, and status is all as planned.
"""

from __future__ import annotations

import json

import pytest

from helpers import ipv4_of, netlab
from netlab.errors import netlab_command
from test_cni_terminal_del_live import CONFLIST, TOPOLOGY, leases, terminate
from test_terminal_hostport_live import SERVER

pytestmark = pytest.mark.root


def test_an_edited_conflist_does_not_refuse_a_terminal_pod_whose_del_has_not_run(labs, tmp_path):
    conflist = tmp_path / "tm.conflist"
    conflist.write_text(json.dumps(CONFLIST))
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("ct")
    one_pod = TOPOLOGY.split("  - {{name: b")[0]
    path, _ = labs.up(one_pod.format(lab=lab, cni="{conflist: tm.conflist}", server=server, go=go, host=""))
    a_ip = ipv4_of(f"{lab}-a", "eth0")
    terminate(lab, go)
    edited = json.loads(json.dumps(CONFLIST))
    edited["plugins"][0]["hairpinMode"] = False
    conflist.write_text(json.dumps(edited))

    # status names the DEL, not an edited config to re-attach the pod with; its repair is a plain up
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    assert "changed since" not in status.stdout and "--reconfigure" not in status.stdout, status.stdout
    assert f"run `{netlab_command(f'up -t {path}')}` to repair" in status.stdout, status.stdout

    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0 and "ran the CNI DEL of terminated pod a's sandbox" in up.stdout, up.stdout + up.stderr
    calls = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]
    dels = [c for c in calls if c["pod"] == "a" and c["command"] == "DEL" and c["plugin"] == "bridge"]
    assert [c["stdin"]["hairpinMode"] for c in dels] == [True], dels  # the config its ADD used
    assert a_ip not in leases(lab, "n1")
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
