"""A real lab's captures and traces never write through a link another user planted (found by a QA pass: root's
`capture -w` and `trace --pcap` truncated a root-only file through nobody's symlink); through root's own link in
root's folder they write a real pcap of the lab's frames."""

from __future__ import annotations

import os
import pwd
import subprocess

from helpers import netlab, two_node_topology

NOBODY = pwd.getpwnam("nobody").pw_uid


def test_capture_and_trace_refuse_nobodys_link_and_write_through_roots_own(labs, tmp_path):
    from scapy.layers.inet import ICMP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    os.chmod(tmp_path, 0o755)
    decoy = tmp_path / "decoy"
    decoy.write_text("orig\n")
    os.chmod(decoy, 0o600)
    theirs = tmp_path / "nobody.pcap"
    os.symlink(decoy, theirs)
    os.lchown(theirs, NOBODY, NOBODY)
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    mine = tmp_path / "mine.pcap"
    os.symlink(mine, own / "link.pcap")  # root's link, in a folder only root can write
    lab = labs.name("sy")
    labs.up(two_node_topology(lab, pods_per_node=1))
    pinger = subprocess.Popen(["ip", "netns", "exec", f"{lab}-fedora-1", "ping", "-q", "-i", "0.2",
                               "-w", "60", "10.244.1.3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        refused = [netlab("capture", "--lab", lab, "fedora-2:eth0", "-c", "1", "--timeout", "5", "-w", str(theirs),
                          "icmp", check=False, timeout=60),
                   netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "--pcap", str(theirs), check=False,
                          timeout=60)]
        netlab("capture", "--lab", lab, "fedora-2:eth0", "-c", "2", "--timeout", "10", "-w", str(own / "link.pcap"),
               "icmp", timeout=60)
    finally:
        pinger.terminate()
        pinger.wait(timeout=15)
    for proc in refused:
        assert proc.returncode == 2, proc
        assert proc.stderr.splitlines()[-1] == (f"netlab: cannot write {theirs}: it is a symlink owned by nobody, not "
                                                "by you or root; netlab writes nothing there"), proc.stderr
    assert decoy.read_text() == "orig\n" and oct(decoy.stat().st_mode & 0o777) == "0o600"
    frames = rdpcap(str(mine))
    assert len(frames) == 2 and all(Ether(bytes(f)).haslayer(ICMP) for f in frames), frames
    assert (own / "link.pcap").is_symlink()
