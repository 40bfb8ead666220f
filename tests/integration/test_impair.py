"""Impairments measured with real traffic: iperf3 for a rate, 2,000 pings for a loss, ping RTTs for a delay
(test_impair_loss.py measures a loss with UDP and TCP too).

One small lab for the module (a node, three pods): ``shaped`` sends at most
20mbit, ``lossy`` loses 10% of what it sends, ``server`` runs iperf3 and
answers pings. Each test checks the kernel's own view too (``tc -j``,
``nft list table netdev netlab-impair``), and the lifecycle: ``status`` sees a qdisc removed behind
netlab's back, ``up`` restores it, a run-time ``netlab impair`` is the lab's
desired state (not drift) but differs from the file, ``down`` takes it all.
"""

from __future__ import annotations

import json
import math
import re
import subprocess

import pytest

from helpers import (as_planned_here, in_netns, lab_down_here, lab_up, netlab, unique_lab, up_here, wait_for,
                     write_topology)
from netlab import Lab
from netlab import doctor
from netlab.errors import display_path, netlab_command
from netlab.kernel import netlink as nl
from netlab.kernel import tc
from netlab.model.lab import resolve
from netlab.model.topology import Topology

pytestmark = pytest.mark.root

RATE = 20_000_000
REAL_TBF_OPTIONS = tc.tbf_options  # before a test swaps it for one the kernel refuses
LOSS = 0.10
PINGS = 2000


def topology(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: shaped
    node: node-1
    impair:
      eth0: {{rate: 20mbit}}
  - name: lossy
    node: node-1
    impair:
      eth0: {{loss: "10%"}}
  - name: server
    node: node-1
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("im")
    path = write_topology(tmp_path_factory.mktemp("impair"), topology(name))
    with lab_up(path, name, in_process=True):  # the module's tests are of impair, status, up's output and trace
        yield name, path


def pod_ip(lab: str, pod: str) -> str:
    return Lab(lab).pod(pod).ip


def qdiscs(netns: str, dev: str = "eth0") -> list[dict]:
    return json.loads(subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", dev],
                                     capture_output=True, text=True, check=True).stdout)


