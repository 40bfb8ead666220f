"""Loss impairments measured with real traffic (QA qh 1, 2): a lossy link drops frames silently.

A loss was an iptables DROP in the sending namespace's mangle POSTROUTING: the sender's own packets failed with
EPERM (UDP sendto errors, iperf3 aborted) and TCP resent them at once instead of losing anything (1 retransmit in
24,770 segments at 10%); and on cni0 it matched frames bridged between two pods of the node (br_netfilter). Now
it is an nftables netdev chain where the frames arrive (a veth's peer's ingress) or on a bridge's or VXLAN
device's egress (plan/impair.py). Each test counts with binomial bounds: n datagrams, each lost with chance p,
lose n*p ± 4.5 standard deviations (a correct loss falls outside about once in 150,000 runs).

One lab for the module: node n1 with pods ``sender`` (eth0: loss 10%) and ``peer``, node n2 with ``far``.
"""

from __future__ import annotations

import json
import math
import re
import subprocess

import pytest

from helpers import in_netns, lab_namespaces, lab_up, netlab, unique_lab, wait_for, write_topology

pytestmark = pytest.mark.root

N = 2000
LOSS = 0.10
# Sends N small datagrams 0.5 ms apart and prints how many sendto() calls succeeded and the errors of the others.
SEND = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ok, errors = 0, {}
for i in range(int(sys.argv[2])):
    try:
        s.sendto(b"x" * 100, (sys.argv[1], 9999)); ok += 1
    except OSError as exc:
        errors[exc.strerror] = errors.get(exc.strerror, 0) + 1
    time.sleep(0.0005)
print(ok, sum(errors.values()), errors)
"""
# Counts the datagrams that arrive on port 9999 until none came for 2 s.
RECV = """import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
s.settimeout(2.0)
n = 0
try:
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    pass
print(n, flush=True)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("ls")
    path = write_topology(tmp_path_factory.mktemp("loss"), f"""\
name: {name}
nodes:
  - name: n1
  - name: n2
pods:
  - {{name: sender, node: n1, impair: {{eth0: {{loss: "10%"}}}}}}
  - {{name: peer, node: n1}}
  - {{name: far, node: n2}}
""")
    with lab_up(path, name):
        yield name


def ip_of(lab: str, pod: str) -> str:
    out = json.loads(netlab("get", "pods", pod, "--lab", lab, "-o", "json").stdout)
    return out[0]["ip"] if isinstance(out, list) else out["items"][0]["ip"]


