"""ctnetlink's conntrack dump, decoded by netlab's codec (kernel/nfnl.py): the same entries, and the same lines,
as the conntrack program gives for the same table (QA qx 1: trace needs no conntrack program).

The messages are bytes of real dumps (IPCTNL_MSG_CT_GET in a throwaway namespace: a TCP connection and a UDP
flow DNATed by an OUTPUT rule, a closed TCP connection, an unanswered UDP flow, a ping; then a UDP flow in zone 7
and a ping whose entry has mark 42), recorded with ``conntrack -L`` of the same table read right after.
"""

from __future__ import annotations

import base64

import pytest

from netlab.errors import EnvironmentNotReady
from netlab.kernel import conntrack, netlink, nfnl
from netlab.trace import tables

# The bodies of the dumps' messages (after the netlink header: IPCTNL_MSG_CT_NEW of NFNL_SUBSYS_CTNETLINK), and
# `conntrack -L` of the same table, read right after the dump (same order: the kernel's).
DUMP = [
    "AgAAADQAAYAUAAGACAABAH8AAAEIAAIAfwAABRwAAoAFAAEABgAAAAYAAgCrHAAABgADAABQAAA0AAKAFAABgAgAAQB/AAABCAAC"
    "AH8AAAEcAAKABQABAAYAAAAGAAIAH5AAAAYAAwCrHAAACAADAAAAAa4IAAgAAAAAAAgADADqSvoACAALAAAAAAEIAAcAAAaXfzAA"
    "BIAsAAGABQABAAMAAAAFAAIACgAAAAUAAwAKAAAABgAEACMAAAAGAAUAIwAAAA==",
    "AgAAADwAAYAUAAGACAABAH8AAAEIAAIAfwAAASQAAoAFAAEAAQAAAAYABABvPAAABQAFAAgAAAAFAAYAAAAAADwAAoAUAAGACAAB"
    "AH8AAAEIAAIAfwAAASQAAoAFAAEAAQAAAAYABABvPAAABQAFAAAAAAAFAAYAAAAAAAgAAwAAAAGKCAAIAAAAAAAIAAwAgI+rfQgA"
    "CwAAAAABCAAHAAAAAB0=",
    "AgAAADQAAYAUAAGACAABAH8AAAEIAAIAfwAACRwAAoAFAAEAEQAAAAYAAgDkSgAABgADACcPAAA0AAKAFAABgAgAAQB/AAAJCAAC"
    "AH8AAAEcAAKABQABABEAAAAGAAIAJw8AAAYAAwDkSgAACAADAAAAAYgIAAgAAAAAAAgADACu2YCTCAALAAAAAAEIAAcAAAAAHQ==",
    "AgAAADQAAYAUAAGACAABAH8AAAEIAAIAfwAABRwAAoAFAAEAEQAAAAYAAgDmyAAABgADAAA1AAA0AAKAFAABgAgAAQB/AAABCAAC"
    "AH8AAAEcAAKABQABABEAAAAGAAIAFOkAAAYAAwDmyAAACAADAAAAAaoIAAgAAAAAAAgADAAy3hwkCAALAAAAAAEIAAcAAAAAHQ==",
    "AgAAADQAAYAUAAGACAABAH8AAAEIAAIAfwAABRwAAoAFAAEABgAAAAYAAgCrJAAABgADAABQAAA0AAKAFAABgAgAAQB/AAABCAAC"
    "AH8AAAEcAAKABQABAAYAAAAGAAIAH5AAAAYAAwCrJAAACAADAAAAAa4IAAgAAAAAAAgADAAWTGUtCAALAAAAAAEIAAcAAAAAdzAA"
    "BIAsAAGABQABAAcAAAAFAAIACgAAAAUAAwAKAAAABgAEACcAAAAGAAUAIwAAAA==",
]
LISTED = [
    "tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.5 sport=43804 dport=80 src=127.0.0.1 dst=127"
    ".0.0.1 sport=8080 dport=43804 [ASSURED] mark=0 use=1",
    "icmp     1 29 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=28476 src=127.0.0.1 dst=127.0.0.1 type=0 "
    "code=0 id=28476 mark=0 use=1",
    "udp      17 29 src=127.0.0.1 dst=127.0.0.9 sport=58442 dport=9999 [UNREPLIED] src=127.0.0.9 dst=127."
    "0.0.1 sport=9999 dport=58442 mark=0 use=1",
    "udp      17 29 src=127.0.0.1 dst=127.0.0.5 sport=59080 dport=53 src=127.0.0.1 dst=127.0.0.1 sport=53"
    "53 dport=59080 mark=0 use=1",
    "tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.5 sport=43812 dport=80 src=127.0.0.1 dst=127.0.0."
    "1 sport=8080 dport=43812 [ASSURED] mark=0 use=1",
]
DUMP_ZONE_MARK = [
    "AgAAADwAAYAUAAGACAABAH8AAAEIAAIAfwAACCQAAoAFAAEAAQAAAAYABABvTwAABQAFAAgAAAAFAAYAAAAAADwAAoAUAAGACAAB"
    "AH8AAAgIAAIAfwAAASQAAoAFAAEAAQAAAAYABABvTwAABQAFAAAAAAAFAAYAAAAAAAgAAwAAAAAKCAAIAAAAACoIAAwAShlIeggA"
    "CwAAAAABCAAHAAAAAB0=",
    "AgAAADQAAYAUAAGACAABAH8AAAEIAAIAfwAABxwAAoAFAAEAEQAAAAYAAgDqBAAABgADAB5hAAA0AAKAFAABgAgAAQB/AAAHCAAC"
    "AH8AAAEcAAKABQABABEAAAAGAAIAHmEAAAYAAwDqBAAABgASAAAHAAAIAAMAAAAACAgACAAAAAAACAAMABjRbYcIAAsAAAAAAQgA"
    "BwAAAAAd",
]
LISTED_ZONE_MARK = [
    "icmp     1 29 src=127.0.0.1 dst=127.0.0.8 type=8 code=0 id=28495 src=127.0.0.8 dst=127.0.0.1 type=0 "
    "code=0 id=28495 mark=42 use=1",
    "udp      17 29 src=127.0.0.1 dst=127.0.0.7 sport=59908 dport=7777 [UNREPLIED] src=127.0.0.7 dst=127."
    "0.0.1 sport=7777 dport=59908 mark=0 zone=7 use=1",
]


