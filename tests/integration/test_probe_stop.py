"""A probe stopped mid-run leaves no conntrack entry of the connections it had open.

A SYN that got no answer before the stop left its entry in the nodes (SYN_SENT, two minutes; a Service's DNAT
decision with it), and the next run's connection from the same port met it and had its packets dropped as
INVALID. Now the agent, and each worker it forked, give back the flows still open, and the agent deletes
their entries by exact tuple in the nodes, as it does for the flows a whole run judged (probe/untrack.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from helpers import in_netns, ip_json, lab_namespaces, wait_for

pytestmark = pytest.mark.root

CLUSTER_IP = "10.96.0.88"


def tcp_entries(netns: str) -> list[tuple[str, str, str]]:
    """(state, original source, original destination) of each TCP entry, as ``conntrack -L`` prints them."""
    out = []
    for line in in_netns(netns, "conntrack", "-L", "-p", "tcp").stdout.splitlines():
        words = line.split()
        fields = [w.split("=", 1) for w in words if "=" in w]
        src = next((v for k, v in fields if k == "src"), "")
        dst = next((v for k, v in fields if k == "dst"), "")
        out.append((words[3] if len(words) > 3 else "", src, dst))
    return out


@pytest.mark.parametrize("how", ["group", "netlab"])
def test_a_stopped_probe_leaves_no_conntrack_entry_of_its_open_connections(labs, tmp_path, how):
    """Every TCP packet into pod w is dropped (an iptables rule the test puts in w), so each connection to w, to
    its Service and from w stays open for the probe's 30 s timeout. Once the nodes hold such entries, Ctrl-C: to
    the probe's whole process group as a terminal sends it (agent and workers hear it), or to netlab alone (it
    stops the agent, which stops its workers). Exit 130, no entry to or from w or the Service is left, and no
    neighbour entry of the run."""
    lab = labs.name("sgx")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
            "pods:\n  - {name: c, node: n1}\n  - {name: d, node: n2}\n  - {name: w, node: n2, labels: {app: w}}\n"
            f"services:\n  - name: w\n    selector: {{app: w}}\n    clusterIP: {CLUSTER_IP}\n"
            "    ports: [{port: 80, targetPort: 8080}]\n")
    nodes = [f"{lab}-n1", f"{lab}-n2"]
    w_ip = in_netns(f"{lab}-w", "ip", "-4", "-o", "addr", "show", "eth0", check=True).stdout.split()[3].split("/")[0]
    in_netns(f"{lab}-w", "iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP", check=True)

    def of_w() -> list[tuple[str, str, str, str]]:
        return [(ns, *e) for ns in nodes for e in tcp_entries(ns) if {e[1], e[2]} & {w_ip, CLUSTER_IP}]

    assert of_w() == []
    namespaces = lab_namespaces(lab)

    def neighbours() -> set[tuple[str, str, str]]:
        return {(ns, n["dst"], n.get("dev", "")) for ns in namespaces for n in ip_json("neigh", netns=ns)}

    before = neighbours()  # flannel's PERMANENT entries; nothing dynamic yet
    # A worker forked besides the agent's own share, as a bigger lab has (one per core, 600 probes each).
    script = tmp_path / "probe.py"
    script.write_text(f"""import sys
from netlab.probe import agent
agent.MIN_TASKS_PER_WORKER = 1
sys.argv = ["netlab", "probe", "--lab", {lab!r}, "--proto", "tcp", "--timeout", "30"]
from netlab.launch import main
main()
""")

    def as_a_terminal_starts_it() -> None:  # SIGINT as a shell gives it, whatever this test process inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            process_group=0, preexec_fn=as_a_terminal_starts_it)
    try:
        # The kernel holds the probe's open connections: to w's address and to the Service's.
        assert wait_for(lambda: {e[3] for e in of_w()} >= {w_ip, CLUSTER_IP}, timeout=60, step=0.02), \
            f"no open connection of the probe seen: {of_w()}"
        assert proc.poll() is None
        if how == "group":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    left = of_w()
    assert left == [], f"{len(left)} conntrack entries of the stopped probe's connections left: {left[:10]}"
    assert neighbours() - before == set()  # and its sweep ran: no neighbour entry of it either