def iperf_bits_per_second(lab: str, src: str, dst: str, seconds: int = 4) -> float:
    """What an iperf3 client in pod ``src`` gets through to a server in pod ``dst`` (TCP, as received)."""
    dst_ip = pod_ip(lab, dst)
    server = subprocess.Popen(["ip", "netns", "exec", f"{lab}-{dst}", "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # iperf3 -s -1 serves one client, so no probe connect: its listening socket, as ss sees it
        assert wait_for(lambda: in_netns(f"{lab}-{dst}", "ss", "-Hltn", "sport = :5201").stdout.strip(), 10), \
            "iperf3 -s never listened"
        proc = in_netns(f"{lab}-{src}", "iperf3", "-c", dst_ip, "-p", "5201", "-t", str(seconds), "-O", "1", "-J",
                        timeout=seconds + 20)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return float(json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"])
    finally:
        server.kill()
        server.wait()


def test_a_rate_is_what_iperf3_measures(lab):
    name, _ = lab
    (root,) = [q for q in qdiscs(f"{name}-shaped") if q.get("root")]
    assert root["kind"] == "tbf" and root["options"]["rate"] == RATE // 8  # tc -j: bytes a second
    measured = iperf_bits_per_second(name, "shaped", "server")
    # tbf guarantees a ceiling (the rate, and a burst of 10 ms over the 4 s measured), not a floor: it banks no more
    # than that burst, so each moment iperf3's sender or receiver does not run (a loaded machine) is lost from the
    # figure for good (0.8 s of a stopped receiver: 16.96 Mbit/s, with the qdisc exactly as planned). The floor is
    # for a shaping gone wrong: a unit slipped (bits as bytes: 8 times off), a bucket that passes a trickle. The
    # bucket's parameters themselves are the kernel's, checked above and in test_impair_params.py.
    assert RATE / 2 <= measured <= 1.15 * RATE, f"{measured / 1e6:.2f} Mbit/s, set 20mbit"
    print(f"rate: iperf3 received {measured / 1e6:.2f} Mbit/s with rate 20mbit")
    # The unimpaired pod is not held to that rate: the limit is the qdisc's, not the lab's.
    assert iperf_bits_per_second(name, "server", "shaped", seconds=2) > 2 * RATE


def test_a_loss_is_within_a_binomial_bound(lab):
    name, _ = lab
    # Dropped on the ingress of lossy's veth peer, in node-1 (plan/impair.py): nothing in the pod's own tables.
    assert "NETLAB" not in in_netns(f"{name}-lossy", "iptables-save", "-t", "mangle", check=True).stdout
    listed = in_netns(f"{name}-node-1", "nft", "list", "table", "netdev", "netlab-impair", check=True).stdout
    assert re.search(r'chain loss-lossy-eth0 \{\n\s+type filter hook ingress device "veth\w+" priority filter; '
                     r'policy accept;\n\s+numgen random mod 1000000000 < 100000000 counter packets \d+ bytes \d+ '
                     r'drop\n', listed), listed
    # The neighbour resolved first: the loss is on the wire, ARP is lost too, and while a request is sent again a
    # second later the kernel keeps only a few packets for it (20 pings, one answer: all lost is one in 10^15).
    warm = in_netns(f"{name}-lossy", "ping", "-c", "20", "-i", "0.05", "-W", "1", pod_ip(name, "server"), timeout=30)
    assert " 0 received" not in warm.stdout, warm.stdout
    proc = in_netns(f"{name}-lossy", "ping", "-q", "-n", "-c", str(PINGS), "-i", "0.002", "-W", "1",
                    pod_ip(name, "server"), timeout=60)
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", proc.stdout).groups())
    lost = sent - received
    mean, sd = PINGS * LOSS, math.sqrt(PINGS * LOSS * (1 - LOSS))
    # 4.5 standard deviations: a correct 10% loss falls outside about once in 150,000 runs.
    assert sent == PINGS and abs(lost - mean) <= 4.5 * sd, f"{lost} of {PINGS} lost, expected {mean:.0f} ± {4.5 * sd:.0f}"
    print(f"loss: {lost} of {PINGS} pings lost with loss 10% (bound {mean:.0f} ± {4.5 * sd:.0f})")
    # Echo replies come back through the server's eth0, which loses nothing: every loss is the request's.
    clean = in_netns(f"{name}-server", "ping", "-q", "-n", "-c", "200", "-i", "0.002", "-W", "1",
                     pod_ip(name, "shaped"), timeout=30)
    assert " 0% packet loss" in clean.stdout


def test_status_sees_a_qdisc_removed_and_up_restores_it(lab):
    name, path = lab
    subprocess.run(["tc", "-n", f"{name}-shaped", "qdisc", "del", "dev", "eth0", "root"], check=True)
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1
    assert f"impair: eth0 in {name}-shaped has none, the topology says rate 20mbit" in drift.stdout
    fixed = netlab("up", "-t", path)
    assert f"set rate 20mbit on eth0 in {name}-shaped (it had none)" in fixed.stdout
    assert [q["kind"] for q in qdiscs(f"{name}-shaped") if q.get("root")] == ["tbf"]
    # The CNI plugin's txqueuelen 0 stays, although the kernel gives a device 1000 when a qdisc is attached.
    assert as_planned_here(name)


def mangle(netns: str) -> str:
    """The namespace's mangle table as iptables-save prints it, without its dated comment lines."""
    text = in_netns(netns, "iptables-save", "-t", "mangle", check=True).stdout
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))


def test_a_run_time_impairment_is_desired_state_until_up_from_the_file(lab):
    name, path = lab
    before = mangle(f"{name}-server")
    out = netlab("impair", "--lab", name, "server:eth0", "--rate", "5mbit", "--loss", "2%")
    assert "server:eth0 in lab " + name + ": rate 5mbit loss 2% (was none)" in out.stdout
    assert [q["options"]["rate"] for q in qdiscs(f"{name}-server") if q.get("root")] == [5_000_000 // 8]
    assert as_planned_here(name)  # the lab's desired state now
    against = netlab("status", "-t", path, check=False)
    assert against.returncode == 1
    assert (f"impair: eth0 in {name}-server has rate 5mbit, the topology says none "
            "(set at run time by `netlab impair`: rate 5mbit loss 2%)") in against.stdout
    assert (f"different: nftables table netdev netlab-impair in {name}-node-1 (extra chain loss-server-eth0 type "
            "filter hook ingress device") in against.stdout, against.stdout
    assert "; set at run time by `netlab impair`: server:eth0 rate 5mbit loss 2%)" in against.stdout, against.stdout
    netlab("impair", "--lab", name, "shaped:eth0", "--clear")
    assert [q["kind"] for q in qdiscs(f"{name}-shaped") if q.get("root")] == ["noqueue"]
    # `up --lab NAME` converges to the lab's saved topology, the run-time impairments with it: it repairs a
    # qdisc deleted by hand and keeps the rest; the lab still comes from its file (status -t FILE: no --reconfigure).
    subprocess.run(["tc", "-n", f"{name}-server", "qdisc", "del", "dev", "eth0", "root"], check=True)
    # status names that up as the repair: `up -t FILE` would take the run-time impairments off.
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1 and "has none, the topology says rate 5mbit" in drift.stdout, drift.stdout
    assert drift.stdout.splitlines()[-1] == f"run `{netlab_command(f'up --lab {name}')}` to repair", drift.stdout
    repaired = netlab("up", "--lab", name)
    assert f"set rate 5mbit on eth0 in {name}-server" in repaired.stdout, repaired.stdout
    assert [q["kind"] for q in qdiscs(f"{name}-shaped") if q.get("root")] == ["noqueue"]
    assert as_planned_here(name)
    assert f"run `{netlab_command(f'up -t {display_path(path)}')}` to apply it" in \
        netlab("status", "-t", path, check=False).stdout
    restored = netlab("up", "-t", path)
    assert f"removed rate 5mbit from eth0 in {name}-server" in restored.stdout
    assert f"set rate 20mbit on eth0 in {name}-shaped" in restored.stdout
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]
    assert mangle(f"{name}-server") == before  # no jump, no chain left: the table is as it was
    assert as_planned_here(name, path)



def test_impair_takes_the_labs_file_and_clear_says_it_cleared(lab):
    """`impair -t FILE` acts on the file's lab, as every command on a running lab does (it was "No such option
    '-t'", exit 2); --clear of a run-time rate says --clear took it (it said "no longer in the topology")."""
    name, path = lab
    out = netlab("impair", "-t", path, "server:eth0", "--rate", "10mbit", "--loss", "1%")
    assert f"server:eth0 in lab {name}: rate 10mbit loss 1% (was none)" in out.stdout, out.stdout
    assert [q["options"]["rate"] for q in qdiscs(f"{name}-server") if q.get("root")] == [10_000_000 // 8]
    cleared = netlab("impair", "-t", path, "server:eth0", "--clear")
    assert f"removed rate 10mbit from eth0 in {name}-server (cleared by `netlab impair --clear`)" in \
        cleared.stdout, cleared.stdout
    assert "no longer in the topology" not in cleared.stdout
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]
    assert as_planned_here(name, path)  # the lab is its file's again


def _runtime(name: str) -> dict:
    """The lab's run-time impairment records (impair.lifecycle's ``impair.runtime``), read from its state."""
    from netlab.realize.state import load_state

    state = load_state(name)
    assert state is not None
    return (state.extra.get("impair") or {}).get("runtime") or {}


def test_clear_of_an_interface_the_file_leaves_alone_drops_its_run_time_record(lab):
    """QA: `impair X --rate R` then `impair X --clear` left a record (spec {}) in the lab's state, so status and
    every repair line named `up --lab L` (not the file's `up -t FILE`) for good: even `up -t FILE` kept it. The
    interface is its file's again: the record goes. A --clear of an interface the file impairs is a difference from
    the file, and its record stays."""
    name, path = lab
    netlab("impair", "--lab", name, "server:eth0", "--rate", "10mbit")
    assert set(_runtime(name)) == {f"{name}-server:eth0"}
    netlab("impair", "--lab", name, "server:eth0", "--clear")
    assert _runtime(name) == {}, _runtime(name)
    subprocess.run(["tc", "-n", f"{name}-shaped", "qdisc", "del", "dev", "eth0", "root"], check=True)
    drift = netlab("status", "--lab", name, check=False)
    assert drift.stdout.splitlines()[-1] == f"run `{netlab_command(f'up -t {display_path(path)}')}` to repair", \
        drift.stdout
    up_here(path)
    # The file rates shaped: cleared, it differs from the file, and `up --lab` (not `up -t FILE`) keeps it so.
    netlab("impair", "--lab", name, "shaped:eth0", "--clear")
    assert _runtime(name).get(f"{name}-shaped:eth0", {}).get("spec") == {}, _runtime(name)
    assert not as_planned_here(name, path) and as_planned_here(name)
    up_here(path)
    assert _runtime(name) == {} and as_planned_here(name, path)


def test_clearing_the_last_loss_leaves_the_table_as_it_was(lab):
    """`impair --clear` of a loss takes its chain out of the node's netdev table (emptied by the sync, deleted by
    the next, as kube-proxy's chains), the pod's own tables never held anything, status finds nothing either way,
    and the pod's traffic flows."""
    name, path = lab
    server, node = f"{name}-server", f"{name}-node-1"
    before = mangle(server)
    assert "NETLAB-IMPAIR" not in before

    def chains() -> dict[str, int]:
        data = json.loads(in_netns(node, "nft", "-j", "list", "table", "netdev", "netlab-impair", check=True).stdout)
        rules = [o["rule"]["chain"] for o in data["nftables"] if "rule" in o]
        return {o["chain"]["name"]: rules.count(o["chain"]["name"]) for o in data["nftables"] if "chain" in o}

    assert chains() == {"loss-lossy-eth0": 1}
    Lab(name).impair("server:eth0", loss="5%")
    assert chains() == {"loss-lossy-eth0": 1, "loss-server-eth0": 1} and mangle(server) == before
    assert as_planned_here(name)  # the loss is the lab's desired state
    netlab("impair", "--lab", name, "server:eth0", "--clear")
    assert chains() in ({"loss-lossy-eth0": 1, "loss-server-eth0": 0}, {"loss-lossy-eth0": 1})  # empty: drops nothing
    assert as_planned_here(name)
    up_here(path)
    assert chains() == {"loss-lossy-eth0": 1} and mangle(server) == before
    ping = in_netns(server, "ping", "-c", "3", "-W", "1", pod_ip(name, "shaped"))
    assert ping.returncode == 0, ping.stdout
    # What an older netlab's --clear left (the chain and its rule, no jump) is drift, and up deletes it.
    left = "*mangle\n:NETLAB-IMPAIR - [0:0]\n-A NETLAB-IMPAIR -o eth0 -j DROP\nCOMMIT\n"
    subprocess.run(["ip", "netns", "exec", server, "iptables-restore", "--noflush"], input=left, text=True, check=True)
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1 and (f"iptables mangle rules in {server} (extra chain: NETLAB-IMPAIR; extra rule: "
                                      "-A NETLAB-IMPAIR -o eth0 -j DROP)") in drift.stdout
    assert f"restore iptables mangle in {server}" in netlab("up", "-t", path).stdout
    assert mangle(server) == before
    assert as_planned_here(name)
    ping = in_netns(server, "ping", "-c", "3", "-W", "1", pod_ip(name, "shaped"))
    assert ping.returncode == 0, ping.stdout


def test_bad_run_time_impairments_are_refused_in_one_line(lab):
    name, _ = lab
    for args, rc, text in ((["nosuch:eth0", "--rate", "1mbit"], 2, f"lab {name} has no pod or node 'nosuch'"),
                           (["server:eth1", "--rate", "1mbit"], 2, "server has no interface 'eth1' to impair"),
                           (["server:eth0", "--rate", "1mbyte"], 2, "--rate: '1mbyte' is not a rate"),
                           (["server:eth0", "--jitter", "5ms"], 2, "--jitter varies a delay"),
                           (["server:eth0", "--loss", "0%"], 2, "--loss: '0%' drops nothing: leave loss out"),
                           (["server", "--rate", "1mbit"], 2, "write the target as NAME:IFACE")):
        proc = netlab("impair", "--lab", name, *args, check=False)
        assert proc.returncode == rc and text in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]


