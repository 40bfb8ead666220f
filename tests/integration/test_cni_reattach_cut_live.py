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
from netlab.errors import netlab_command

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


def test_a_ctrl_c_during_a_re_add_is_rolled_back_by_del_and_says_the_pod_is_left_detached(labs, tmp_path):
    """QA q11 1: a Ctrl-C during a re-attach's ADD said "rolled back", but the pod kept the new hostPort (portmap's
    DNAT of it), its record stayed "adding", and status said it was not attached and called its veth extra. The
    signal comes from the chain itself: a wrapper of portmap sends SIGINT to netlab (its parent) on the re-ADD, then
    runs portmap, so the ADD finishes under the signal, as a slow plugin's would. The rollback DELs it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flag = tmp_path / "ctrl-c"
    (bin_dir / "intpm").write_text(f"#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ] && [ -e {flag} ]; then rm -f {flag}; "
                                   "kill -INT $PPID; fi\nexec /usr/lib/cni/portmap\n")
    (bin_dir / "intpm").chmod(0o755)
    conflist = dict(CONFLIST, plugins=[CONFLIST["plugins"][0], dict(CONFLIST["plugins"][1], type="intpm")])
    (tmp_path / "hp.conflist").write_text(json.dumps(conflist))
    lab = labs.name("ra")

    def text(port: int) -> str:
        return topology(lab, port).replace("cni: {conflist: hp.conflist}", "cni: {conflist: hp.conflist, binDir: bin}")

    path, _ = labs.up(text(18082))
    n1, pod = f"{lab}-n1", f"{lab}-a"
    veths = sorted(link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-n", n1, "-j", "link", "show", "type", "veth"], check=True, capture_output=True, text=True).stdout))
    (tmp_path / "topo.yaml").write_text(text(18083))
    flag.write_text("")
    stopped = netlab("up", "-t", path, check=False)
    assert stopped.returncode == 130, stopped
    assert stopped.stderr.strip().endswith(
        "interrupted by SIGINT; rolled back, but for pod a, left detached (no eth0: the run had begun to re-attach it, "
        f"and the DEL before its ADD cannot be undone; `{netlab_command(f'up --lab {lab}')}` attaches it again)"
    ), stopped.stderr
    assert not flag.exists()  # the re-ADD ran (and sent the signal)
    calls = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]
    assert [c["command"] for c in calls if c["pod"] == "a" and c["plugin"] == "intpm"][-3:] == ["DEL", "ADD", "DEL"]
    assert links(pod) == ["lo"]  # DELed: no eth0
    assert not [r for r in nat_rules(n1) if r.startswith("-A CNI-DN-")]  # neither port DNATed
    now = sorted(link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-n", n1, "-j", "link", "show", "type", "veth"], check=True, capture_output=True, text=True).stdout))
    assert len(now) == len(veths) - 1, (veths, now)  # the bridge plugin's veth of pod a went with the DEL
    status = netlab("status", "--lab", lab, check=False)
    lines = [line.strip() for line in status.stdout.splitlines()]
    assert status.returncode == 1 and "cni: pod a is not attached through CNI (up attaches it)" in lines, status
    assert not [line for line in lines if line.startswith("extra")], status.stdout
    netlab("up", "-t", path)
    assert "eth0" in links(pod)
    dnat = [r for r in nat_rules(n1) if r.startswith("-A CNI-DN-") and "-j DNAT" in r]
    assert len(dnat) == 1 and "--dport 18083" in dnat[0], dnat
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
