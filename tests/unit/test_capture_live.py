"""capture's reading loop at Ctrl-C (netlab/trace/capture.py live): the frames already queued still count; what
capture says of a capture that caught nothing (netlab/cli/trace.py)."""

from __future__ import annotations

import pytest

from netlab.trace.capture import Frame, live


class _Interrupted:
    """A capture whose wait is cut short by Ctrl-C after one frame, with two more queued on its socket."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, deadline: float) -> list[Frame]:
        self.waits += 1
        if self.waits == 1:
            return [_frame(1)]
        raise KeyboardInterrupt

    def drain(self) -> list[Frame]:
        return [_frame(2), _frame(3)]


def _frame(n: int) -> Frame:
    return Frame("lab-a", "eth0", "in", float(n), b"\x00" * 14, 14)


@pytest.mark.parametrize("count,got", [(10, [1, 2, 3]), (2, [1, 2])])
def test_ctrl_c_keeps_the_queued_frames_up_to_the_count_and_still_ends_the_capture(count, got):
    seen: list[Frame] = []
    with pytest.raises(KeyboardInterrupt):
        live(_Interrupted(), count, 60, seen.append)  # type: ignore[arg-type]
    assert [int(f.ts) for f in seen] == got


@pytest.mark.parametrize("stopped,why", [("timeout", "the timeout ran out"), ("interrupted", "stopped by Ctrl-C"),
                                        ("terminated", "stopped by SIGTERM")])
def test_a_capture_of_no_frames_says_where_for_how_long_and_why_it_stopped(stopped, why):
    from netlab.cli.trace import no_frames_line

    line = no_frames_line("lab-a", "eth0", stopped, 10.04, "lab")
    assert line.startswith(f"netlab: 0 frames captured on lab-a eth0 in 10.0 s ({why}): ") and "\n" not in line
    assert line.endswith("e.g. `netlab trace --lab lab SRC DST`")  # as typed, whatever other lab is up


def test_a_dns_message_prints_as_tcpdump_words_it():
    """A DNS query and its answer show the question, the rcode and the records, with addresses and ports; they
    printed as ``IP / UDP ... / Raw`` (scapy's DNS layer was not bound), then without addresses."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    from netlab.trace.capture import describe

    name = "web.default.svc.cluster.local"

    def line(pkt) -> str:
        return describe(Frame("lab-dns", "eth0", "in", 0.0, bytes(pkt), len(bytes(pkt)))).split(None, 2)[2]

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    q = eth / IP(src="10.244.0.3", dst="10.244.0.4", ttl=64) / UDP(sport=40000, dport=53) / DNS(
        id=0x1A2B, rd=1, qd=DNSQR(qname=name, qtype="A"))
    assert line(q) == ("02:00:00:00:00:01 > 02:00:00:00:00:02 IP / UDP 10.244.0.3:40000 > 10.244.0.4:53 / "
                       f"DNS 0x1a2b A? {name}. ttl 64")
    a = eth / IP(src="10.244.0.4", dst="10.244.0.3", ttl=64) / UDP(sport=53, dport=40000) / DNS(
        id=0x1A2B, qr=1, aa=1, qd=DNSQR(qname=name, qtype="A"), an=DNSRR(rrname=name, type="A", rdata="10.96.0.20"))
    assert line(a).endswith(f"/ DNS 0x1a2b NOERROR (A? {name}.) A 10.96.0.20 ttl 64")
    nx = eth / IP(src="10.244.0.4", dst="10.244.0.3") / UDP(sport=53, dport=40000) / DNS(
        id=7, qr=1, rcode=3, qd=DNSQR(qname="nope.default.svc.cluster.local", qtype="AAAA"))
    assert "/ DNS 0x0007 NXDOMAIN (AAAA? nope.default.svc.cluster.local.) ttl" in line(nx)
    tcp = eth / IP(src="10.244.0.3", dst="10.244.0.4") / TCP(sport=40001, dport=53, flags="PA") / DNS(
        id=9, qd=DNSQR(qname=name))
    assert "IP / TCP 10.244.0.3:40001 > 10.244.0.4:53 / DNS 0x0009 A? " in line(tcp), line(tcp)


def test_capture_json_gives_each_dns_frame_the_words_the_text_prints():
    """-o json's rows carry the DNS message (`dns`) as the text output words it, over UDP and TCP (its length
    first); a frame to or from another port, or a TCP segment without a whole message, has none."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    from netlab.trace.capture import dns_of
    from netlab.trace.decode import decode

    name = "web.default.svc.cluster.local"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    q = eth / IP(src="10.244.0.3", dst="10.244.0.4") / UDP(sport=40000, dport=53) / DNS(
        id=0x1A2B, rd=1, qd=DNSQR(qname=name, qtype="A"))
    assert dns_of(decode(bytes(q))) == f"DNS 0x1a2b A? {name}."
    a = eth / IP(src="10.244.0.4", dst="10.244.0.3") / UDP(sport=53, dport=40000) / DNS(
        id=0x1A2B, qr=1, qd=DNSQR(qname=name, qtype="A"), an=DNSRR(rrname=name, type="A", rdata="10.96.0.20"))
    assert dns_of(decode(bytes(a))) == f"DNS 0x1a2b NOERROR (A? {name}.) A 10.96.0.20"
    tcp = eth / IP(src="10.244.0.3", dst="10.244.0.4") / TCP(sport=40001, dport=53, flags="PA") / DNS(
        id=9, qd=DNSQR(qname=name))
    assert dns_of(decode(bytes(tcp))) == f"DNS 0x0009 A? {name}."
    cut = bytes(tcp)[:-5]  # the segment ends before the message does
    assert dns_of(decode(cut)) is None
    echo = eth / IP(src="10.244.0.3", dst="10.244.0.4") / UDP(sport=40000, dport=8080) / b"hello\n"
    assert dns_of(decode(bytes(echo))) is None


def test_a_capture_ended_by_ctrl_c_exits_0_as_tcpdump_and_the_readme_and_help_say_so(monkeypatch):
    """Ctrl-C is how a capture ends (as tcpdump's, which exits 0 at SIGINT), not an interruption (130): the
    frames that came are printed, exit 0. The README's exit-code list names it as the exception, --help too."""
    import re
    from pathlib import Path
    from types import SimpleNamespace

    import netlab.cli.trace as cli_trace
    from netlab.trace import capture as cap
    from netlab.trace import kernel as tkernel
    from cli_inprocess import run_cli

    class _Kernel:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def links(self, netns):
            return {"eth0": None}

    class _Capture(_Kernel):
        def __init__(self, namespaces, iface):
            pass

    def live(capture, count, timeout, show):
        show(_frame(1))
        raise KeyboardInterrupt  # Ctrl-C after one frame

    lab = SimpleNamespace(name="lab", mode="vxlan", topo=SimpleNamespace(
        network=SimpleNamespace(vxlan=SimpleNamespace(port=8472))))
    monkeypatch.setattr(cli_trace, "require_root", lambda: None)
    monkeypatch.setattr(cli_trace, "_running_lab", lambda name, topology: lab)
    monkeypatch.setattr(cli_trace, "_netns_of", lambda lab, name: "lab-a")
    monkeypatch.setattr(tkernel, "LiveKernel", _Kernel)
    monkeypatch.setattr(cap, "Capture", _Capture)
    monkeypatch.setattr(cap, "scapy_layers", lambda port: None)
    monkeypatch.setattr(cap, "live", live)
    monkeypatch.setattr(cap, "describe", lambda frame, port, verbose=False: f"frame {int(frame.ts)}")
    proc = run_cli("capture", "--lab", "lab", "a:eth0", "--timeout", "60")
    assert (proc.returncode, proc.stdout) == (0, "frame 1\n"), proc.stderr
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    codes = readme[readme.index("Exit codes: 0"):readme.index("Shell completion:")]
    assert "130 interrupted by Ctrl-C" in codes and re.search(r"`capture` is the exception: .*exits 0", codes), codes
    assert "exits 0, as tcpdump does" in " ".join(run_cli("capture", "--help").stdout.split())
