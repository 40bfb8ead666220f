"""The echo server's UDP ports have room for a burst: a probe's Service distributions send hundreds of datagrams to
the same endpoint at once, and one server drains every pod's sockets. At the default 208 KiB receive buffer a pod
dropped tens of them (RcvbufErrors) and a healthy lab's probe failed (QA q25 #1). In-process, on 127.0.0.1."""

from __future__ import annotations

import errno
import json
import os
import socket

import pytest

from netlab.workload.echo import SO_RCVBUFFORCE, UDP_RCVBUF, EchoLoop, Served, listen, roomy


def rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def test_a_udp_port_gets_the_forced_buffer_as_root_and_what_rmem_max_allows_otherwise():
    sock = listen([(0, "UDP")], address="127.0.0.1")[0]
    try:
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        sock.close()
    want = UDP_RCVBUF if os.geteuid() == 0 else min(UDP_RCVBUF, rmem_max())
    assert got == 2 * want  # the kernel doubles what it is asked for (its bookkeeping's share)


class FakeSock:
    def __init__(self, refuse: bool):
        self.refuse, self.calls = refuse, []

    def setsockopt(self, level, opt, value):
        self.calls.append((level, opt, value))
        if opt == SO_RCVBUFFORCE and self.refuse:
            raise PermissionError(errno.EPERM, "Operation not permitted")


def test_without_cap_net_admin_the_buffer_is_asked_for_within_rmem_max():
    forced = FakeSock(refuse=False)
    roomy(forced)
    assert forced.calls == [(socket.SOL_SOCKET, SO_RCVBUFFORCE, UDP_RCVBUF)]
    plain = FakeSock(refuse=True)
    roomy(plain)
    assert plain.calls == [(socket.SOL_SOCKET, SO_RCVBUFFORCE, UDP_RCVBUF), (socket.SOL_SOCKET, socket.SO_RCVBUF,
                                                                              UDP_RCVBUF)]


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_RCVBUFFORCE needs CAP_NET_ADMIN")
def test_a_burst_sent_while_the_server_is_busy_is_all_answered():
    burst = 600  # 832 bytes each as the kernel counts them: the default 208 KiB buffer holds 256
    server = listen([(0, "UDP")], address="127.0.0.1")[0]
    loop = EchoLoop()
    loop.serve(Served("w3/c", "w3", None), [server])
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    roomy(client)  # the replies wait here until read
    client.setblocking(False)
    try:
        for i in range(burst):  # the loop is not turned: all of them wait in the server's socket
            client.sendto(b"netlab probe %d" % i, server.getsockname())
        answers = []
        while True:  # each round answers what is queued; done when a round finds nothing more
            before = len(answers)
            loop.run_once(0)
            while True:
                try:
                    answers.append(json.loads(client.recv(2048)))
                except BlockingIOError:
                    break
            if len(answers) == before:
                break
        assert len(answers) == burst and {a["pod"] for a in answers} == {"w3"}
    finally:
        client.close()
        loop.drop("w3/c")
