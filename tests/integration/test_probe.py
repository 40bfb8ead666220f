"""Probes (issue 3): the connectivity matrix, expectations, the three rules, a bounded neighbour table."""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from netlab import Lab

from helpers import (NETLAB, in_netns, ip, ip_json, is_turn_wait, lab_namespaces, lab_up, left_as_found, netlab,
                     two_node_topology, unique_lab, wait_for, write_topology)
from netlab.errors import netlab_command
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root


def probe(lab: str, *args: str) -> tuple[int, dict]:
    proc = netlab("probe", "--lab", lab, "-o", "json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def default_style(tmp_path_factory):
    """The default lab's shape (two nodes, two pods on each), for the module's tests that probe it and change
    nothing of it: brought up and taken down in this process (on each xdist worker that runs one of them)."""
    lab = unique_lab("pr")
    path = write_topology(tmp_path_factory.mktemp(lab), two_node_topology(lab), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):
        yield lab, path


@pytest.fixture
def shared(default_style, request):
    """The module's default-style lab's name; after the test, without its neighbour and conntrack entries (a
    learner's entry one test made is not the next one's), and brought up again if the test failed."""
    watch(request.node, Lab(default_style[0]))  # the plugin dumps it if the test fails
    with left_as_found(*default_style, request.session):
        yield default_style[0]


def failing(data: dict) -> set[tuple[str, str, str, int | None]]:
    return {(r["source"], r["destination"], r["protocol"], r["port"]) for r in data["probes"] if not r["as_expected"]}


def test_default_style_lab_passes(shared, tmp_path):
    lab = shared
    proc = netlab("probe", "--lab", lab, "--junit", str(tmp_path / "junit.xml"))
    out = proc.stdout
    assert "*** icmp" in out and "*** tcp/8080" in out and "*** udp/8080" in out
    lines = out.splitlines()
    assert lines[lines.index("*** icmp") + 1].split() == ["fedora-1", "->", "fedora-2", "fedora-3", "fedora-4"]
    assert " X" not in out
    # 4 pods: 12 pod pairs + 8 node->pod, for ICMP, TCP 8080 and the echo server's UDP 8080.
    assert "60/60 probes as expected" in out
    assert "no NAT: 60/60" not in out  # 20 TCP and 20 UDP replies carry a client address
    assert "no NAT: 40/40 echo replies saw the sender's own address" in out
    assert "pod addresses: 4/4 pods carry the address others reach them at" in out
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 64

    code, data = probe(lab)
    assert code == 0 and data["ok"] and data["summary"]["as_expected"] == 60
    recs = {(r["source"], r["destination"], r["protocol"]): r for r in data["probes"]}
    # TTLs as in the network model: 64 on one bridge, 62 across nodes (two routers).
    assert recs[("fedora-1", "fedora-3", "icmp")]["ttl"] == 64
    assert recs[("fedora-1", "fedora-2", "icmp")]["ttl"] == 62
    # Rule 1: fedora-2 saw fedora-1's pod IP; rule 2: a node is seen at its own address on the path.
    r = recs[("fedora-1", "fedora-2", "tcp")]
    assert r["seen_client_address"] == r["local_address"] and r["seen_client_address"].startswith("10.244.0.2:")
    assert r["answered_by"] == "fedora-2" and r["server_address"] == "10.244.1.3:8080"
    assert recs[("minikube", "fedora-1", "tcp")]["seen_client_address"].startswith("10.244.0.1:")
    assert recs[("minikube", "fedora-2", "tcp")]["seen_client_address"].startswith("10.244.0.0:")
    assert all(r["rtt_ms"] is not None and r["rtt_ms"] < 1000 for r in data["probes"])
    assert [p["eth0_address"] for p in data["pods"]] == ["10.244.0.2", "10.244.1.3", "10.244.0.3", "10.244.1.4"]


def test_interface_down_fails_exactly_the_probes_to_and_from_that_pod(labs, tmp_path):
    lab = labs.name("pr")
    labs.up_here(two_node_topology(lab))
    ip("link", "set", "eth0", "down", netns=f"{lab}-fedora-2")
    proc = netlab("probe", "--lab", lab, "--junit", str(tmp_path / "j.xml"), check=False)
    assert proc.returncode == 1
    assert "fedora-1 -> fedora-2 icmp: expected reachable, no reply in 1 s" in proc.stdout
    assert "X!" in proc.stdout
    code, data = probe(lab)
    assert code == 1
    bad = failing(data)
    everyone = {r["source"] for r in data["probes"]} | {r["destination"] for r in data["probes"]}
    expected = {(r["source"], r["destination"], r["protocol"], r["port"]) for r in data["probes"]
                if "fedora-2" in (r["source"], r["destination"])}
    assert bad == expected and len(expected) == 3 * (3 + 3 + 2)
    assert everyone - {"fedora-2"}  # the others still answer each other
    assert data["summary"]["as_expected"] == 60 - len(expected)
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) == len(expected)


