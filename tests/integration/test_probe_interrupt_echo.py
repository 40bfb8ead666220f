"""An interrupted probe and the lab's echo server (agent.py: Agent._sweep_until_quiet, Agent._waiting)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from helpers import NETLAB, ip_json, ipv4_of, lab_namespaces, two_node_topology, wait_for


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



def test_a_servers_accepted_connection_counts_until_its_answer_and_fin_are_acknowledged(labs):
    """The lab's echo server may have accepted an interrupted probe's connection and not answered it yet: the
    request read or not, the answer and the FIN still to come, each resolving the client's address again after
    the agent's sweeps (CI: LAB-p6 REACHABLE to LAB-p12, LAB-p12 STALE to LAB-p6). The agent's wait counted only
    what listeners and UDP sockets held. Now an accepted connection with more to send counts too, until its
    answer and FIN are acknowledged. Real sockets in two pods of a lab; the count is the kernel's (sock_diag)."""
    from netlab.kernel import netns as nsmod
    from netlab.probe.sockets import NsSockets

    lab = labs.name("qa")
    labs.up(f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n  - {{name: b, node: n1}}\n")
    port = 4321
    home = nsmod.current_fd()
    server_side, client_side = NsSockets(f"{lab}-a", 0, home, probing=False), nsmod.Held(f"{lab}-b", home)
    try:
        with server_side.held:
            listener = socket.create_server(("0.0.0.0", port))
        with client_side:
            client = socket.create_connection((ipv4_of(f"{lab}-a", "eth0"), port), timeout=5)
        with listener, client:
            # a connection not accepted: in the listener's queue, and a connection of its own already
            assert wait_for(lambda: server_side.waiting({port}) == 2)
            conn, _ = listener.accept()
            with conn:
                assert server_side.waiting({port}) == 1  # accepted: the answer is still to come
                assert server_side.waiting({port + 1}) == 0  # another port's servers hold nothing
                client.sendall(b"hello")
                assert wait_for(lambda: server_side.waiting({port}) == 1 + 5)  # and the request not read yet
                assert conn.recv(5) == b"hello"
                assert server_side.waiting({port}) == 1  # read, not answered
                conn.sendall(b"hello")
                conn.shutdown(socket.SHUT_WR)  # the echo server's answer, then its FIN
                assert client.recv(5) == b"hello"
                # acknowledged: the server's side waits in FIN-WAIT-2 for the client, with nothing more to send
                assert wait_for(lambda: server_side.waiting({port}) == 0)
    finally:
        server_side.close()
        client_side.close()
        os.close(home)
