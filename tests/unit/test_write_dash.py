"""`-w -` is standard output, as tcpdump's -w - (QA q28 #8): capture writes its pcap there (its line and the
command that reads it on stderr: `... | tshark -r -`), refused on a terminal or with -o json; graph and trace write
what they write without -w. It wrote a file named "-", and capture's hint said `tshark -r -`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab.errors import UsageError
from netlab.trace.capture import Frame
from capture_cli import NoKernel, fake_capture

ROOT = Path(__file__).resolve().parents[2]
# A real frame: Ethernet, IPv4, ICMP echo request 10.244.0.2 -> 10.244.1.3.
FRAME = bytes.fromhex("02420af40103" "02420af40002" "0800" "4500001c00014000400124d50af400020af40103"
                      "08000000000000000000")


def _fake_capture(monkeypatch, frames: int = 2) -> None:
    class _Capture(NoKernel):
        ended = None

        def __init__(self, namespaces, iface, bpf=None):
            pass

    def live(capture, count, timeout, show, note=None):
        for n in range(frames):
            show(Frame("lab-a", "eth0", "in", 1000.0 + n, FRAME, len(FRAME)))

    fake_capture(monkeypatch, _Capture, live)


def _invoke(*args: str):
    from netlab.cli.base import cli

    return CliRunner().invoke(cli, list(args))


def test_capture_writes_its_pcap_to_stdout(monkeypatch, tmp_path):
    _fake_capture(monkeypatch)
    monkeypatch.chdir(tmp_path)
    got = _invoke("capture", "--lab", "lab", "a:eth0", "-w", "-")
    assert got.exit_code == 0, got.stderr
    pcap = got.stdout_bytes
    assert pcap[:4] == b"\xd4\xc3\xb2\xa1" and len(pcap) == 24 + 2 * (16 + len(FRAME)), pcap[:40]
    assert pcap.endswith(FRAME)
    assert "to standard output" in got.stderr and "| tshark -r - -d udp.port==8472,vxlan" in got.stderr, got.stderr
    assert os.listdir(tmp_path) == []  # no file named "-"
    got = _invoke("capture", "--lab", "lab", "a:eth0", "-w", "./-")  # a file named "-": the path says so
    assert got.exit_code == 0 and got.stdout.startswith("wrote 2 frames") and "tshark -r ./- " in got.stdout, got
    assert (tmp_path / "-").read_bytes() == pcap


def test_capture_to_stdout_with_json_is_refused(monkeypatch, tmp_path):
    _fake_capture(monkeypatch)
    monkeypatch.chdir(tmp_path)
    from cli_inprocess import run_cli

    got = run_cli("capture", "--lab", "lab", "a:eth0", "-w", "-", "-o", "json")
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "-o json" in got.stderr, got
    # no pcap on stdout: the refusal alone, as the error document -o json asks for (docs/json.md)
    assert json.loads(got.stdout)["error"] == got.stderr.strip()[len("netlab: "):] and os.listdir(tmp_path) == []


def test_a_pcap_on_a_terminal_is_refused(monkeypatch):
    from netlab.cli import output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(output.sys, "stdout", Tty())
    with pytest.raises(UsageError, match="garble the terminal"):
        output.check_pcap_file("-", "text")


def test_graph_and_trace_write_to_stdout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    plain = _invoke("graph", "-t", str(ROOT / "topologies/default-2node.yaml"))
    got = _invoke("graph", "-t", str(ROOT / "topologies/default-2node.yaml"), "-w", "-")
    assert got.exit_code == 0 and got.stdout == plain.stdout and "flowchart" in got.stdout, got.stderr
    assert os.listdir(tmp_path) == []
    from netlab.cli.output import dash_is_stdout
    from netlab.cli.trace import trace_cmd

    write = next(p for p in trace_cmd.params if p.name == "write")
    assert write.callback is dash_is_stdout  # trace's -w - is no -w, as graph's