def netem_check() -> doctor.Check:
    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n"}], "pods": [
        {"name": "p", "node": "n", "impair": {"eth0": {"delay": "20ms"}}}]}))
    (check,) = doctor.diagnose(lab, doctor.needs(lab), ["netem"])
    return check


def test_a_delay_without_netem_is_refused_with_the_doctors_line(lab):
    name, _ = lab
    check = netem_check()
    if check.status == doctor.OK:
        pytest.skip("this kernel has sch_netem: the refusal cannot happen here")
    proc = netlab("impair", "--lab", name, "server:eth0", "--delay", "20ms", check=False)
    # the doctor's line, and which impairment asked for what the kernel lacks
    assert proc.returncode == 3 and proc.stderr.strip().startswith(f"netlab: {check.line()}; asked for by server:eth0 "
                                                                   "delay 20ms"), proc.stderr
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]


def test_a_delay_is_what_ping_measures(lab):
    name, path = lab
    check = netem_check()
    if check.status != doctor.OK:
        pytest.skip(f"netlab doctor: {check.line()}")
    netlab("impair", "--lab", name, "server:eth0", "--delay", "50ms")
    try:
        proc = in_netns(f"{name}-shaped", "ping", "-q", "-n", "-c", "20", "-i", "0.05", pod_ip(name, "server"),
                        timeout=30)
        avg = float(re.search(r"= [\d.]+/([\d.]+)/", proc.stdout).group(1))
        assert abs(avg - 50) <= 10, f"average RTT {avg} ms, set 50ms one way"
    finally:
        up_here(path)