def udp(src_ns: str, dst_ns: str, dst_ip: str, n: int = N) -> tuple[int, int, int]:
    """(sendto calls that succeeded, that failed, datagrams received) of ``n`` sent from ``src_ns``.

    The neighbours on the way are resolved first (20 pings, one answer is enough: with 50% and 10% on the way, all
    20 lost is about one in 150,000): while an ARP request is lost and sent again a second later, the kernel holds
    only a few packets for the neighbour and drops the rest, which is no part of the loss asked."""
    warm = in_netns(src_ns, "ping", "-c", "20", "-i", "0.05", "-W", "1", dst_ip, timeout=30)
    assert " 0 received" not in warm.stdout, warm.stdout
    recv = subprocess.Popen(["ip", "netns", "exec", dst_ns, "python3", "-c", RECV], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
        sent = in_netns(src_ns, "python3", "-c", SEND, dst_ip, str(n), timeout=60)
        assert sent.returncode == 0, sent.stderr
        ok, failed, errors = sent.stdout.split(" ", 2)
        out, _ = recv.communicate(timeout=30)
        print(f"udp {src_ns} -> {dst_ns}: sendto ok {ok}, failed {failed} {errors.strip()}, received {out.strip()}")
        return int(ok), int(failed), int(out.strip())
    finally:
        recv.kill()
        recv.wait()


def within(received: int, n: int, loss: float) -> bool:
    mean, sd = n * (1 - loss), math.sqrt(n * loss * (1 - loss))
    return abs(received - mean) <= 4.5 * sd


def tcp_retransmitted(src_ns: str, dst_ns: str, dst_ip: str, seconds: int = 3) -> tuple[int, int]:
    """(segments sent, retransmitted) by ``src_ns`` during an iperf3 TCP run to ``dst_ns``, from its /proc/net/snmp."""
    def counters() -> tuple[int, int]:
        lines = [ln.split() for ln in in_netns(src_ns, "cat", "/proc/net/snmp", check=True).stdout.splitlines()
                 if ln.startswith("Tcp:")]
        row = dict(zip(lines[0][1:], map(int, lines[1][1:])))
        return row["OutSegs"], row["RetransSegs"]

    server = subprocess.Popen(["ip", "netns", "exec", dst_ns, "iperf3", "-s", "-1", "-p", "5202"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: in_netns(dst_ns, "ss", "-Hltn", "sport = :5202").stdout.strip(), 10)
        before = counters()
        run = in_netns(src_ns, "iperf3", "-c", dst_ip, "-p", "5202", "-t", str(seconds), "-b", "50M",
                       timeout=seconds + 20)
        assert run.returncode == 0, run.stdout + run.stderr  # iperf3 aborted on EPERM before
        after = counters()
    finally:
        server.kill()
        server.wait()
    return after[0] - before[0], after[1] - before[1]


def table(netns: str) -> dict:
    return json.loads(in_netns(netns, "nft", "-j", "list", "table", "netdev", "netlab-impair", check=True).stdout)


def test_a_pods_loss_is_lost_on_the_wire_and_never_fails_the_sender(lab):
    n1 = f"{lab}-n1"
    chains = {o["chain"]["name"]: o["chain"] for o in table(n1)["nftables"] if "chain" in o}
    assert chains["loss-sender-eth0"]["hook"] == "ingress"  # on the sender's veth peer, in the node
    rule = next(o["rule"] for o in table(n1)["nftables"] if "rule" in o)
    assert rule["expr"][0]["match"] == {"op": "<", "left": {"numgen": {"mode": "random", "mod": 1000000000,
                                                                        "offset": 0}}, "right": 100000000}
    assert "netlab-impair" not in in_netns(f"{lab}-sender", "nft", "list", "tables").stdout  # nothing in the pod
    assert "NETLAB" not in in_netns(f"{lab}-sender", "iptables-save", "-t", "mangle").stdout
    ok, failed, received = udp(f"{lab}-sender", f"{lab}-far", ip_of(lab, "far"))
    assert (ok, failed) == (N, 0)  # EPERM on 10% of them before
    assert within(received, N, LOSS), f"{received} of {N} received at 10% loss"
    sent, again = tcp_retransmitted(f"{lab}-sender", f"{lab}-far", ip_of(lab, "far"))
    print(f"tcp sender -> far at 10% loss: {again} of {sent} segments retransmitted ({100 * again / sent:.1f}%)")
    # Real loss: TCP retransmits what was lost (about the share asked, by bytes: a veth drops a GSO packet whole);
    # before, 1 in 24,770. 2% is far below what 10% loss makes and far above an unimpaired link's ~0.
    assert again >= 0.02 * sent, f"{again} of {sent} segments retransmitted"


def test_loss_on_cni0_drops_what_the_node_routes_to_its_pods_not_what_they_bridge(lab):
    """As a rate on cni0 does: from the other node, through cni0, half is lost; from a pod of the same node,
    bridged port to port, nothing (br_netfilter ran mangle POSTROUTING -o cni0 on those frames: 19% lost)."""
    netlab("impair", "--lab", lab, "n1:cni0", "--loss", "50%")
    try:
        ok, failed, received = udp(f"{lab}-far", f"{lab}-sender", ip_of(lab, "sender"))
        assert (ok, failed) == (N, 0) and within(received, N, 0.5), f"{received} of {N} through cni0 at 50%"
        ok, failed, received = udp(f"{lab}-peer", f"{lab}-sender", ip_of(lab, "sender"))
        assert (ok, failed, received) == (N, 0, N), "bridged between two pods of n1: untouched"
    finally:
        netlab("impair", "--lab", lab, "n1:cni0", "--clear")


def test_a_nodes_own_sends_through_a_lossy_eth0_succeed_and_are_lost_on_the_wire(lab):
    """n1's eth0: dropped on the ingress of its port on the underlay bridge (sendto failed with EPERM before)."""
    netlab("impair", "--lab", lab, "n1:eth0", "--loss", "10%")
    try:
        chains = {o["chain"]["name"] for o in table(f"{lab}-underlay")["nftables"] if "chain" in o}
        assert chains == {"loss-n1-eth0"}
        ok, failed, received = udp(f"{lab}-n1", f"{lab}-far", ip_of(lab, "far"))
        assert (ok, failed) == (N, 0) and within(received, N, LOSS), f"{received} of {N} from n1 at 10%"
    finally:
        netlab("impair", "--lab", lab, "n1:eth0", "--clear")
    assert netlab("status", "--lab", lab).returncode == 0


def test_impair_shows_what_the_kernel_has_and_trace_names_it_on_the_path(lab):
    ok, _, received = udp(f"{lab}-sender", f"{lab}-far", ip_of(lab, "far"))  # the rule's counter: what it dropped
    shown = json.loads(netlab("impair", "--lab", lab, "-o", "json").stdout)["impairments"]
    assert [(s["target"], s["kernel"], s["topology"]) for s in shown] == [("sender:eth0", "loss 10%", "loss 10%")]
    assert shown[0]["dropped"] >= ok - received > 0 and shown[0]["loss_at"].startswith("on the ingress of veth")
    text = netlab("impair", "--lab", lab, "sender:eth0").stdout
    assert re.search(r"sender:eth0: loss 10% \(loss on the ingress of veth\w+ in \S+-n1, sender:eth0's peer, "
                     r"\d+ frames dropped so far\)", text), text
    assert "far:eth0: none" in netlab("impair", "--lab", lab, "far:eth0").stdout
    # One ping at 10% loss: delivered, the note names the impairment its path crossed; lost, the reason does.
    trace = json.loads(netlab("trace", "--lab", lab, "sender", "far", "-o", "json", check=False).stdout)
    if trace["delivered"]:
        assert {"target": "sender:eth0", "impairment": "loss 10%", "direction": "forward",
                "hop": "1"} in trace["impairments"], trace["impairments"]
    else:
        assert trace["lost"]["reason"].startswith("sender:eth0 has netlab's impairment loss 10%: chain "
                                                  "loss-sender-eth0 of table netdev netlab-impair in "), trace["lost"]
    netlab("impair", "--lab", lab, "peer:eth0", "--rate", "30mbit")
    try:
        text = netlab("trace", "--lab", lab, "peer", "far").stdout
        assert "note: the path crosses interfaces netlab impairs: peer:eth0 (rate 30mbit, hop 1)" in text, text
    finally:
        netlab("impair", "--lab", lab, "peer:eth0", "--clear")


def test_up_refuses_a_loss_up_front_where_the_kernel_lacks_netdev_hooks(tmp_path):
    """The doctor's line, exit 3, and nothing made (NETLAB_DOCTOR_MISSING, the documented test hook)."""
    name = unique_lab("ls")
    path = write_topology(tmp_path, f"name: {name}\nnodes:\n  - name: n1\npods:\n"
                                    "  - {name: p, node: n1, impair: {eth0: {loss: \"1%\"}}}\n")
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_DOCTOR_MISSING": "nf_netdev"})
    assert proc.returncode == 3 and proc.stderr.startswith("netlab: FAIL  kernel nf_tables netdev hooks: "), proc.stderr
    assert not lab_namespaces(name)
