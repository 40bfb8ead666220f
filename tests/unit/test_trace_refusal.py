"""A traced packet the destination refused: the sock_diag codec, the reason, and the result's verdict (no root)."""

from __future__ import annotations

import socket
import struct

from netlab.kernel import netlink, sockdiag
from netlab.kernel.sockdiag import Bound
from netlab.trace import picture, refusal
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import explain
from test_trace_walk import ping, world  # noqa: F401  (the fixture)


def answer(family: int, state: int, address: str, port: int, v6only: bool | None = None, rqueue: int = 0) -> bytes:
    """An inet_diag_msg as the kernel writes it (include/uapi/linux/inet_diag.h), with INET_DIAG_SKV6ONLY."""
    raw = socket.inet_pton(family, address).ljust(16, b"\0")
    body = struct.pack("=BBBB", family, state, 0, 0) + struct.pack("!HH16s16s", port, 0, raw, b"")
    body += struct.pack("=III", 0, 0, 0) + struct.pack("=IIIII", 1500, rqueue, 7, 0, 12345)
    if v6only is not None:
        body += netlink.u8(sockdiag.INET_DIAG_SKV6ONLY, int(v6only))
    return body


def test_the_dump_request_asks_one_family_and_protocol_tcp_listening_udp_all():
    tcp = sockdiag.dump_request(socket.AF_INET, "tcp")
    length, mtype = struct.unpack_from("=IH", tcp)
    assert length == len(tcp) == 16 + 56 and mtype == sockdiag.SOCK_DIAG_BY_FAMILY
    family, proto, _, _, states = struct.unpack_from("=BBBBI", tcp, 16)
    assert (family, proto, states) == (socket.AF_INET, socket.IPPROTO_TCP, 1 << sockdiag.TCP_LISTEN)
    udp = sockdiag.dump_request(socket.AF_INET6, "udp")
    family, proto, _, _, states = struct.unpack_from("=BBBBI", udp, 16)
    assert (family, proto, states) == (socket.AF_INET6, socket.IPPROTO_UDP, sockdiag.ALL_STATES)
    # the connections with more to send (an interrupted probe's wait): ESTAB, SYN-RECV, FIN-WAIT-1, CLOSE-WAIT,
    # LAST-ACK, CLOSING; not LISTEN, FIN-WAIT-2 (waits for the peer), TIME-WAIT, SYN-SENT
    talking = sockdiag.dump_request(socket.AF_INET, "tcp", sum(1 << s for s in sockdiag.SENDING))
    assert struct.unpack_from("=I", talking, 16 + 4)[0] == 0b101100011010


def test_answers_parse_to_the_bound_address_and_port():
    v4 = sockdiag.parse_answer(answer(socket.AF_INET, 10, "10.244.1.3", 8080))
    assert v4 == Bound(socket.AF_INET, "10.244.1.3", 8080, 10) and v4.text() == "10.244.1.3:8080"
    v6 = sockdiag.parse_answer(answer(socket.AF_INET6, 10, "::", 53, v6only=True))
    assert v6 == Bound(socket.AF_INET6, "::", 53, 10, True) and v6.text() == "[::]:53"
    both = sockdiag.parse_answer(answer(socket.AF_INET6, 10, "::", 53, v6only=False))
    assert both is not None and both.text() == "*:53" and both.state_name == "LISTEN"  # as ss prints them
    udp = sockdiag.parse_answer(answer(socket.AF_INET, 7, "0.0.0.0", 8080))
    assert udp is not None and udp.state_name == "UNCONN"
    assert sockdiag.parse_answer(answer(socket.AF_INET, 10, "0.0.0.0", 80)[:40]) is None  # cut short


def test_answers_carry_what_waits_for_the_sockets_owner():
    # ss's Recv-Q: a UDP socket's bytes of datagrams not read, a listener's connections not accepted (an
    # interrupted probe sweeps on while the lab's servers hold its requests: probe/agent.py).
    udp = sockdiag.parse_answer(answer(socket.AF_INET, 7, "0.0.0.0", 8080, rqueue=832))
    listener = sockdiag.parse_answer(answer(socket.AF_INET, 10, "0.0.0.0", 8080, rqueue=9))
    assert udp is not None and udp.queued == 832 and listener is not None and listener.queued == 9
    assert sockdiag.parse_answer(answer(socket.AF_INET, 10, "0.0.0.0", 80)).queued == 0


def test_which_sockets_take_a_packet_to_an_ipv4_address():
    assert Bound(socket.AF_INET, "0.0.0.0", 80, 10).takes("10.244.1.3")
    assert Bound(socket.AF_INET, "10.244.1.3", 80, 10).takes("10.244.1.3")
    assert not Bound(socket.AF_INET, "127.0.0.1", 80, 10).takes("10.244.1.3")
    assert Bound(socket.AF_INET6, "::", 80, 10).takes("10.244.1.3")  # dual-stack
    assert not Bound(socket.AF_INET6, "::", 80, 10, v6only=True).takes("10.244.1.3")
    assert Bound(socket.AF_INET6, "::ffff:10.244.1.3", 80, 10).takes("10.244.1.3")
    assert not Bound(socket.AF_INET6, "fd00::1", 80, 10).takes("10.244.1.3")


