"""kernel/nfclose.py: the library's netfilter socket told apart from the others, and closed on a thread.

Opening a netfilter netlink socket needs no privilege, so these run anywhere;
tests/integration/test_nft_library.py checks the whole path on a real table.
"""

from __future__ import annotations

import os
import socket

from netlab.kernel import nfclose


def netfilter_sockets() -> set[tuple[int, int]]:
    return {(fd, ino) for fd, ino in nfclose.sockets() if nfclose.is_netfilter(fd)}


def netfilter() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, nfclose.NETLINK_NETFILTER)


def test_the_one_new_netfilter_socket_is_held_by_a_second_reference():
    before = nfclose.sockets()
    other = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)  # new, not netfilter: not held
    library = netfilter()
    held = nfclose.hold(before, nfclose.sockets())
    try:
        with nfclose.closing_after():
            assert held is not None and held != library.fileno()
            assert os.fstat(held).st_ino == os.fstat(library.fileno()).st_ino  # the same socket
            assert os.get_inheritable(held) is False  # close-on-exec: no program started meanwhile keeps it
            library.close()  # the library's close: the socket lives on through ``held``
            ino = os.fstat(held).st_ino
            nfclose.let_go(held)
            assert any(i == ino for _, i in netfilter_sockets())  # not closed before the thread is back home
    finally:
        other.close()
    assert nfclose.wait_closed()
    assert not any(i == ino for _, i in netfilter_sockets())


def test_nothing_is_held_when_the_library_socket_cannot_be_told_apart():
    before = nfclose.sockets()
    a, b = netfilter(), netfilter()  # another thread opened one at the same moment
    try:
        assert nfclose.hold(before, nfclose.sockets()) is None
    finally:
        a.close()
        b.close()
    assert nfclose.hold(before, nfclose.sockets()) is None  # none new: nothing to hold


def test_a_socket_closed_before_it_is_held_is_not_mistaken_for_its_number_reused():
    before = nfclose.sockets()
    s = netfilter()
    after = nfclose.sockets()
    number = s.fileno()
    s.close()
    reused = os.open("/dev/null", os.O_RDONLY)
    try:
        assert reused == number
        assert nfclose.hold(before, after) is None
    finally:
        os.close(reused)
