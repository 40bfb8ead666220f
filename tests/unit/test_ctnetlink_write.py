"""conntrack entries made and deleted over ctnetlink by netlab's codec (kernel/nfnl.py, kernel/ctfilter.py): the
bytes conntrack(8) sends for ``conntrack -I`` and ``-D``, and ``conntrack -D``'s filters matched as that program
matches them (netlink through one codec: no conntrack program for up's stale UDP entries nor for break
conntrack-stale-entry).

KNOWN_NEW is what conntrack v1.4.7 sent (strace -xx of its sendto) for ``conntrack -I -p udp -s 10.244.1.5 -d
10.96.0.10 --sport 40000 --dport 53 --dst-nat 10.244.0.99:53 -t 600``, written out field by field as
include/uapi/linux/netfilter/nfnetlink_conntrack.h lays them out (one padding byte libnetfilter_conntrack left
unset, in the reply tuple's CTA_PROTO_NUM, is a zero here).
"""

from __future__ import annotations

import errno
import struct

import pytest

from netlab.kernel import conntrack, ctfilter, netlink, nfnl
from netlab.kernel.ctfilter import CtFilter
from netlab.kernel.nfnl import CtRecord


def nla(kind: int, payload: bytes, nest: bool = False) -> bytes:
    """One attribute, by hand: length, type (NLA_F_NESTED 0x8000 for a nest), payload, padding to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind | (0x8000 if nest else 0)) + payload + b"\0" * (-length % 4)


def tuple_(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    ip = nla(1, src) + nla(2, dst)  # CTA_IP_V4_SRC, CTA_IP_V4_DST
    proto = nla(1, b"\x11") + nla(2, struct.pack("!H", sport)) + nla(3, struct.pack("!H", dport))  # UDP, ports
    return nla(1, ip, nest=True) + nla(2, proto, nest=True)  # CTA_TUPLE_IP, CTA_TUPLE_PROTO


CLIENT, CIP, GONE = bytes([10, 244, 1, 5]), bytes([10, 96, 0, 10]), bytes([10, 244, 0, 99])
NFGENMSG = bytes([2, 0, 0, 0])  # AF_INET, NFNETLINK_V0, res_id 0
KNOWN_NEW = (NFGENMSG + nla(1, tuple_(CLIENT, CIP, 40000, 53), nest=True)  # CTA_TUPLE_ORIG
             + nla(2, tuple_(CIP, CLIENT, 53, 40000), nest=True)  # CTA_TUPLE_REPLY: its inverse
             + nla(7, struct.pack("!I", 600))  # CTA_TIMEOUT
             + nla(13, nla(1, GONE) + nla(3, nla(1, b"\x00\x35") + nla(2, b"\x00\x35"), nest=True), nest=True))
# ...CTA_NAT_DST: CTA_NAT_V4_MINIP, CTA_NAT_PROTO (CTA_PROTONAT_PORT_MIN, _MAX)


def header(msg: bytes) -> tuple[int, int, int]:
    length, mtype, flags = struct.unpack_from("=IHH", msg)
    return length, mtype, flags


def test_the_insert_is_the_message_conntrack_i_sends():
    msg = nfnl.ct_new("10.244.1.5", "10.96.0.10", 17, 40000, 53, 600, ("10.244.0.99", 53))
    assert KNOWN_NEW.hex(" ", 4) == msg[16:].hex(" ", 4)
    # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW; NLM_F_REQUEST|NLM_F_EXCL|NLM_F_CREATE (Conn adds NLM_F_ACK)
    assert header(msg) == (16 + len(KNOWN_NEW), 1 << 8 | 0, 0x1 | 0x200 | 0x400)
    assert len(KNOWN_NEW) + 16 == 164  # conntrack's nlmsg_len


def test_an_answered_flows_insert_carries_the_status_conntrack_i_u_sends():
    """QA q26 1: `conntrack -I ... -u SEEN_REPLY,ASSURED` sends CTA_STATUS 0x0e (SEEN_REPLY, ASSURED and
    CONFIRMED, strace of conntrack 1.4.7): without CONFIRMED the kernel refuses EBUSY."""
    plain = nfnl.ct_new("10.244.1.5", "10.96.0.10", 17, 40000, 53, 600, ("10.244.0.99", 53))
    msg = nfnl.ct_new("10.244.1.5", "10.96.0.10", 17, 40000, 53, 600, ("10.244.0.99", 53),
                      nfnl.IPS_SEEN_REPLY | nfnl.IPS_ASSURED)
    status = nla(3, bytes.fromhex("0000000e"))  # CTA_STATUS, big-endian
    assert status in msg[16:] and msg[16:].replace(status, b"") == plain[16:]
    assert header(msg)[0] == len(plain) + 8


def test_the_delete_names_the_original_tuple_and_the_entrys_id():
    msg = nfnl.ct_delete("10.244.1.5", "10.96.0.10", 17, 40000, 53, 0x0DA8B0C2)
    assert msg[16:] == NFGENMSG + nla(1, tuple_(CLIENT, CIP, 40000, 53), nest=True) + nla(12, bytes.fromhex(
        "0da8b0c2"))  # CTA_ID, big-endian
    assert header(msg) == (len(msg), 1 << 8 | 2, 0x1)  # IPCTNL_MSG_CT_DELETE
    assert nfnl.ct_delete("10.244.1.5", "10.96.0.10", 17, 40000, 53)[16:] == msg[16:-8]  # no id: the tuple alone


def entry(src="10.244.1.5", sport="40000", dst="10.96.0.10", dport="53", to="10.244.0.99", to_port="53",
          proto=17, status=nfnl.IPS_DST_NAT_DONE | 1 << 5 | 1 << 3) -> CtRecord:
    return CtRecord(nfnl.PROTO_NAMES[proto], proto, {"src": src, "dst": dst, "sport": sport, "dport": dport},
                    {"src": to, "dst": src, "sport": to_port, "dport": sport}, status, 30, id=7)


def parse(*words: str) -> CtFilter:
    return CtFilter.parse(words)


KUBE_PROXY = parse("-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.99")


@pytest.mark.parametrize("record, matched", [
    (entry(), True),
    (entry(to="10.244.0.98"), False),  # DNATed to another endpoint: it stays
    (entry(dport="54"), False),  # another port of the ClusterIP
    (entry(dst="10.96.0.11"), False),
    (entry(proto=6), False),  # TCP: kube-proxy deletes UDP's only
    (entry(status=1 << 3), False),  # no DST_NAT_DONE: no DNAT, whatever the reply says (libnetfilter_conntrack)
    (entry(to="10.96.0.10"), False),  # reply from the original destination: not DNATed
])
def test_a_filter_matches_as_conntrack_d_does(record, matched):
    assert KUBE_PROXY.matches(record) is matched


def test_a_nodeport_filter_matches_any_address_and_dst_nat_alone_any_dnat():
    node_port = parse("-p", "udp", "--orig-port-dst", "30053")
    assert node_port.matches(entry(dst="192.168.1.2", dport="30053"))
    assert node_port.matches(entry(dst="10.0.0.9", dport="30053", status=1 << 3, to="10.0.0.9"))  # no DNAT asked
    assert not node_port.matches(entry(dport="53"))
    anydnat = parse("-p", "udp", "--dst-nat")
    assert anydnat.matches(entry()) and not anydnat.matches(entry(status=1 << 3, to="10.96.0.10"))
    exact = parse("-p", "udp", "--orig-src", "10.244.1.5", "--orig-port-src", "40000", "--orig-dst",
                  "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.99")
    assert exact.matches(entry()) and not exact.matches(entry(sport="40001"))
    assert not exact.matches(entry(src="10.244.1.6"))



def test_a_reply_tuple_filter_matches_the_reply_as_kube_proxys_reply_src_does():
    """kube-proxy's cleanup filters by the reply's source (pkg/proxy/conntrack/cleanup.go, filterForIPPortNAT): for an
    entry never DNATed, the Service address itself; up's filter for it names the whole original tuple too."""
    never = entry(status=1 << 3, to="10.96.0.10")  # sent before the Service's rules: the reply from the ClusterIP
    f = parse("-p", "udp", "--orig-src", "10.244.1.5", "--orig-port-src", "40000", "--orig-dst", "10.96.0.10",
              "--orig-port-dst", "53", "--reply-src", "10.96.0.10")
    assert f.matches(never) and not f.matches(entry()) and not f.matches(entry(to="10.96.0.10", sport="40001"))
    assert parse("-p", "udp", "-r", "10.244.0.99").matches(entry()) and not parse("-r", "10.96.0.10").matches(entry())
    assert parse("-p", "udp", "-q", "10.244.1.5", "--reply-port-src", "53", "--reply-port-dst", "40000").matches(
        entry())
    assert not parse("-p", "udp", "--reply-port-dst", "40001").matches(entry())
    with pytest.raises(ValueError):
        parse("--reply-port-src", "53")  # a port without a protocol, as conntrack(8) says
    with pytest.raises(ValueError):
        parse("-p", "udp", "--reply-src", "10.96.0")

