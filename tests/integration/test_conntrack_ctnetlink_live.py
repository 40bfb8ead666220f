"""conntrack entries deleted and made over ctnetlink by netlab's codec, no conntrack program (root).

- In throwaway namespaces: the entry ``break conntrack-stale-entry`` makes (kernel/conntrack.insert_dnat) is the
  one ``conntrack -I`` makes with the same words, as ``conntrack -L -o extended`` lists it; and for each filter
  ``up`` passes (kube-proxy's), kernel/conntrack.delete_counted leaves the very table (and counts what it deleted) ``conntrack -D`` leaves.
- A lab whose UDP Service changes endpoint: ``up`` deletes the stale entries (``conntrack -L`` in the node shows
  none left; 200 more, made by ``conntrack -I``, go too), runs no conntrack program (strace's execve), and the
  client's own source port reaches the new endpoint.

The conntrack program here is the tests' independent checker only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from helpers import NETLAB, in_netns, lab_up, unique_lab
from netlab.kernel import conntrack, netlink, netns, nfnl

pytestmark = pytest.mark.root

ENTRIES = [  # conntrack -I words: proto, src, sport, dst, dport, then --dst-nat (or none)
    ("udp", "10.244.1.5", 40000, "10.96.0.10", 53, "10.244.0.99:53"),
    ("udp", "10.244.1.5", 40001, "10.96.0.10", 53, "10.244.0.98:53"),
    ("udp", "10.244.1.6", 40000, "10.96.0.10", 54, "10.244.0.99:54"),
    ("udp", "10.244.1.6", 40002, "10.96.0.11", 53, "10.244.0.99:53"),
    ("udp", "10.244.1.7", 40003, "192.168.122.5", 30053, "10.244.0.99:53"),
    ("udp", "10.244.1.7", 40004, "192.168.122.5", 30053, None),
    ("udp", "10.244.1.8", 40005, "10.96.0.10", 53, None),
    ("tcp", "10.244.1.5", 40006, "10.96.0.10", 53, "10.244.0.99:53"),
]
FILTERS = [  # as services/lifecycle.conntrack_deletions and services/stale.stale_in write them
    ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.99"],
    ["-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.0.99"],
    ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"],
    ["-p", "udp", "--orig-port-dst", "30053"],
    ["-p", "udp", "--orig-src", "10.244.1.5", "--orig-port-src", "40001", "--orig-dst", "10.96.0.10",
     "--orig-port-dst", "53", "--dst-nat", "10.244.0.98"],
]
TIMER = re.compile(r"^(\w+ +\d+ +\w+ +\d+) \d+ ")  # "ipv4 2 udp 17 599 ...": the seconds left differ


@pytest.fixture
def no_program(monkeypatch):
    """netlab runs no program here (netns.run_in_netns is how it would run conntrack in a namespace)."""
    def refuse(ns, argv, *args, **kwargs):
        raise AssertionError(f"netlab ran {argv} in {ns}")
    monkeypatch.setattr(netns, "run_in_netns", refuse)


@pytest.fixture
def spaces(no_program):
    """Two namespaces of this test (prefix cd + hex), always deleted."""
    names = [f"cd{uuid.uuid4().hex[:6]}" for _ in range(2)]
    try:
        for ns in names:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        yield names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def insert(ns: str, e: tuple, *more: str) -> None:
    proto, src, sport, dst, dport, to = e
    argv = ["conntrack", "-I", "-p", proto, "-s", src, "-d", dst, "--sport", str(sport), "--dport", str(dport),
            "-t", "600"] + (["--dst-nat", to] if to else []) + (["--state", "ESTABLISHED"] if proto == "tcp" else [])
    argv += more
    in_netns(ns, *argv, check=True)


def listed(ns: str) -> list[str]:
    out = in_netns(ns, "conntrack", "-L", "-o", "extended", check=True).stdout.splitlines()
    return sorted(TIMER.sub(r"\1 ", line) for line in out)


def test_the_inserted_entry_is_the_one_conntrack_i_makes(spaces):
    ours, theirs = spaces
    conntrack.insert_dnat(ours, "udp", "10.244.1.5", 40053, "10.96.0.10", 53, "10.244.0.99", 53, timeout=600)
    insert(theirs, ("udp", "10.244.1.5", 40053, "10.96.0.10", 53, "10.244.0.99:53"), "-u", "SEEN_REPLY,ASSURED")
    assert listed(ours) == listed(theirs) == [
        "ipv4     2 udp      17 src=10.244.1.5 dst=10.96.0.10 sport=40053 dport=53 src=10.244.0.99 "
        "dst=10.244.1.5 sport=53 dport=40053 [ASSURED] mark=0 use=1"]
    [mine] = conntrack.entries(ours)  # an answered flow's entry (QA q26 1): a packet refreshes it to 120 s, not 30
    assert mine.status_names == ("SEEN_REPLY", "ASSURED", "CONFIRMED", "DST_NAT", "SRC_NAT_DONE", "DST_NAT_DONE")
    assert 590 < mine.timeout <= 600
    with pytest.raises(OSError, match="File exists"):  # as conntrack -I: the flow has an entry already
        conntrack.insert_dnat(ours, "udp", "10.244.1.5", 40053, "10.96.0.10", 53, "10.244.0.98", 53)


SCTP_STATES = ["NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD",
               "SHUTDOWN_ACK_SENT"]
SECONDS = re.compile(r"^(\w+ +\d+) \d+ ")  # "sctp     132 119 ...": the seconds left differ between two reads


def test_an_sctp_entrys_line_is_the_one_conntrack_lists_with_its_state(spaces):
    """QA q9 2: each SCTP state conntrack -I can make, and HEARTBEAT_SENT (which conntrack -I cannot: made over
    ctnetlink here), read by netlab is the line `conntrack -L` prints, state included."""
    ns = spaces[0]
    for n, state in enumerate(SCTP_STATES):
        in_netns(ns, "conntrack", "-I", "-p", "sctp", "-s", "10.244.0.3", "-d", "10.244.0.2", "--sport",
                 str(1000 + n), "--dport", "2000", "-t", "120", "--state", state, "--orig-vtag", "1",
                 "--reply-vtag", "2", *(["-u", "SEEN_REPLY"] if n % 2 else []), check=True)
    body = (nfnl.NFGENMSG.pack(2, nfnl.NFNETLINK_V0, 0)
            + netlink.nested(nfnl.CTA_TUPLE_ORIG, nfnl.ct_tuple("10.244.0.3", "10.244.0.2", 132, 1008, 2000))
            + netlink.nested(nfnl.CTA_TUPLE_REPLY, nfnl.ct_tuple("10.244.0.2", "10.244.0.3", 132, 2000, 1008))
            + netlink.be32(nfnl.CTA_TIMEOUT, 120)
            + netlink.nested(nfnl.CTA_PROTOINFO, netlink.nested(3, netlink.u8(1, 8), netlink.be32(2, 1),
                                                                netlink.be32(3, 2))))
    with netns.entered(ns):
        conn = netlink.Conn(netlink.NETLINK_NETFILTER)
    with conn:
        conn.request("an SCTP entry in HEARTBEAT_SENT", netlink.message(
            nfnl.NFNL_SUBSYS_CTNETLINK << 8 | nfnl.IPCTNL_MSG_CT_NEW, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL, body))
    ours = sorted(SECONDS.sub(r"\1 ", r.text()) for r in conntrack.entries(ns))
    listed_now = in_netns(ns, "conntrack", "-L", check=True).stdout.splitlines()
    theirs = sorted(SECONDS.sub(r"\1 ", line) for line in listed_now)
    assert ours == theirs and len(ours) == 9, (ours, theirs)
    assert {line.split()[2] for line in ours} == {*SCTP_STATES, "HEARTBEAT_SENT"}


@pytest.mark.parametrize("words", FILTERS, ids=[" ".join(f[2:]) for f in FILTERS])
def test_a_filtered_delete_leaves_what_conntrack_d_leaves(spaces, words):
    ours, theirs = spaces
    for ns in spaces:
        for e in ENTRIES:
            insert(ns, e)
    assert listed(ours) == listed(theirs) and len(listed(ours)) == len(ENTRIES)
    counts, problems = conntrack.delete_counted(ours, [words])
    assert problems == []
    in_netns(theirs, "conntrack", "-D", *words)  # exit 1 when nothing matched
    assert listed(ours) == listed(theirs)
    assert counts == [len(ENTRIES) - len(listed(ours))] and counts[0] > 0  # what went, and something did


UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(3)
s.sendto(b"hi", (sys.argv[1], int(sys.argv[2])))
print(s.recv(4096).decode().strip())
"""
CIP = "10.96.0.53"
IPS = {"client": "10.244.0.2", "ua": "10.244.0.10", "ub": "10.244.0.11"}