def test_expect_reach_false_for_a_reachable_pair_fails(labs):
    lab = labs.name("pr")
    text = two_node_topology(lab, pods_per_node=1) + """expect:
  - {from: fedora-1, to: fedora-2, proto: icmp, reach: true}
  - {from: fedora-1, to: fedora-2, proto: tcp, port: 8080, reach: false}
  - {from: fedora-2, to: fedora-1, proto: tcp, port: 9999, reach: false}
"""
    labs.up_here(text)
    code, data = probe(lab)
    assert code == 1
    assert failing(data) == {("fedora-1", "fedora-2", "tcp", 8080)}
    rec = next(r for r in data["probes"] if (r["source"], r["destination"], r["port"]) == ("fedora-1", "fedora-2", 8080))
    assert rec["expected"] == "unreachable" and rec["observed"] == "reachable"
    assert rec["problems"][0].startswith("expected unreachable, got a reply")
    closed = next(r for r in data["probes"] if r["port"] == 9999)
    assert closed["outcome"] == "refused" and closed["as_expected"]
    proc = netlab("probe", "--lab", lab, check=False)
    assert "fedora-1 -> fedora-2 tcp/8080: expected unreachable, got a reply" in proc.stdout
    assert "fedora-2!" in proc.stdout


@pytest.mark.skipif(not shutil.which("iptables"), reason="needs iptables")
def test_a_refused_probe_says_what_the_destinations_kernel_has_on_that_port(labs):
    """A probe refused by its destination says which sockets that kernel has on the port (its sock_diag dump, what
    `ss -ltun` lists; checked against ss in the pod first): nothing, a server on its loopback only, or a socket
    that listens (then a rule refused it: the pod's own REJECT here). It said "connection refused" alone."""
    lab = labs.name("pr")
    labs.up_here(two_node_topology(lab, pods_per_node=1) + """expect:
  - {from: fedora-1, to: fedora-2, proto: tcp, port: 9999, reach: true}
  - {from: fedora-1, to: fedora-2, proto: udp, port: 9999, reach: true}
  - {from: fedora-1, to: fedora-2, proto: tcp, port: 9998, reach: true}
  - {from: fedora-2, to: fedora-1, proto: tcp, port: 9997, reach: false}
""")
    ns = f"{lab}-fedora-2"
    server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c",
                               "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 9998)); s.listen(); "
                               "time.sleep(60)"])
    try:
        wait_for(lambda: ":9998 " in in_netns(ns, "ss", "-Htln").stdout or server.poll() is not None, 10)
        bound = in_netns(ns, "ss", "-Htuln", check=True).stdout
        assert ":9999 " not in bound and "127.0.0.1:9998 " in bound and "0.0.0.0:8080 " in bound, bound
        in_netns(ns, "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "REJECT", "--reject-with",
                 "tcp-reset", check=True)
        code, data = probe(lab, "--proto", "tcp,udp")
    finally:
        server.kill()
        server.wait(timeout=10)
    assert code == 1
    detail = {(r["source"], r["destination"], r["protocol"], r["port"]): r["detail"] for r in data["probes"]}
    assert detail[("fedora-1", "fedora-2", "tcp", 9999)] == (
        f"connection refused: nothing listens on tcp port 9999 in {ns} (ip netns exec {ns} ss -ltn)")
    assert detail[("fedora-1", "fedora-2", "udp", 9999)].endswith(
        f"(ICMP from 10.244.1.3): nothing is bound to udp port 9999 in {ns} (ip netns exec {ns} ss -lun)")
    assert detail[("fedora-1", "fedora-2", "tcp", 9998)] == (
        f"connection refused: tcp port 9998 in {ns} is bound to 127.0.0.1:9998 only, not to 10.244.1.3 "
        f"(ip netns exec {ns} ss -ltn)")
    assert detail[("fedora-1", "fedora-2", "tcp", 8080)] == (
        f"connection refused: tcp port 8080 has a socket in {ns} (0.0.0.0:8080): a rule on the way or in its own "
        f"firewall refused the probe ({netlab_command(f'trace --lab {lab} fedora-1 fedora-2 --proto tcp --port 8080')} "
        "shows where)")
    assert detail[("fedora-2", "fedora-1", "tcp", 9997)] == "connection refused"  # expected: nothing to explain
    text = netlab("probe", "--lab", lab, "--proto", "tcp", check=False).stdout
    assert (f"fedora-1 -> fedora-2 tcp/9999: expected reachable, connection refused: nothing listens on tcp port "
            f"9999 in {ns}") in text, text


