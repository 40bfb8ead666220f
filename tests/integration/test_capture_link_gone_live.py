"""`netlab capture` on a pod's bridge port while the port goes down, comes up and is deleted (QA q15 defect 2:
an OSError traceback, `[Errno 100] Network is down`). Down: one line on stderr, the capture goes on and catches
the frames once the port is up again (as tcpdump). Deleted (its pod removed by an `up`): one line, the frames it
caught printed and written (-w), exit 1. The port stays down until pod a's pings to b fail, as a slow `up` left
it on a loaded CI. A real lab of its own, always taken down; no timing asserted."""

from __future__ import annotations

import datetime
import subprocess
import time

import pytest
from scapy.utils import rdpcap

from helpers import NETLAB, ip_json, netlab, wait_for

pytestmark = pytest.mark.root

A, B = "10.244.0.2", "10.244.0.3"


def _host_veth(lab: str) -> str:
    """Pod a's bridge port: the peer of its eth0 in node n1."""
    peer = ip_json("link", "show", "eth0", netns=f"{lab}-a")[0]["link_index"]
    return next(link["ifname"] for link in ip_json("link", netns=f"{lab}-n1") if link["ifindex"] == peer)


def _read_past(stream, t: float, seen: list[str], err) -> None:
    """Read the capture's lines into ``seen`` up to the first frame the kernel stamped after ``t`` (a frame read
    now may have come before: queued on the socket). The capture ended before: its stderr (``err``) says why."""
    def of_day(moment: datetime.time) -> float:
        return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6

    after = of_day(datetime.datetime.fromtimestamp(t).time())
    while True:
        line = stream.readline()
        assert line, f"the capture ended before a frame crossed the port after {t}: {seen}; stderr: {err.read()!r}"
        seen.append(line)
        # the line says the time of day only: a frame is later when it is less than half a day ahead (midnight)
        if 0 < (of_day(datetime.datetime.strptime(line[:15], "%H:%M:%S.%f").time()) - after) % 86400 < 43200:
            return


def test_capture_goes_on_across_a_port_down_and_ends_in_one_line_when_the_port_is_deleted(labs, tmp_path):
    lab = labs.name("cp")
    text = (f"name: {lab}\nnodes: [{{name: n1}}]\n"
            f"pods: [{{name: a, node: n1, ip: {A}}}, {{name: b, node: n1, ip: {B}}}]\n")
    path, _ = labs.up(text)
    port = _host_veth(lab)
    pcap = tmp_path / "port.pcap"
    # Pod a pings b across the port, and goes on pinging while the port is down: not `ping -w`, which exits at the
    # first error the network reports (pod a's ARP for b failing while the port is down: "Destination Host
    # Unreachable"), so that no frame crossed the port after `up` and the capture ran to its timeout (CI, loaded:
    # the port stayed down long enough). timeout(1) ends it if the test cannot (it passes on SIGTERM).
    ping_log = tmp_path / "ping.txt"
    with open(ping_log, "wb") as log:
        pinger = subprocess.Popen(["timeout", "300", "ip", "netns", "exec", f"{lab}-a", "ping", "-i", "0.2", B],
                                  stdout=log, stderr=subprocess.STDOUT)
    argv = ["capture", "--lab", lab, f"n1:{port}", "-c", "100000", "--timeout", "600", "icmp"]
    shown = subprocess.Popen(NETLAB + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = subprocess.Popen(NETLAB + argv + ["-w", str(pcap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert shown.stderr is not None and shown.stdout is not None
        assert shown.stderr.readline().startswith(f"netlab: capturing on {lab}-n1 {port} ")
        assert written.stderr is not None
        assert written.stderr.readline().startswith(f"netlab: capturing on {lab}-n1 {port} ")
        seen: list[str] = []
        _read_past(shown.stdout, time.time(), seen, shown.stderr)  # a frame both captures caught
        index = ip_json("link", "show", port, netns=f"{lab}-n1")[0]["ifindex"]
        down_at = time.time()
        netlab("break", "--lab", lab, "bridge-port-down", "--target", "a")
        assert ip_json("link", "show", port, netns=f"{lab}-n1")[0]["operstate"] == "DOWN"
        note = shown.stderr.readline()
        assert note == f"netlab: {lab}-n1 {port} went down; still capturing (frames again once it is up)\n", note
        # The port down as long as it takes pod a to give up on b's address (what ended `ping -w` on CI): the
        # traffic goes on across it, and frames cross the port again once it is up.
        assert wait_for(lambda: "Destination Host Unreachable" in ping_log.read_text(), timeout=120), \
            ping_log.read_text()[-500:]
        netlab("up", "-t", path)  # repairs the break: the port up again
        up_at = time.time()
        assert pinger.poll() is None, f"ping ended ({pinger.returncode}): {ping_log.read_text()[-500:]}"
        # up sets the port up, it does not make it again: a port made again under its name is rightly a deletion
        assert ip_json("link", "show", port, netns=f"{lab}-n1")[0]["ifindex"] == index, "up made the port again"
        _read_past(shown.stdout, up_at, seen, shown.stderr)
        pinger.terminate()
        pinger.wait(timeout=30)
        with open(path, "w", encoding="utf-8") as fh:  # the file edited: pod a removed, its veth pair deleted
            fh.write(text.replace(f"{{name: a, node: n1, ip: {A}}}, ", ""))
        netlab("up", "-t", path)
        assert port not in {link["ifname"] for link in ip_json("link", netns=f"{lab}-n1")}
        out, err = shown.stdout.read(), shown.stderr.read()  # to their end: the capture ended
        w_err = written.stderr.read()
        shown.wait(timeout=120)
        written.wait(timeout=120)
    finally:
        for proc in (pinger, shown, written):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    frames = seen + out.splitlines(keepends=True)
    assert shown.returncode == 1, err
    assert "Traceback" not in err and "Traceback" not in w_err
    assert err.splitlines()[-1].startswith(f"netlab: capture on {lab}-n1 {port} ended after {len(frames)} frames in ")
    assert err.splitlines()[-1].endswith(f": interface {port} of {lab}-n1 was deleted (its pod or the lab taken down?)")
    assert all(f"{A} > {B}: ICMP echo request" in f or f"{B} > {A}: ICMP echo reply" in f for f in frames), frames
    # The pcap: written whole at the end, frames from before the port went down and after it came up.
    assert written.returncode == 1, w_err
    assert f"{lab}-n1 {port} went down; still capturing" in w_err
    # The deletion is said once, as what it is: the port goes down as it is deleted, not said (it was, just before)
    assert "went down" not in err and w_err.count("went down") == 1, (err, w_err)
    got = rdpcap(str(pcap))
    assert any(float(p.time) < down_at for p in got) and any(float(p.time) > up_at for p in got), (
        down_at, up_at, [float(p.time) for p in got], seen)
    assert f"ended after {len(got)} frames in " in w_err.splitlines()[-1], w_err