def test_the_python_api_switches_an_impairment(lab):
    from netlab import Lab

    name, path = lab
    api_lab = Lab.attach(name)
    done = api_lab.impair("server:eth0", rate="8mbit")
    assert f"set rate 8mbit on eth0 in {name}-server (it had none)" in done.changes
    assert (done.target, done.before, done.after) == ("server:eth0", "none", "rate 8mbit") and done.fixed == done.changes
    assert [q["options"]["rate"] for q in qdiscs(f"{name}-server") if q.get("root")] == [1_000_000]
    assert api_lab.status().ok and not api_lab.status(path).ok
    api_lab.impair("server:eth0", clear=True)
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]
    assert api_lab.status(path).ok


def test_a_nodes_interfaces_shape_what_it_routes(tmp_path):
    """flannel.1 shapes what node-1 sends to node-2's pods, cni0 what it routes to its own pods."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes:
  - name: node-1
    impair:
      flannel.1: {{rate: 40mbit}}
      cni0: {{rate: 30mbit}}
  - name: node-2
pods:
  - {{name: shaped, node: node-1}}
  - {{name: server, node: node-2}}
""")
    try:
        up_here(path)
        assert as_planned_here(name)  # flannel.1 keeps its txqueuelen 0
        out = iperf_bits_per_second(name, "shaped", "server", seconds=3)
        back = iperf_bits_per_second(name, "server", "shaped", seconds=3)
        print(f"node impairments: {out / 1e6:.2f} Mbit/s through flannel.1 (40mbit), "
              f"{back / 1e6:.2f} Mbit/s through cni0 (30mbit)")
        assert abs(out - 40e6) <= 0.15 * 40e6 and abs(back - 30e6) <= 0.15 * 30e6
    finally:
        lab_down_here(name)