def msgs(bodies: list[str]) -> list[netlink.Msg]:
    return [netlink.Msg(nfnl.NFNL_SUBSYS_CTNETLINK << 8, 2, 0, base64.b64decode(b)) for b in bodies]


@pytest.mark.parametrize("dump, listed", [(DUMP, LISTED), (DUMP_ZONE_MARK, LISTED_ZONE_MARK)])
def test_each_entry_is_the_line_conntrack_prints(dump, listed):
    assert [nfnl.ct_record(m).text() for m in msgs(dump)] == listed


def test_the_entries_trace_reads_are_those_the_old_parser_gave(monkeypatch):
    monkeypatch.setattr(conntrack, "_dump", lambda ns: msgs(DUMP))
    for proto in ("tcp", "udp", "icmp"):
        old = [tables.parse_conntrack(line) for line in LISTED if line.startswith(proto + " ")]
        assert old and tables.read_conntrack("ns", proto) == old


def test_fields_of_the_entries():
    tcp, icmp, unreplied, udp, closed = [nfnl.ct_record(m) for m in msgs(DUMP)]
    assert (tcp.proto, tcp.protonum, tcp.state, tcp.timeout, tcp.flags) == ("tcp", 6, "ESTABLISHED", 431999,
                                                                             ("ASSURED",))
    assert dict(tcp.orig) == {"src": "127.0.0.1", "dst": "127.0.0.5", "sport": "43804", "dport": "80"}
    assert dict(tcp.reply) == {"src": "127.0.0.1", "dst": "127.0.0.1", "sport": "8080", "dport": "43804"}
    assert {"SEEN_REPLY", "ASSURED", "CONFIRMED", "DST_NAT", "DST_NAT_DONE"} <= set(tcp.status_names)
    assert dict(icmp.orig) == {"src": "127.0.0.1", "dst": "127.0.0.1", "type": "8", "code": "0", "id": "28476"}
    assert dict(icmp.reply) == {"src": "127.0.0.1", "dst": "127.0.0.1", "type": "0", "code": "0", "id": "28476"}
    assert unreplied.flags == ("UNREPLIED",) and "SEEN_REPLY" not in unreplied.status_names
    assert udp.flags == () and udp.mark == 0 and udp.zone is None and udp.state is None
    assert closed.state == "TIME_WAIT" and closed.timeout == 119
    ping, zoned = [nfnl.ct_record(m) for m in msgs(DUMP_ZONE_MARK)]
    assert ping.mark == 42 and zoned.zone == 7 and zoned.flags == ("UNREPLIED",)


def test_tuples_leave_out_entries_without_ports():
    got = [nfnl.ct_tuples(m) for m in msgs(DUMP)]
    assert got[1] is None  # the ping
    assert got[0] == (6, {"src": "127.0.0.1", "dst": "127.0.0.5", "sport": "43804", "dport": "80"},
                      {"src": "127.0.0.1", "dst": "127.0.0.1", "sport": "8080", "dport": "43804"})


def test_list_entries_filters_by_protocol(monkeypatch):
    monkeypatch.setattr(conntrack, "_dump", lambda ns: msgs(DUMP))
    assert conntrack.list_entries("ns", "udp") == [line for line in LISTED if line.startswith("udp ")]
    assert conntrack.list_entries("ns") == LISTED


def test_a_kernel_without_ctnetlink_is_one_line(monkeypatch):
    def refused(ns):
        raise netlink.NetlinkError(22, "conntrack entries in ns")

    monkeypatch.setattr(conntrack, "_dump", refused)
    with pytest.raises(EnvironmentNotReady, match="modprobe nf_conntrack_netlink"):
        conntrack.entries("ns")