def test_a_port_conntrack_moved_to_keep_reply_tuples_unique_is_no_nat_fault(labs):
    """A pod that reached a Service from port P, then its endpoint directly from P (its only ephemeral port
    here), needs the reply tuple the first flow's entry holds: n1's conntrack gives the second another port. The
    probe said "NAT: ... (source port translated)", exit 1 (a flake of the Service tests, once in many runs);
    now it proves the clash from n1's conntrack table, passes, and says so in a hint."""
    lab = labs.name("pr")
    labs.up_here(f"""name: {lab}
nodes: [{{name: n1}}]
pods: [{{name: web, node: n1, labels: {{app: web}}}}, {{name: near, node: n1}}]
services: [{{name: web, clusterIP: 10.96.0.50, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}]
""")
    near = f"{lab}-near"
    in_netns(near, "sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40000", check=True)
    got = in_netns(near, "curl", "-s", "-m", "5", "http://10.96.0.50/", check=True)
    assert json.loads(got.stdout)["client"] == "10.244.0.3:40000", got.stdout  # through the Service, from 40000
    code, data = probe(lab, "--proto", "tcp")
    direct = next(r for r in data["probes"] if (r["source"], r["destination"], r["port"]) == ("near", "web", 8080))
    moved = direct["seen_client_address"].rsplit(":", 1)[1]
    assert direct["local_address"] == "10.244.0.3:40000" and moved != "40000", direct  # the clash happened
    assert code == 0 and direct["as_expected"], direct
    # the kernel's view: the Service flow's entry holds the reply tuple, the probe's entry has the moved port
    table = in_netns(f"{lab}-n1", "conntrack", "-L", "-p", "tcp", check=True).stdout
    assert any("dst=10.96.0.50 sport=40000 dport=80 src=10.244.0.2 dst=10.244.0.3 sport=8080 dport=40000" in line
               for line in table.splitlines()), table
    assert any(f"dst=10.244.0.2 sport=40000 dport=8080 src=10.244.0.2 dst=10.244.0.3 sport=8080 dport={moved}"
               in line for line in table.splitlines()), table
    (hint,) = [h for h in data["hints"] if h.startswith("near -> web tcp/8080")]
    assert hint.startswith(f"near -> web tcp/8080: conntrack in {lab}-n1 gave the flow source port {moved} "
                           "instead of 40000: the reply tuple 10.244.0.2:8080 -> 10.244.0.3:40000 was held by the "
                           "entry of 10.244.0.3:40000 -> 10.96.0.50:80"), hint


@pytest.mark.skipif(not shutil.which("iptables"), reason="needs iptables")
def test_nat_between_pods_breaks_rule_1(labs):
    lab = labs.name("pr")
    labs.up_here(two_node_topology(lab, pods_per_node=1))
    # Masquerade pod traffic leaving minikube for the other node's pods.
    subprocess.run(["ip", "netns", "exec", f"{lab}-minikube", "iptables", "-t", "nat", "-A", "POSTROUTING",
                    "-s", "10.244.0.0/24", "-d", "10.244.1.0/24", "-j", "MASQUERADE"], check=True)
    code, data = probe(lab, "--proto", "tcp")
    assert code == 1
    rec = next(r for r in data["probes"] if (r["source"], r["destination"]) == ("fedora-1", "fedora-2"))
    assert rec["observed"] == "reachable" and not rec["as_expected"]
    assert rec["problems"][0].startswith("NAT: fedora-2 saw the client as 10.244.0.0, but fedora-1 sent from 10.244.0.2")