def test_trace_names_the_impairment_that_dropped_the_packet(lab):
    """A packet lost as it leaves an interface whose impairment drops it is blamed on that impairment, with
    `netlab impair ... --clear` as the fix (not `up`: a run-time impairment is the lab's desired state); for the
    request, and for the ARP answers it drops (it said "nothing on that link answers for" shaped). Before, trace said
    "look at the firewall" and "server sent no reply"."""
    name, _ = lab
    try:
        Lab(name).impair("shaped:eth0", loss="100%")
        proc = netlab("trace", "--lab", name, "shaped", "server", "-o", "json", check=False)
        lost = json.loads(proc.stdout)["lost"]
        # Lost at the node's first row after shaped's veth peer, or (ARP lost too) at shaped's own eth0.
        assert proc.returncode == 1 and lost["netns"] in (f"{name}-shaped", f"{name}-node-1"), lost
        assert lost["reason"].startswith("shaped:eth0 has netlab's impairment loss 100%: chain loss-shaped-eth0 of "
                                         f"table netdev netlab-impair in {name}-node-1 drops every frame arriving on "
                                         "veth"), lost
        assert lost["fix"] == netlab_command(f"impair --lab {name} shaped:eth0 --clear")  # another lab may be up too
        text = netlab("trace", "--lab", name, "shaped", "server", check=False).stdout
        assert f"  fix: {netlab_command(f'impair --lab {name} shaped:eth0 --clear')}\n" in text, text
        # The other way: shaped answers server's who-has, and the loss drops its answers as it drops anything shaped
        # sends (a wire's loss, ARP too): server's entry stays INCOMPLETE, the request goes no further. From no
        # entry (one left STALE would let the request go at once, and its reply be lost instead).
        shaped_ip = pod_ip(name, "shaped")
        subprocess.run(["ip", "-n", f"{name}-server", "neigh", "flush", "to", shaped_ip, "dev", "eth0"], check=True)
        before = loss_packets(f"{name}-node-1", "loss-shaped-eth0")
        proc = netlab("trace", "--lab", name, "server", "shaped", "-o", "json", check=False)
        dropped = loss_packets(f"{name}-node-1", "loss-shaped-eth0") - before
        lost = json.loads(proc.stdout)["lost"]
        entry = json.loads(subprocess.run(["ip", "-j", "-n", f"{name}-server", "neigh", "show", shaped_ip],
                                          capture_output=True, text=True, check=True).stdout)
        assert dropped > 0 and entry and set(entry[0]["state"]) & {"INCOMPLETE", "FAILED"}, (dropped, entry)
        assert proc.returncode == 1 and lost["netns"] == f"{name}-server", lost
        assert lost["reason"].startswith("shaped:eth0 has netlab's impairment loss 100%: chain loss-shaped-eth0 of "
                                         f"table netdev netlab-impair in {name}-node-1 drops every frame arriving on "
                                         "veth"), lost
        assert (f"ARP answers too: shaped answers who-has {shaped_ip}, and its answers to eth0 in {name}-server are "
                "dropped there (the chain's counter rose by ") in lost["reason"], lost
        assert "nothing on that link answers" not in proc.stdout
        assert lost["fix"] == netlab_command(f"impair --lab {name} shaped:eth0 --clear")
    finally:
        Lab(name).impair("shaped:eth0", rate="20mbit")  # as the file has it
    assert as_planned_here(name, lab[1])  # as the file has it again
    assert netlab("trace", "--lab", name, "shaped", "server", check=False).returncode == 0


