"""A rollback that makes a pod again (lab/remake.py) on real namespaces: the Services and impairments features start
again only in that pod, as the containers feature does (tests/unit/test_remake_features.py: the same, no root).

Before, both fell back to their lab-wide start: the rollback rewrote every pod's hosts and resolv.conf and set every
impaired interface's qdisc again, so what a user had changed by hand elsewhere (which `status` names as drift and
the next `up` repairs) was silently "repaired" by a run the user had stopped."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import lab_up, netlab, state_path, unique_lab, write_topology
from netlab.kernel import tc

pytestmark = pytest.mark.root

A_RATE, B_RATE, CNI0_RATE, BY_HAND = 20_000_000, 10_000_000, 30_000_000, 5_000_000


def topology(lab: str, b_node: str) -> str:
    return (f"name: {lab}\nnodes:\n  - {{name: n1, impair: {{cni0: {{rate: 30mbit}}}}}}\n  - {{name: n2}}\n"
            "pods:\n"
            "  - {name: a, node: n1, labels: {app: web}, impair: {eth0: {rate: 20mbit}}}\n"
            f"  - {{name: b, node: {b_node}, impair: {{eth0: {{rate: 10mbit}}}}}}\n"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


def root_rate(netns: str, dev: str) -> tuple[str, int] | None:
    """The root qdisc's kind and rate (bits a second), as `tc -j qdisc` shows them."""
    out = json.loads(subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", dev], capture_output=True,
                                    text=True, check=True).stdout)
    (root,) = [q for q in out if q.get("root")]
    return root["kind"], root.get("options", {}).get("rate", 0) * 8


def hosts_path(netns: str) -> str:
    return f"/etc/netns/{netns}/hosts"


def dnsmasq(lab: str) -> int:
    """The cluster DNS's dnsmasq pid, as the lab's state records it."""
    with open(state_path(lab, "state.json")) as fh:
        pods = json.load(fh)["extra"]["workload"]["pods"]
    (pid,) = [c["pid"] for c in pods["kube-dns"]["containers"].values()]
    return pid


def test_a_rollback_that_makes_a_pod_again_leaves_the_other_pods_files_and_qdiscs_as_the_user_left_them(tmp_path):
    """Pod a's eth0 and n1's cni0 shaped otherwise by hand, pod a's hosts file edited by hand (netlab's line kept):
    status names them. A change that makes pod b anew (put on n1), stopped by Ctrl-C after b's old namespace went:
    the rollback makes b again with its 10mbit and its files, and nothing else is touched: a's eth0 and cni0 keep
    5mbit, a's hosts file its line, the DNS's dnsmasq its pid, and status says what it said before the run."""
    lab = unique_lab("rb")
    path = write_topology(tmp_path, topology(lab, "n2"))
    with lab_up(path, lab):
        a, b, n1 = f"{lab}-a", f"{lab}-b", f"{lab}-n1"
        assert root_rate(a, "eth0") == ("tbf", A_RATE) and root_rate(b, "eth0") == ("tbf", B_RATE)
        assert root_rate(n1, "cni0") == ("tbf", CNI0_RATE)
        tc.replace_root(a, "eth0", BY_HAND)
        tc.replace_root(n1, "cni0", BY_HAND)
        with open(hosts_path(a), "a") as fh:
            fh.write("10.9.9.9\tby-hand\n")
        with open(hosts_path(a)) as fh:
            edited = fh.read()
        with open(hosts_path(b)) as fh:
            b_hosts = fh.read()
        dns = dnsmasq(lab)
        before = netlab("status", "--lab", lab, check=False)
        assert before.returncode == 1 and f"eth0 in {a} has rate 5mbit" in before.stdout, before.stdout
        assert hosts_path(a) in before.stdout, before.stdout
        inode = os.stat(f"/run/netns/{b}").st_ino
        write_topology(tmp_path, topology(lab, "n1"))
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "2:INT"})
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert stopped.stderr.strip().endswith("interrupted by SIGINT; rolled back"), stopped.stderr
        assert os.stat(f"/run/netns/{b}").st_ino != inode  # b was made again
        assert root_rate(b, "eth0") == ("tbf", B_RATE)  # its impairment, in its new namespace
        assert root_rate(a, "eth0") == ("tbf", BY_HAND) and root_rate(n1, "cni0") == ("tbf", BY_HAND)
        with open(hosts_path(a)) as fh:
            assert fh.read() == edited
        with open(hosts_path(b)) as fh:
            assert fh.read() == b_hosts
        assert dnsmasq(lab) == dns and os.path.exists(f"/proc/{dns}")
        with open(f"/proc/{dns}/comm") as fh:
            assert fh.read().strip() == "dnsmasq"
        after = netlab("status", "--lab", lab, check=False)
        assert after.returncode == 1 and after.stdout == before.stdout, after.stdout
        netlab("up", "--lab", lab)
        assert root_rate(a, "eth0") == ("tbf", A_RATE)  # the next up is the repair