def test_probing_leaves_the_neighbour_tables_as_found(shared, quiet_neighbour_table):
    lab = shared

    def tables():
        return {ns: sorted((n["dst"], n.get("dev"), tuple(n.get("state", []))) for n in ip_json("neigh", netns=ns)
                           if "PERMANENT" in n.get("state", []))
                for ns in lab_namespaces(lab)}, {ns: sorted(n["dst"] for n in ip_json("neigh", netns=ns))
                                                 for ns in lab_namespaces(lab)}

    # Some traffic of the learner's own first: their entries must survive probing.
    in_netns(f"{lab}-fedora-1", "python3", "-c",
             "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('10.244.0.3', 9))")
    perm_before, all_before = tables()
    assert "10.244.0.3" in all_before[f"{lab}-fedora-1"]
    with open("/proc/net/stat/arp_cache") as fh:
        fulls_before = int(fh.read().splitlines()[1].split()[-1], 16)
    code, data = probe(lab)
    assert code == 0
    perm_after, all_after = tables()
    assert perm_after == perm_before  # flannel's PERMANENT entries untouched
    assert all_after == all_before  # nothing added, the learner's entry kept
    with open("/proc/net/stat/arp_cache") as fh:
        assert int(fh.read().splitlines()[1].split()[-1], 16) == fulls_before  # no table overflow
    # Same, with the pairs seeded instead of resolved by ARP.
    code, data = probe(lab, "--arp", "seeded")
    assert code == 0
    assert tables() == (perm_before, all_before)


def test_a_resolution_a_repaired_fault_left_half_done_fails_no_probe_and_no_trace(labs):
    """A pod's port down, a packet to the pod: its node starts an ARP resolution and asks (INCOMPLETE). The port
    up again, a packet sent before the resolution gave up waited behind it and failed with it ("host
    unreachable", though the pod answers now): a probe or a trace run right after a repair (a CI flake of
    the break tests). The prober (netlab probe, Lab.reach) and trace delete such entries first. The node here asks
    once and waits 10 s (its cni0's mcast_solicit and retrans_time_ms, set in the lab's namespace), so the
    half-done resolution outlives the runs whatever the machine's speed."""
    lab = labs.name("pr")
    labs.up_here(two_node_topology(lab))  # fedora-4 keeps node 2's bridge up (its entries) while fedora-2's port is down
    node, pod_ip = f"{lab}-minikube-m02", "10.244.1.3"
    for key, value in (("mcast_solicit", "1"), ("retrans_time_ms", "10000")):
        in_netns(node, "sysctl", "-qw", f"net.ipv4.neigh.cni0.{key}={value}", check=True)
    peer = ip_json("link", "show", "eth0", netns=f"{lab}-fedora-2")[0]["link_index"]
    port = next(link["ifname"] for link in ip_json("link", "show", "master", "cni0", netns=node)
                if link["ifindex"] == peer)  # fedora-2's end of its veth

    def repaired_fault() -> None:
        ip("neigh", "flush", "dev", "cni0", netns=node)
        ip("link", "set", port, "down", netns=node)
        assert in_netns(f"{lab}-fedora-1", "ping", "-c1", "-W1", pod_ip).returncode != 0
        ip("link", "set", port, "up", netns=node)
        assert wait_for(lambda: ip_json("link", "show", port, netns=node)[0]["operstate"] == "UP")
        state = [n["state"] for n in ip_json("neigh", "show", pod_ip, netns=node)]
        assert state == [["INCOMPLETE"]], state

    repaired_fault()  # one probe, fedora-1's: fedora-2 sends nothing first (an ARP of its own would resolve it)
    with Lab.attach(lab) as running:
        assert running.reach("fedora-1", "fedora-2", proto="icmp").reachable
    repaired_fault()
    code, data = probe(lab, "--proto", "icmp")
    assert code == 0, failing(data)
    assert data["neighbour_table"]["forgotten"] == 1, data["neighbour_table"]
    repaired_fault()
    tr = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False)
    assert tr.returncode == 0 and json.loads(tr.stdout)["delivered"], tr.stdout