def test_each_matching_entry_is_deleted_once_in_the_dumps_order():
    a, b, c = entry(sport="1"), entry(sport="2", to="10.244.0.98"), entry(sport="3")
    both = [KUBE_PROXY, parse("-p", "udp", "--orig-port-src", "1")]
    assert ctfilter.matching([a, b, c], both) == [a, c]


@pytest.mark.parametrize("words", [
    ("-p", "udp", "--mark", "1"),  # not one of the filters netlab passes: refused, never read otherwise
    ("-p", "udp", "--dst-nat", "10.0.0.1:53"),
    ("--orig-port-dst", "53"),  # a port without a protocol
    ("-p", "nosuch"),
    ("-p", "udp", "--orig-dst", "10.96.0"),
    ("-p", "udp", "--orig-dst"),
])
def test_a_filter_netlab_cannot_match_exactly_is_refused(words):
    with pytest.raises(ValueError):
        CtFilter.parse(words)


class FakeConn:
    """netlink.Conn.batch as the kernel answers it: a failure ends the batch after its chunk (CHUNK: 2 here)."""

    def __init__(self, codes: dict[bytes, int]):
        self.codes, self.sent = codes, []

    def batch(self, requests):
        out = []
        for start in range(0, len(requests), 2):
            for _, msg in requests[start:start + 2]:
                self.sent.append(msg)
                out.append(self.codes.get(msg, 0))
            if any(out):
                break
        return out


def test_every_delete_is_sent_once_and_only_other_failures_than_enoent_are_problems():
    requests = [(f"entry {i}", bytes([i])) for i in range(5)]
    conn = FakeConn({bytes([0]): errno.ENOENT, bytes([3]): errno.EPERM})
    codes, problems = conntrack._delete_all(conn, requests)  # type: ignore[arg-type]
    assert conn.sent == [bytes([i]) for i in range(5)]
    assert problems == ["entry 3: Operation not permitted"]
    assert codes == [errno.ENOENT, 0, 0, errno.EPERM, 0]  # each delete's answer: 0 only for what the kernel deleted


def test_records_keep_the_entrys_id_for_the_delete():
    body = KNOWN_NEW[:-32] + nla(3, struct.pack("!I", 0x1A8)) + nla(12, struct.pack("!I", 99))  # no CTA_NAT_DST
    r = nfnl.ct_record(netlink.Msg(1 << 8, 0, 0, body))
    assert r is not None and r.id == 99 and r.timeout == 600 and r.status_names == ("CONFIRMED", "DST_NAT", "SRC_NAT_DONE",
                                                               "DST_NAT_DONE")
