"""An interrupted probe and the lab's echo server (agent.py: Agent._sweep_until_quiet, Agent._waiting)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from helpers import NETLAB, ip_json, lab_namespaces, two_node_topology, wait_for


def echo_server_of(lab: str) -> int:
    """The pid of the lab's echo server (one process serves every echo container of a lab)."""
    pids = []
    for p in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"netlab.workload.echoserver" in argv and any(lab.encode() in a for a in argv):
            pids.append(int(p))
    assert len(pids) == 1, pids
    return pids[0]


def test_ctrl_c_leaves_no_entry_of_an_answer_the_echo_server_sends_late(labs):
    """A loaded machine runs the lab's echo server late: its answers to an interrupted probe's requests went after
    the agent's last sweep, each resolving its client again, and left a pair of entries per answer in the pods
    (seen in CI: [('LAB-p11', '10.244.1.12', 'eth0'), ('LAB-p21', '10.244.1.7', 'eth0')]). The agent swept until
    nothing new came for QUIET, which a server run late outlasts. Now it also sweeps while the servers' sockets
    hold requests not read (the kernel's Recv-Q), within its grace. The server here is stopped (SIGSTOP) from
    before the probe until well after the old agent's quiet had passed, within the grace."""
    lab = labs.name("qe")
    labs.up(two_node_topology(lab, pods_per_node=3))
    namespaces = lab_namespaces(lab)

    def entries() -> set[tuple[str, str, str, str]]:
        return {(ns, n["dst"], n.get("dev", ""), (n.get("state") or [""])[0]) for ns in namespaces
                for n in ip_json("neigh", netns=ns)}

    before = {e[:3] for e in entries()}
    echo = echo_server_of(lab)

    def as_a_terminal_starts_it() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    os.kill(echo, signal.SIGSTOP)
    try:
        proc = subprocess.Popen([*NETLAB, "probe", "--lab", lab, "--arp", "real"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=as_a_terminal_starts_it)
        try:
            assert wait_for(lambda: {e[:3] for e in entries()} - before, timeout=60, step=0.01), "no entry made"
            time.sleep(0.2)  # requests to the stopped server queue up
            proc.send_signal(signal.SIGINT)
            time.sleep(0.7)  # the agent's grace is 1.5 s; nothing new came for its QUIET (0.3 s) long before
        finally:
            os.kill(echo, signal.SIGCONT)
        out, err = proc.communicate(timeout=30)
    finally:
        os.kill(echo, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    time.sleep(0.5)  # the server's answers to what it had queued have gone (a few, on veths)
    made = sorted(e for e in entries() if e[:3] not in before)
    assert not made, f"{len(made)} entries the interrupted probe's answers made are left: {made[:10]}"