def test_a_probe_waits_its_turn_on_the_machines_neighbour_table(shared, quiet_neighbour_table):
    """While another run holds the machine's probing turn, a probe sends nothing and says whom it
    waits for; once the turn is free it runs, and its report says how long it waited."""
    from netlab.probe import turns

    lab = shared

    def learned():
        return {ns: sorted(n["dst"] for n in ip_json("neigh", netns=ns) if "PERMANENT" not in n.get("state", []))
                for ns in lab_namespaces(lab)}

    before = learned()
    with turns.probing_turn(f"{lab}-holder"):
        proc = subprocess.Popen(NETLAB + ["probe", "--lab", lab, "-o", "json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([proc.stderr], [], [], 60)
            assert ready, "no word from the waiting probe within 60 s"
            line = proc.stderr.readline()
            assert line == (f"netlab: lab {lab}: waiting for pid {os.getpid()} (netlab probe of lab {lab}-holder) to "
                            "finish: one probe runs at a time on a machine (they share its neighbour table)\n")
            assert proc.poll() is None
            assert learned() == before  # nothing sent yet: no pod has resolved another
            checks = {c["name"]: c for c in json.loads(netlab("doctor", "-o", "json").stdout)["checks"]}
            assert (f"; pid {os.getpid()} (netlab probe of lab {lab}-holder) holds the probing turn now: other "
                    "probes wait for it") in checks["neighbours"]["detail"]
        except BaseException:
            proc.kill()
            raise
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["ok"] and data["summary"]["as_expected"] == 60
    assert data["neighbour_table"]["turn_wait_s"] >= turns.QUIET_FOR
    assert data["neighbour_table"]["table_fulls"] == 0


def waiting_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The first line of a probe's stderr that says it waits for its turn (other warnings may come first)."""
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], timeout)
        assert ready, f"no word from the waiting probe within {timeout:.0f} s"
        line = proc.stderr.readline()
        assert line, "the probe ended without waiting"
        if is_turn_wait(line):
            return line


def test_two_labs_probed_at_once_hold_one_budget_of_the_neighbour_table_not_two(labs, quiet_neighbour_table):
    """Each run may hold the table's room below gc_thresh2 (its budget); two side by side would hold
    two (past gc_thresh2, where the kernel's forced garbage collection evicts other namespaces' entries).
    Both runs are made to start together (they wait for a turn this test holds), and then take turns:
    the machine's count never passes one budget's worth."""
    from netlab.probe import turns

    with open("/proc/sys/net/ipv4/neigh/default/gc_thresh2") as fh:
        thresh2 = int(fh.read())
    pods = math.isqrt(thresh2) + 8  # all pairs of one lab's pods need more entries than one budget
    if pods > 40:
        pytest.skip(f"gc_thresh2 is {thresh2} here: labs of {pods} pods would be needed to fill a budget")
    names = [labs.name("pt"), labs.name("pt")]
    for i, lab in enumerate(names):
        spec = "".join(f"  - {{name: p{k}, node: n1}}\n" for k in range(pods))
        labs.up_here(f"name: {lab}\ncluster: {{nodeMask: 24}}\nnodes:\n  - {{name: n1}}\npods:\n{spec}", f"t{i}.yaml")
    with turns.probing_turn("the test"):
        runs = [subprocess.Popen(NETLAB + ["probe", "--lab", lab, "--proto", "icmp", "-o", "json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lab in names]
        for run in runs:  # both wait for the turn now
            waiting_line(run)
    reports = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    for data in reports:
        assert data["ok"] and data["summary"]["as_expected"] == pods * (pods - 1) + pods
        table = data["neighbour_table"]
        assert table["peak_live"] > thresh2 // 2  # the run held about a budget's worth itself
        assert table["peak_entries"] <= thresh2, table
        assert table["table_fulls"] == 0 and table["forced_gc_runs"] == 0


def test_probe_needs_a_running_lab(labs):
    proc = netlab("probe", "--lab", "nosuchlab", check=False)
    assert proc.returncode == 2 and "not up" in proc.stderr


def test_ctrl_c_during_a_probe_leaves_no_agent_or_worker_behind(labs, tmp_path):
    """Ctrl-C kills the probe's agent; its workers (forked by the agent) went on probing in the lab's
    namespaces, holding neighbour entries outside any run's budget, until their share was done. Now every
    forked helper dies with its parent. The workers' share is a long sleep here, so that they are surely
    at work when Ctrl-C comes; the agent's own share is real."""
    import signal
    import sys

    lab = labs.name()
    labs.up_here(two_node_topology(lab, pods_per_node=2))
    lab_ns = {os.stat(f"/run/netns/{ns}").st_ino for ns in lab_namespaces(lab)}

    def in_lab() -> set[int]:  # processes in the lab's network namespaces (the echo server's threads too)
        out = set()
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino in lab_ns:
                    out.add(pid)
            except OSError:  # gone, or not ours to look at (pid 1 of some VMs)
                pass
        return out

    echo = in_lab()  # the lab's own: its echo server
    script = tmp_path / "probe.py"
    script.write_text(f"""import sys, time
from netlab.kernel import netns as nsmod
from netlab.probe import agent

def sleeping(job, *args):
    nsmod.join(job.home)
    time.sleep(60)

agent.work = sleeping
agent.MIN_TASKS_PER_WORKER = 1  # a worker per core for this small lab
sys.argv = ["netlab", "probe", "--lab", {lab!r}, "--proto", "icmp"]
from netlab.launch import main
main()
""")
    def as_a_terminal_starts_it() -> None:  # SIGINT as a shell gives it, whatever this test process inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    def where(pid: int) -> str:  # what a process is doing, for a failure's message
        try:
            status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines()
                          if ":\t" in line)
            wchan = open(f"/proc/{pid}/wchan").read()
        except OSError as exc:
            return f"pid {pid}: {exc}"
        return f"pid {pid}: {status.get('State')}, wchan {wchan}, SigBlk {status.get('SigBlk')}, " \
               f"SigIgn {status.get('SigIgn')}, SigPnd {status.get('SigPnd')}"

    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=as_a_terminal_starts_it)
    try:
        assert wait_for(lambda: len(in_lab() - echo) >= 2, timeout=30), "no agent and worker at work in the lab"
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the probe did not end on SIGINT: " + "; ".join(
                where(pid) for pid in [proc.pid, *sorted(in_lab() - echo)])) from None
        assert code == 130, proc.stderr.read()
        assert wait_for(lambda: not in_lab() - echo, timeout=5), f"left in the lab: {in_lab() - echo}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("arp", ["real", "seeded"])
