"""kernel/nsid.py's request and answer, as linux/net_namespace.h lays them out (``ip netns list-id``)."""

from __future__ import annotations

import struct

from netlab.kernel.nsid import nsid_get, parse_nsid


def test_the_request_carries_the_namespaces_fd_after_an_aligned_rtgenmsg():
    msg = nsid_get(7)
    length, mtype, flags = struct.unpack_from("=IHH", msg)
    assert (length, mtype, flags & 1) == (len(msg), 90, 1)  # RTM_GETNSID, NLM_F_REQUEST
    assert msg[16:] == b"\0\0\0\0" + struct.pack("=HHI", 8, 3, 7)  # rtgenmsg, NETNSA_FD


def test_the_answer_is_the_id_or_none_when_the_namespace_was_given_none():
    assert parse_nsid(b"\0\0\0\0" + struct.pack("=HHi", 8, 1, 3)) == 3
    assert parse_nsid(b"\0\0\0\0" + struct.pack("=HHi", 8, 1, -1)) is None  # NETNSA_NSID_NOT_ASSIGNED
    assert parse_nsid(b"\0\0\0\0") is None
