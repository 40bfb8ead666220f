"""netlab.probe.icmp against scapy, an independent builder and dissector of the same packets."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, UDP, ICMPerror, IPerror, UDPerror
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from netlab.probe import icmp


RANDOM = random.Random(15)


@pytest.mark.parametrize("data", [b"", b"\x01", b"netlab", b"\xff" * 1471, RANDOM.randbytes(64), RANDOM.randbytes(1473)],
                         ids=["empty", "one-byte", "text", "ones-odd", "random-64", "random-1473"])
def test_the_internet_checksum_is_scapys(data):
    assert icmp.checksum(data) == scapy_checksum(data)


def test_an_echo_request_is_the_one_scapy_builds():
    payload = b"netlab" + bytes(range(8))
    ours = icmp.echo_request(payload, ident=0x1234, seq=1)
    assert ours == bytes(ICMP(type="echo-request", code=0, id=0x1234, seq=1) / Raw(load=payload))
    assert icmp.checksum(ours) == 0  # a packet with its checksum sums to zero


def test_a_host_unreachable_names_the_echo_it_quotes_and_who_sent_it():
    probe = IP(src="10.244.0.2", dst="10.244.1.9") / ICMP(type="echo-request", id=4242, seq=1) / Raw(b"netlab")
    error = IP(src="10.244.1.1", dst="10.244.0.2") / ICMP(type="dest-unreach", code=1) / bytes(probe)[:28]
    err = icmp.parse_error(bytes(error))
    assert err is not None and (err.type, err.code) == (icmp.DEST_UNREACH, 1)
    assert err.reporter == "10.244.1.1" and err.quoted_dst == "10.244.1.9" and err.echo_id == 4242
    assert err.udp_ports is None
    assert err.describe() == "destination unreachable: host unreachable (ICMP from 10.244.1.1)"
    # scapy reads the same packet the same way
    pkt = IP(bytes(error))
    assert pkt[ICMPerror].id == err.echo_id and pkt[IPerror].dst == err.quoted_dst


def test_a_port_unreachable_names_the_datagram_it_quotes():
    probe = IP(src="10.244.0.2", dst="10.96.0.10") / UDP(sport=40001, dport=53) / Raw(b"x")
    error = IP(src="10.244.0.1", dst="10.244.0.2") / ICMP(type="dest-unreach", code=3) / bytes(probe)
    err = icmp.parse_error(bytes(error))
    assert err is not None and err.udp_ports == (40001, 53) and err.echo_id is None
    assert (IP(bytes(error))[UDPerror].sport, IP(bytes(error))[UDPerror].dport) == err.udp_ports
    assert err.describe().startswith("destination unreachable: port unreachable")


def test_time_exceeded_is_an_error_and_an_echo_reply_or_garbage_is_not():
    probe = IP(src="10.244.0.2", dst="10.244.1.9", ttl=1) / ICMP(type="echo-request", id=7)
    exceeded = IP(src="192.168.50.1", dst="10.244.0.2") / ICMP(type="time-exceeded", code=0) / bytes(probe)
    err = icmp.parse_error(bytes(exceeded))
    assert err is not None and err.echo_id == 7
    assert err.describe() == "time exceeded: ttl exceeded in transit (ICMP from 192.168.50.1)"
    reply = IP(src="10.244.1.9", dst="10.244.0.2") / ICMP(type="echo-reply", id=7)
    assert icmp.parse_error(bytes(reply)) is None
    assert icmp.parse_error(b"") is None and icmp.parse_error(bytes(exceeded)[:30]) is None


@pytest.mark.parametrize("itype, code, words", [
    (3, 1, "destination unreachable: host unreachable"),
    (11, 0, "time exceeded: ttl exceeded in transit"),
    (8, 0, "echo request"),  # an echo's only code says nothing
    (42, 0, "type 42: code 0"),
    (3, 99, "destination unreachable: code 99"),
    (12, 0, "parameter problem: code 0"),
], ids=["known", "time-exceeded", "echo", "unknown-type", "unknown-code", "type-without-named-codes"])
def test_icmp_words(itype, code, words):
    assert icmp.icmp_words(itype, code) == words