def test_the_reason_says_nothing_listens_another_address_or_a_rule():
    ns = "demo-fedora-2"
    assert refusal.reason("tcp", ns, "10.244.1.3", 9999, [Bound(socket.AF_INET, "0.0.0.0", 8080, 10)]) == (
        "no socket listens on tcp port 9999 in demo-fedora-2; its kernel answered with a TCP reset "
        "(ip netns exec demo-fedora-2 ss -ltn)")
    assert refusal.reason("udp", ns, "10.244.1.3", 9999, []).startswith(
        "no socket is bound to udp port 9999 in demo-fedora-2; its kernel answered with an ICMP port unreachable")
    local = refusal.reason("tcp", ns, "10.244.1.3", 9998, [Bound(socket.AF_INET, "127.0.0.1", 9998, 10)])
    assert local.startswith("tcp port 9998 in demo-fedora-2 is bound to 127.0.0.1:9998 only, not to 10.244.1.3")
    rule = refusal.reason("tcp", ns, "10.244.1.3", 8080, [Bound(socket.AF_INET, "0.0.0.0", 8080, 10)])
    assert "has a socket in demo-fedora-2 (0.0.0.0:8080)" in rule and "iptables-save" in rule
    # A kernel that cannot list its sockets (no inet_diag): the reset said, nothing claimed about the sockets.
    unknown = refusal.reason("tcp", ns, "10.244.1.3", 9999, None)
    assert unknown.startswith("demo-fedora-2 answered tcp port 9999 with a TCP reset") and "no socket" not in unknown


class Refusing:
    """A NETLINK_SOCK_DIAG connection whose kernel answers a dump of ``refused`` families with an error."""

    def __init__(self, refused: set[int], answers: list[bytes]):
        self.refused, self.answers = refused, answers

    def dump(self, what: str, msg: bytes) -> list[netlink.Msg]:
        family = msg[16]
        if family in self.refused:
            raise netlink.NetlinkError(2, what)
        return [netlink.Msg(0, 0, 0, a) for a in self.answers if a[0] == family]


def test_a_kernel_that_cannot_list_ipv4_sockets_says_nothing_and_one_without_ipv6_lists_ipv4():
    v4 = answer(socket.AF_INET, 10, "0.0.0.0", 8080)
    assert sockdiag.bound(Refusing({socket.AF_INET}, [v4]), "tcp") is None  # type: ignore[arg-type]
    assert sockdiag.bound(Refusing({socket.AF_INET6}, [v4]), "tcp") == [  # type: ignore[arg-type]
        Bound(socket.AF_INET, "0.0.0.0", 8080, 10)]


def test_a_refused_packet_is_delivered_yet_not_ok_and_says_so(world):  # noqa: F811
    lab, m, k = world
    w = ping(k, m)
    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"},
                    dst={"name": "fedora-2", "ip": "10.244.1.3"}, proto="tcp", port=9999, marker="m", forward=w,
                    reply=None, verdict=explain(w), reply_verdict=None, reply_received=True)
    number(r)
    assert r.verdict.delivered and r.ok  # the walk alone: delivered
    r.refused = refusal.reason("tcp", "demo-fedora-2", "10.244.1.3", 9999, [])
    assert not r.ok  # the CLI exits 1
    assert r.to_json()["delivered"] and r.to_json()["refused"] == r.refused
    line = next(x for x in render_text(r).splitlines() if x.startswith("result:"))
    assert line.startswith("result: REFUSED by fedora-2") and "no socket listens on tcp port 9999" in line
    assert "reply received" not in line
    assert picture.title(r).endswith(": REFUSED")


def test_a_policy_verdict_is_said_once_and_not_again_after_the_result(world):  # noqa: F811
    """A Service's trace holds a policy verdict per endpoint the DNAT may pick; the same words were printed once
    per endpoint, and again after a LOST result that already said them."""
    from netlab.trace.verdict import Verdict

    lab, m, k = world
    w = ping(k, m)
    dropped = "dropped in node n2, chain NETPOL-OUT-X, by policy default/only-dns (no egress rule allows it)"
    entries = [{"pod": f"default/web-{i}", "allowed": False, "text": dropped} for i in (1, 2)]
    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"},
                    dst={"name": "fedora-2", "ip": "10.244.1.3"}, proto="tcp", port=80, marker="m", forward=w,
                    reply=None, verdict=explain(w), reply_verdict=None, reply_received=True, policy=entries)
    number(r)
    assert [x for x in render_text(r).splitlines() if x.startswith("policy:")] == [f"policy: {dropped}"]
    r.verdict = Verdict(delivered=False, lost_at=0, reason=f"{dropped}; the client gets no reset: ...")
    assert not [x for x in render_text(r).splitlines() if x.startswith("policy:")]