def test_ctrl_c_during_a_probe_leaves_no_neighbour_entry_of_it(labs, arp):
    """Ctrl-C SIGKILLed the probe's agent, so its sweep never ran: the run's dynamic neighbour entries (170 to
    414 in a lab of 60 pods) stayed in the machine's one table, the next probe left them alone as entries it
    found, and failed on the half-done resolutions among them ("no route to host"). Now the agent gets SIGTERM
    and a short grace, stops its workers and sweeps. A real `netlab probe`, a real SIGINT once the kernel shows
    the probe at work; the lab's namespaces then hold what they held before, the exit is 130 and prompt, and
    the next probe passes. Seeded pairs (``--arp seeded``) leave no PERMANENT entry of theirs either."""
    import signal
    import time

    lab = labs.name("qe")
    pods = "".join(f"  - {{name: p{i}, node: n{1 + i % 2}}}\n" for i in range(40))
    labs.up_here(f"name: {lab}\nnodes:\n  - {{name: n1}}\n  - {{name: n2}}\npods:\n{pods}")
    namespaces = lab_namespaces(lab)
    watched = [f"{lab}-{n}" for n in ("n1", "n2", "p0", "p1", "p2", "p3")]

    def entries(names: list[str]) -> set[tuple[str, str, str]]:
        return {(ns, n["dst"], n.get("dev", "")) for ns in names for n in ip_json("neigh", netns=ns)}

    before = entries(namespaces)  # flannel's PERMANENT entries; nothing dynamic yet

    def as_a_terminal_starts_it() -> None:  # SIGINT as a shell gives it, whatever this test process inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    proc = subprocess.Popen([*NETLAB, "probe", "--lab", lab, "--arp", arp], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_a_terminal_starts_it)
    try:
        assert wait_for(lambda: entries(watched) - before, timeout=60, step=0.01), "the probe made no entry"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)  # interrupted mid-run, not a run that ended first
    assert took < 3, took  # the agent's grace is 1.5 s
    made = entries(namespaces) - before
    states = {(ns, n["dst"], n.get("dev", "")): n.get("state") for ns in namespaces  # for a failure's message
              for n in ip_json("neigh", netns=ns)}
    assert not made, f"{len(made)} entries the interrupted probe made are left: " \
                     f"{[(*e, states.get(e)) for e in sorted(made)[:10]]}"
    again = netlab("probe", "--lab", lab, check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert entries(namespaces) - before == set()