def loss_packets(netns: str, chain: str) -> int:
    """The packets the loss chain's counter counted, from ``nft -j``."""
    listed = json.loads(in_netns(netns, "nft", "-j", "list", "table", "netdev", "netlab-impair", check=True).stdout)
    return sum(e["counter"]["packets"] for item in listed["nftables"] if item.get("rule", {}).get("chain") == chain
               for e in item["rule"]["expr"] if "counter" in e)


def root_qdisc(netns: str) -> dict:
    (root,) = [q for q in qdiscs(netns) if q.get("root")]
    return root


def test_a_rate_past_32_bits_is_set_read_back_and_its_drift_seen(lab):
    """tbf's rate field holds 32 bits of bytes a second (34.4 Gbit/s), and the model takes up to 100gbit: such a
    rate crashed `up` and `netlab impair` with exit 4 ("'I' format requires 0 <= number <= 4294967295"). It
    goes in TCA_TBF_RATE64, as tc sends it; status reads it back the same, and a rate changed by hand is drift."""
    name, path = lab
    server = f"{name}-server"
    try:
        out = netlab("impair", "--lab", name, "server:eth0", "--rate", "100gbit")
        assert f"set rate 100gbit on eth0 in {server} (it had none)" in out.stdout
        root = root_qdisc(server)
        assert root["kind"] == "tbf" and root["options"]["rate"] == 100 * 10**9 // 8  # tc -j: bytes a second
        assert as_planned_here(name)
        ping = in_netns(f"{name}-shaped", "ping", "-c", "3", "-i", "0.2", "-W", "1", pod_ip(name, "server"))
        assert ping.returncode == 0, ping.stdout  # the server's replies pass its tbf
        subprocess.run(["ip", "netns", "exec", server, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
                        "1gbit", "burst", "32kbit", "latency", "50ms"], check=True)
        drift = netlab("status", "--lab", name, check=False)
        assert drift.returncode == 1
        assert f"impair: eth0 in {server} has rate 1gbit burst 4096b limit 6254096b, the topology says rate 100gbit" \
            in drift.stdout, drift.stdout  # tc's burst (32kbit: 4096 bytes) and limit, not netlab's
        up_here(path)
        assert as_planned_here(name)  # the file's: none
    finally:
        up_here(path)
    assert [q["kind"] for q in qdiscs(server) if q.get("root")] == ["noqueue"]