def topology(name: str, serving: str) -> str:
    udp = "containers: [{name: echo, ports: [{containerPort: 5353, protocol: UDP}]}]"
    pods = "".join(f"  - {{name: {p}, node: n1, ip: {IPS[p]}, labels: {{app: {'u' if p == serving else 'idle'}}}, "
                   f"{udp}}}\n" for p in ("ua", "ub"))
    return (f"name: {name}\nnetwork: {{mode: host-gw}}\nnodes:\n  - {{name: n1, podCIDR: 10.244.0.0/24}}\n"
            f"pods:\n  - {{name: client, node: n1, ip: {IPS['client']}}}\n{pods}"
            f"services:\n  - {{name: res, selector: {{app: u}}, clusterIP: {CIP}, "
            f"ports: [{{port: 53, targetPort: 5353, protocol: UDP}}]}}\n")


def test_up_deletes_a_changed_endpoints_udp_entries_over_ctnetlink(tmp_path):
    name = unique_lab("cd")
    path = tmp_path / "topo.yaml"
    path.write_text(topology(name, "ua"))
    with lab_up(str(path), name):
        client, node = f"{name}-client", f"{name}-n1"
        first = in_netns(client, sys.executable, "-c", UDP_CLIENT, CIP, "53", "40000")
        assert first.returncode == 0 and "ua" in first.stdout and "ub" not in first.stdout, first.stdout + first.stderr
        gone = IPS["ua"]
        for sport in range(41000, 41200):  # 200 more entries DNATed to ua, as many clients leave them
            insert(node, ("udp", "10.244.0.2", sport, CIP, 53, f"{gone}:5353"))
        assert in_netns(node, "conntrack", "-L", "-p", "udp", "--orig-dst", CIP).stdout.count(f"src={gone} ") >= 201
        path.write_text(topology(name, "ub"))  # ua leaves the Service, ub serves it
        trace = tmp_path / "execs"
        proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(trace),
                               *NETLAB, "up", "-t", str(path), "-o", "json"], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        fixed = json.loads(proc.stdout)["fixed"]
        [said] = [line for line in fixed if "stale UDP conntrack" in line]
        assert re.fullmatch(r"deleted (\d+) stale UDP conntrack entries \(\d+ filters? in 1 node\)", said) and \
            int(said.split()[1]) >= 201, said  # the 200 inserted and the client's own, as the kernel deleted them
        left = in_netns(node, "conntrack", "-L", "-p", "udp", "--orig-dst", CIP, check=True).stdout
        assert f"src={gone} " not in left, left
        execs = trace.read_text().splitlines()
        assert any(re.search(r'execve\("[^"]*/iptables[^"]*-restore"', line) for line in execs)  # strace saw up's
        runs = [line for line in execs if re.search(r'execve\("[^"]*/conntrack"', line)]
        assert runs == [], runs  # netlink through one codec: no conntrack program
        again = in_netns(client, sys.executable, "-c", UDP_CLIENT, CIP, "53", "40000")
        assert again.returncode == 0 and "ub" in again.stdout and "ua" not in again.stdout, again.stdout + again.stderr
