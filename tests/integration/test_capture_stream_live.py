"""`netlab capture -w -` streams its pcap as `tcpdump -w -` does, on a real lab (root).

It held every frame and wrote the whole pcap in one write once the capture ended: a live `| tshark -r -` showed
nothing until then, and a reader that quit early went unnoticed (exit 0, "wrote N frames to standard output").
Now the pcap's header is written as the capture starts and each frame as it comes (flushed, as tcpdump -U), and
a reader that goes away ends the capture at its next frame, quietly, with the status of a program SIGPIPE ended
(141), as netlab's other commands end there. `-w FILE` is written as the frames come too.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time

import pytest

from helpers import NETLAB, wait_for

pytestmark = pytest.mark.root

A, B = "10.244.0.2", "10.244.0.3"
HEADER, RECORD = 24, 16  # a classic pcap's header, each frame's record header before its bytes
TIMEOUT = "40"  # the capture's own --timeout: far longer than any step below waits


def _lab(labs) -> str:
    lab = labs.name("sbcs")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\n"
            f"pods: [{{name: a, node: n1, ip: {A}}}, {{name: b, node: n1, ip: {B}}}]\n")
    return lab


def _pinging(lab: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", f"{lab}-a", "ping", "-q", "-i", "0.2", "-w", "120", B],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _read(fd: int, n: int, deadline: float) -> bytes:
    """``n`` bytes of the pipe ``fd``, as they come, until ``deadline`` (what came by then, if fewer)."""
    got = b""
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)


def test_the_pcap_on_standard_output_comes_frame_by_frame_and_a_reader_that_goes_ends_it_with_141(labs):
    lab = _lab(labs)
    pinger = _pinging(lab)
    capture = subprocess.Popen([*NETLAB, "capture", "--lab", lab, "a:eth0", "-c", "1000", "--timeout", TIMEOUT,
                                "-w", "-", "icmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert capture.stdout is not None
        fd = capture.stdout.fileno()
        deadline = time.monotonic() + 15
        header = _read(fd, HEADER, deadline)
        assert len(header) == HEADER and header[:4] == b"\xd4\xc3\xb2\xa1", header  # libpcap's, this machine's order
        assert struct.unpack("=I", header[20:24]) == (1,)  # Ethernet
        record = _read(fd, RECORD, deadline)
        assert len(record) == RECORD, "no frame while the capture ran (the pcap comes at its end)"
        _sec, _usec, caplen, wirelen = struct.unpack("=IIII", record)
        frame = _read(fd, caplen, deadline)
        assert len(frame) == caplen == wirelen and frame[12:14] == b"\x08\x00", frame  # an IPv4 frame, whole
        assert capture.poll() is None  # still capturing: the first frame came as it crossed
        capture.stdout.close()  # the reader goes away: the next frame's write finds no reader
        assert capture.wait(timeout=20) == 141
        err = capture.stderr.read().decode() if capture.stderr else ""
        assert "Traceback" not in err and "wrote" not in err, err
        assert err.splitlines() == [line for line in err.splitlines() if line.startswith("netlab: capturing on ")]
    finally:
        _stop(capture, pinger)


def test_tshark_reading_the_pipe_shows_the_first_frame_while_the_capture_runs_and_quits_early(labs):
    """The README's reader, `-w - | tshark -r -`: its first frame shown while the capture runs; tshark told to
    stop after it (-c 1) ends the capture too, 141, long before its timeout."""
    lab = _lab(labs)
    pinger = _pinging(lab)
    capture = subprocess.Popen([*NETLAB, "capture", "--lab", lab, "a:eth0", "-c", "1000", "--timeout", TIMEOUT,
                                "-w", "-", "icmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert capture.stdout is not None
    tshark = subprocess.Popen(["tshark", "-l", "-n", "-r", "-", "-c", "1"], stdin=capture.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    capture.stdout.close()  # tshark's alone
    try:
        assert tshark.stdout is not None
        line = _read(tshark.stdout.fileno(), 200, time.monotonic() + 15).decode()
        assert f"{A} → {B}" in line and "ICMP" in line and "Echo (ping) request" in line, line
        assert capture.poll() is None  # shown while the capture runs
        assert tshark.wait(timeout=20) == 0
        started = time.monotonic()
        assert capture.wait(timeout=20) == 141
        assert time.monotonic() - started < 10  # at its next frame (0.2 s), not at its timeout
        err = capture.stderr.read().decode() if capture.stderr else ""
        assert "Traceback" not in err and "wrote" not in err, err
    finally:
        _stop(capture, tshark, pinger)


def test_a_pcap_file_is_written_as_the_frames_come(labs, tmp_path):
    """-w FILE as tcpdump -w FILE -U: the header and each frame are in the file while the capture runs."""
    lab = _lab(labs)
    pinger = _pinging(lab)
    path = tmp_path / "a.pcap"
    capture = subprocess.Popen([*NETLAB, "capture", "--lab", lab, "a:eth0", "-c", "1000", "--timeout", TIMEOUT,
                                "-w", str(path), "icmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def size() -> int:
            return path.stat().st_size if path.exists() else 0

        assert wait_for(lambda: size() >= HEADER + 2 * (RECORD + 98), timeout=15), size()  # two echo frames
        assert capture.poll() is None
        data = path.read_bytes()
        assert data[:4] == b"\xd4\xc3\xb2\xa1"
        capture.terminate()  # SIGTERM ends a capture as tcpdump's: exit 0, the frames kept
        out, err = capture.communicate(timeout=30)
        assert capture.returncode == 0, err
        whole = path.read_bytes()
        assert whole.startswith(data[:HEADER + RECORD + 98]), "the frames written first were rewritten"
        n, at = 0, HEADER
        while at < len(whole):
            caplen = struct.unpack("=IIII", whole[at:at + RECORD])[2]
            at += RECORD + caplen
            n += 1
        assert at == len(whole) and out.decode().startswith(f"wrote {n} frames"), (out, err)
    finally:
        _stop(capture, pinger)
