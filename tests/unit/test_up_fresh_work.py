"""What a fresh lab's ``up`` leaves undone because nothing would use it: the expected contents of namespaces it
made and does not read (lab/up_converge.py), and a wait before an answer the kernel has queued already
(kernel/netlink.py)."""

from __future__ import annotations

import socket

import pytest

from fake_lab import make_lab, up
from netlab.kernel import netlink
from netlab.kernel.fake import FakeKernel
from netlab.lab import up_converge

lab = pytest.fixture(make_lab, name="lab")


def test_a_fresh_lab_works_out_no_expected_contents_and_a_second_up_reads_against_them(lab, monkeypatch):
    calls = []
    real = up_converge.expected
    monkeypatch.setattr(up_converge, "expected", lambda plan: calls.append(plan) or real(plan))
    kernel = FakeKernel()
    first = up(lab, kernel)
    assert first.created_netns and calls == []  # every namespace made now: none read, nothing to compare with
    again = up(lab, kernel)
    assert not again.changed and len(calls) == 1  # the running lab's namespaces are read and compared


def test_an_answer_already_queued_is_read_without_a_wait(monkeypatch):
    ours, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    conn = netlink.Conn(sock=ours)

    def waited(sock, timeout):
        raise AssertionError("waited for an answer that was there")

    monkeypatch.setattr(netlink, "_readable", waited)
    try:
        kernel_end.send(b"answer")
        assert conn._recv(10.0, "a request") == b"answer"
    finally:
        conn.close()
        kernel_end.close()


def test_no_answer_is_still_waited_for_to_the_deadline(monkeypatch):
    ours, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    conn = netlink.Conn(sock=ours, timeout=0.01)
    asked = []
    monkeypatch.setattr(netlink, "_readable", lambda sock, timeout: asked.append(timeout) or False)
    try:
        with pytest.raises(netlink.NetlinkTimeout):
            conn._recv(float("inf"), "a request")
        assert asked  # nothing there: waited (the deadline's check), then the timeout
    finally:
        conn.close()
        kernel_end.close()
