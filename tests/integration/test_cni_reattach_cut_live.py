"""A CNI re-attach cut short between its DEL and its ADD (the process killed: NETLAB_FAULT_POINT=cni-detached), as a
watcher killed after a hostPort change left it (QA q10 2): the pod has no eth0 and portmap's rules are gone. The
record said "added", so status said only that the hostPorts changed. It says "detaching" before the DEL: status
names the detached pod, and the next up DELs it again and ADDs it (eth0 back, portmap's DNAT of the new port).
Real plugins (bridge + host-local + portmap) in real namespaces (root)."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import netlab
from test_cni_hostport import CONFLIST, nat_rules, topology

pytestmark = pytest.mark.root


def links(netns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", netns, "-j", "addr"], check=True, capture_output=True, text=True).stdout
    return [link["ifname"] for link in json.loads(out)]


def test_a_re_attach_killed_after_its_del_is_named_by_status_and_finished_by_up(labs, tmp_path):
    (tmp_path / "hp.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("wq")
    path, _ = labs.up(topology(lab, 18082))
    n1, pod = f"{lab}-n1", f"{lab}-a"
    assert "eth0" in links(pod)
    (tmp_path / "topo.yaml").write_text(topology(lab, 18083))
    killed = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_POINT": "cni-detached",
                                                         "NETLAB_FAULT_MODE": "kill"})
    assert killed.returncode == -9, killed
    assert links(pod) == ["lo"]  # the DEL ran: no eth0
    assert not [r for r in nat_rules(n1) if r.startswith("-A CNI-DN-")]  # nor portmap's DNAT
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status
    assert ("cni: pod a is detached (a re-attach was cut short: its CNI DEL ran, its ADD did not; it has no eth0); "
            "up attaches it") in [line.strip() for line in status.stdout.splitlines()], status.stdout
    done = netlab("up", "-t", path).stdout
    assert "re-attached pod a through CNI (an earlier re-attach was cut short after its DEL: it had no eth0)" in done
    assert "eth0" in links(pod)
    dnat = [r for r in nat_rules(n1) if r.startswith("-A CNI-DN-") and "-j DNAT" in r]
    assert len(dnat) == 1 and "--dport 18083" in dnat[0], dnat
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
