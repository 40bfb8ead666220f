"""`netlab break` as root without CAP_SYS_PTRACE (Docker's default capabilities plus SYS_ADMIN and NET_ADMIN), per
scenario (root, `setpriv --bounding-set=-sys_ptrace`, as tests/integration/test_caps_ptrace_live.py).

`break` refused every scenario without it, up front. Only those that stop a pod's containers read other processes'
namespaces (which of the lab's processes run in the pod: dnsmasq's, and those of a container started with
capabilities root lacks here, are unreadable without it): endpoint-pod-down and dns-pod-stopped are refused in the
same one line as before, nothing changed; the others change the kernel's objects alone and break the lab, the
kernel's view says so (a pod's bridge port down), saying that the containers were not looked at for a fault before
it. `quiz` stays refused: its answer repairs the lab with `up`, which reads every process.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from helpers import ip_json, netlab
from test_capless_root_live import one_line, run
from test_caps_ptrace_live import dnsmasq_of, svc_lab, without

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")]

SAID = "host capabilities: root without CAP_SYS_PTRACE"


def ports(lab: str) -> dict[str, list[str]]:
    """The ports of node n1's bridge cni0 and their flags, as `ip -j link` gives them."""
    return {link["ifname"]: link["flags"] for link in ip_json("link", "show", "master", "cni0", netns=f"{lab}-n1")}


def test_break_needs_sys_ptrace_only_for_the_scenarios_that_stop_a_pods_containers(labs):
    lab = labs.name("lf")
    path, _ = labs.up(svc_lab(lab))
    dns, before = dnsmasq_of(lab), ports(lab)
    assert len(dns) == 1 and len(before) == 2 and all("UP" in flags for flags in before.values()), before

    for scenario in ("endpoint-pod-down", "dns-pod-stopped"):  # they stop containers: refused, nothing changed
        proc = run("break", scenario, "--lab", lab, prefix=without("sys_ptrace"))
        one_line(proc, SAID)
        assert "--cap-add SYS_PTRACE" in proc.stderr, proc.stderr
    assert dnsmasq_of(lab) == dns and ports(lab) == before
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")

    # a kernel object's change: done without it (the containers, unreadable, left out of the look before it)
    proc = run("break", "bridge-port-down", "--lab", lab, "--target", "web", "-o", "json", prefix=without("sys_ptrace"))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    done = json.loads(proc.stdout)
    [veth] = [m.group(1) for line in done["changes"] if (m := re.search(r" link set (\S+) down", line))]
    after = ports(lab)
    assert "UP" not in after[veth] and all("UP" in flags for port, flags in after.items() if port != veth), after
    assert done["warnings"] == [f"lab {lab}'s containers were not looked at for a fault before this break: reading "
                                "their processes needs CAP_SYS_PTRACE, which root lacks here"], done
    assert "CAP_SYS_PTRACE, which root lacks here" in proc.stderr and SAID not in proc.stderr, proc.stderr

    # quiz's answer repairs the lab with up, which reads every process: the quiz is refused without it
    one_line(run("quiz", "--lab", lab, prefix=without("sys_ptrace")), SAID)

    netlab("up", "-t", path)  # with it: repaired
    assert ports(lab) == before and dnsmasq_of(lab) == dns