def test_a_failed_impair_leaves_the_qdisc_it_had(lab):
    """Exit 4 says "rolled back": the lab's topology is the previous one again, and so must its qdiscs be. The
    run fails right after the qdisc changed (NETLAB_FAULT_POINT=impair-set); it kept the new rate, so status
    found drift after "rolled back"."""
    name, path = lab
    server = f"{name}-server"
    try:
        Lab(name).impair("server:eth0", rate="10mbit", loss="1%")
        failed = netlab("impair", "--lab", name, "server:eth0", "--rate", "100gbit", check=False,
                        env={"NETLAB_FAULT_POINT": "impair-set"})
        assert failed.returncode == 4, failed.stderr
        assert failed.stderr.strip() == "netlab: injected fault at impair-set; rolled back", failed.stderr
        root = root_qdisc(server)
        assert root["kind"] == "tbf" and root["options"]["rate"] == 10 * 10**6 // 8
        listed = in_netns(f"{name}-node-1", "nft", "list", "table", "netdev", "netlab-impair", check=True).stdout
        assert re.search(r"chain loss-server-eth0 \{\n.*\n\s+numgen random mod 1000000000 < 10000000 counter", listed)
        assert as_planned_here(name)
    finally:
        up_here(path)


def no_depth_tbf(bits: int) -> bytes:
    """tc.tbf_options of a token bucket of no depth, which the kernel refuses (tbf_change: max_size 0, EINVAL)."""
    opts = nl.attrs(REAL_TBF_OPTIONS(bits))
    fields = list(tc.TBF_QOPT.unpack(opts[tc.TCA_TBF_PARMS]))
    fields[13] = 0  # buffer: ticks of the bucket's depth
    return nl.attr(tc.TCA_TBF_PARMS, tc.TBF_QOPT.pack(*fields)) + nl.attr(tc.TCA_TBF_RTAB, opts[tc.TCA_TBF_RTAB])


def test_a_run_time_impairment_the_kernel_refuses_fails_and_leaves_the_lab_as_it_was(lab, monkeypatch):
    """netlab impair exited 0 with a warning and recorded the refused setting as the lab's desired state
    (status then called the interface drifted): it fails (ApplyFailed, exit 4) and the lab is as it was."""
    from netlab import Lab
    from netlab.errors import ApplyFailed

    name, path = lab
    api_lab = Lab.attach(name)
    # Refused for this rate only: up's preflight (the doctor's tbf check) makes one of 1mbit first.
    monkeypatch.setattr(tc, "tbf_options",
                        lambda bits: no_depth_tbf(bits) if bits == 8_000_000 else REAL_TBF_OPTIONS(bits))
    with pytest.raises(ApplyFailed, match=rf"of eth0 in {name}-server: Invalid argument .*; rolled back: "
                                          rf"lab {name} is impaired as it was") as info:
        api_lab.impair("server:eth0", rate="8mbit")
    assert info.value.exit_code == 4
    assert [q["kind"] for q in qdiscs(f"{name}-server") if q.get("root")] == ["noqueue"]
    assert api_lab.status().ok and api_lab.status(path).ok  # not drift, and the file's topology still


def test_a_change_the_kernel_refuses_keeps_the_qdisc_it_had(lab, monkeypatch):
    """replace_root deleted the root qdisc before it added the new one: a refused add left the interface
    unshaped. Now the kernel replaces a qdisc whole or not at all. Here it refuses a netem root where it has no
    sch_netem, and a token bucket of no depth (tbf_change: max_size 0, EINVAL); the pod still sends at 20mbit."""
    name, path = lab
    shaped = f"{name}-shaped"

    def root_rate() -> tuple[str, int | None]:
        root = root_qdisc(shaped)
        return root["kind"], root.get("options", {}).get("rate")

    try:
        if netem_check().status != doctor.OK:
            with pytest.raises(tc.TcError, match="netem .*: the kernel lacks this qdisc"):
                tc.replace_root(shaped, "eth0", RATE, delay_us=20_000)
            assert root_rate() == ("tbf", RATE // 8)
        monkeypatch.setattr(tc, "tbf_options", no_depth_tbf)
        with pytest.raises(tc.TcError, match=r"set tbf \(rate\) as the root qdisc of eth0 in .*: Invalid argument"):
            tc.replace_root(shaped, "eth0", 5_000_000)
        assert root_rate() == ("tbf", RATE // 8)
        assert netlab("status", "--lab", name).returncode == 0
        measured = iperf_bits_per_second(name, "shaped", "server", seconds=2)
        assert measured <= 1.15 * RATE, f"{measured / 1e6:.2f} Mbit/s: no longer shaped to 20mbit"
    finally:
        netlab("up", "-t", path)
