"""What the `netlab break` tests share (test_break_pod_network.py, test_break_services.py, test_break_policies.py):
a copy of a shipped topology as a lab of its own, and the check every scenario passes on a real lab.

One lab per topology is shared by its scenarios (break, check, up, next), so the suite stays fast. For every
scenario (:func:`break_and_repair`):

- ``netlab break`` makes the change;
- ``netlab probe`` exits 1, and every flow fails or passes exactly as the
  catalogue's symptom says (a Service flow whose endpoint is picked at random
  may go either way only where the symptom says so);
- ``netlab trace`` blames the hop and fact the catalogue names, not an
  earlier or later one (or, for a flow a policy denies that a fault let
  through, says so in its policy verdict);
- the lab's ``up`` repairs (it changes the kernel): probe exits 0 and status is clean.

Every command is the CLI's, a process as a user runs it, but the labs' setup and teardown, the repair and the
repaired lab's status: the library's (Lab.up: the converge the CLI's up runs; Lab.status: the comparison the
CLI's status prints and exits 1 on), in the test's own process. A CLI process costs about 0.45 s of CPU to start
Python and import netlab, ten times the comparison on these labs, and the suite is CPU-bound; the CLI's status
(its exit, its last line) is checked on the broken lab. (Not the probe: the library's forks its agent from the
test's process, a big heap with its cycle collector on, not the CLI's small one that forks it while it loads; one
of its 1-second waits ran out under load.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from typing import Iterator

from helpers import in_netns, lab_up, netlab, probe_failures, unique_lab
from netlab import Lab
from netlab.api import results as R
from netlab.breaks import catalogue, symptoms
from netlab.breaks.changes import STALE_SPORT, dns_udp, peer_node
from netlab.errors import NetlabError, display_path, netlab_command
from netlab.realize.state import running_lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "netlab", "data", "default.yaml")
SERVICES = os.path.join(ROOT, "topologies", "services.yaml")
NETPOL = os.path.join(ROOT, "topologies", "netpol-3x3.yaml")


@contextlib.contextmanager
def shipped_lab(tmp_path_factory, source: str, extra: str = "", policies: bool = False,
                prefix: str = "bk") -> Iterator[tuple[str, str]]:
    """The topology file ``source`` as a lab of a unique name (``prefix`` and hex), ``extra`` appended to it (with
    its folder of policy files beside it: ``policies``), up for the body: (name, path)."""
    name = unique_lab(prefix)
    text = open(source, encoding="utf-8").read()
    lines = [f"name: {name}" if line.startswith("name:") else line for line in text.splitlines()]
    folder = tmp_path_factory.mktemp(name)
    path = folder / "topo.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    if policies:
        shutil.copytree(os.path.join(ROOT, "topologies", "netpol"), folder / "netpol")
    with lab_up(str(path), name, in_process=True):  # in this process: these tests ask nothing of up's or down's CLI
        yield name, str(path)


def probe(lab: str, *args: str) -> tuple[int, dict]:
    proc = netlab("probe", "--lab", lab, "-o", "json", *args, check=False)
    return proc.returncode, json.loads(proc.stdout)


def blamed(trace: dict) -> dict | None:
    return trace.get("lost") or trace.get("reply_lost")


def break_and_repair(lab: str, path: str, name: str, target_name: str | None = None, also=None) -> None:
    """The scenario ``name`` on the lab, checked as the module says; ``also(model)``: more checks on the broken
    lab, before ``up`` repairs it."""
    s = catalogue.scenario(name)
    assert s is not None
    model = running_lab(lab).resolved()
    target = catalogue.resolve_target(s, model, target_name)
    try:
        out = netlab("break", name, "--lab", lab, *(["--target", target_name] if target_name else []))
        assert f"broke {name}" in out.stdout
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1  # the kernel really changed
        # the repair is up from the lab's own file (a plain `sudo netlab up` makes the built-in lab "demo")
        assert status.stdout.splitlines()[-1] == f"run `{netlab_command(f'up -t {display_path(path)}')}` to repair"
        check_probe(lab, name, s, model, target)
        check = symptoms.trace_check(s, model, target)
        if check.fact:
            check_trace(lab, name, check)
        if also is not None:
            also(model)
    finally:
        repaired = repair_here(path)  # always: the next scenario needs a sound lab
    assert_repaired(repaired)
    rc, report = probe(lab, *s.probe)
    assert rc == 0, probe_failures(report) + "\n" + "\n".join(repaired.fixed)
    assert_as_planned(lab, f"{name}'s repair")
    if name == "conntrack-stale-entry":  # up deleted the entry: the client's own port works again
        assert dns_answers(model, target, STALE_SPORT)


def repair_here(path: str) -> R.UpResult | str:
    """`netlab up -t PATH`, the lab's repair, in this process (Lab.up: the converge the CLI's up runs, which prints
    its result): what it did, or the error the CLI would have said (never raised: this runs in a test's
    ``finally``, after a failure it must not hide)."""
    try:
        done = Lab.up(path).last_up
    except NetlabError as err:
        return f"up failed: {err}"
    assert done is not None
    return done


def assert_repaired(done: R.UpResult | str) -> None:
    """The repair's up exited 0 (nothing failed) and found the fault: it changed the kernel (`up` says "nothing to
    change" when ``changed`` is False)."""
    assert not isinstance(done, str) and done.ok, done
    assert done.changed, f"up found nothing to change: {done}"


def assert_as_planned(lab: str, after: str = "") -> None:
    """`netlab status`'s verdict, asked of the library in this process (Lab.status: the comparison the CLI's
    status prints and exits 1 on): the kernel is as the lab's plan says."""
    done = Lab.attach(lab).status()
    assert done.ok, "\n".join((f"not as planned after {after}:" if after else "not as planned:",) + done.drift)


def check_probe(lab: str, name: str, s, model, target) -> None:
    """probe exits 1 and every flow fails or passes as the symptom says."""
    rc, report = probe(lab, *s.probe)
    verdict = symptoms.expect(s, model, target)
    wrong = []
    for row in report["probes"]:
        want = verdict(row)
        failed = not row["as_expected"]
        if (want == "fail" and not failed) or (want == "pass" and failed):
            wrong.append(f"{row['source']} -> {row['destination']} {row['protocol']}/{row['port']}: "
                         f"want {want}, got {row['outcome']} {row['problems']}")
    assert not wrong, f"{name}: flows not as the catalogue says:\n" + "\n".join(wrong)
    if name == "pod-mtu-too-big":
        check_mtu(model, target)
        # The small probes pass: what a plain `probe` exits 0 on, read from this --mtu run, which probes every flow
        # it does beside the full-size echoes: nothing but those is not as expected (summary.not_as_expected counts
        # every failed flow, pod self-check, distribution and deleted namespace; none exactly when a run is ok).
        failed = [row for row in report["probes"] if not row["as_expected"]]
        small = [row for row in report["probes"] if row["protocol"] != "mtu"]
        assert small and all(row["protocol"] == "mtu" for row in failed), "small probes pass:\n" + \
            probe_failures(report)
        assert report["summary"]["not_as_expected"] == len(failed), probe_failures(report)
    if name == "conntrack-stale-entry":  # it hides from probe (new ports); the client's own port shows it
        assert rc == 0, "every probe uses a new source port, so none meets the stale entry"
        assert not dns_answers(model, target, STALE_SPORT), "the client's fixed-port query was answered"
        assert dns_answers(model, target, 0), "a query from a new port must be answered"
        return
    assert rc == 1 and not report["ok"], f"{name}: probe should fail"


def check_trace(lab: str, name: str, check: symptoms.TraceCheck) -> None:
    """trace exits 1 and blames the hop and fact the catalogue names."""
    args = ["trace", "--lab", lab, check.src, check.dst, "-o", "json"]
    args += ["--proto", check.proto] if check.proto else []
    args += ["--port", str(check.port)] if check.port else []
    args += ["--size", str(check.size)] if check.size else []
    args += ["--sport", str(check.sport)] if check.sport else []
    tr = netlab(*args, check=False)
    trace = json.loads(tr.stdout)
    if check.policy:  # a flow a policy denies that got through: delivered, its policy verdict says why, exit 1
        assert tr.returncode == 1 and trace["delivered"], f"{name}: trace exit {tr.returncode}\n{tr.stdout}"
        assert any(symptoms.matches(check, e["text"]) for e in trace["policy"]), trace["policy"]
        return
    if check.refused:  # delivered, and refused there (exit 1): the reason names the namespace and its sockets
        assert tr.returncode == 1 and trace["delivered"] and trace["refused"], f"{name}: {tr.stdout}"
        assert f" in {check.blamed_netns};" in trace["refused"], f"{name}: trace said {trace['refused']}"
        assert symptoms.matches(check, trace["refused"]), f"{name}: trace said {trace['refused']}"
        return
    # exit 1 when the packet does not reach its destination, and when its reply is lost (the connection fails as
    # surely; the reason is then in the reply's part); a fault the DNS answer shows (no hop to blame) exits 0
    assert tr.returncode == (1 if check.blamed_netns else 0), f"{name}: trace exit {tr.returncode}\n{tr.stderr}"
    if check.blamed_netns:
        hop = blamed(trace)
        assert hop is not None, f"{name}: trace blamed no hop: {trace.get('reply')}"
        assert hop["netns"] == check.blamed_netns, f"{name}: trace blamed {hop}"
        assert symptoms.matches(check, hop["reason"]), f"{name}: trace said {hop['reason']}"
        assert (trace["lost"] is None) == check.reply, f"{name}: request/reply side: {hop}"
    else:  # the fact is in what trace says about the reply (no DNS answer)
        assert symptoms.matches(check, json.dumps(trace.get("reply"))), trace.get("reply")


DNS_QUERY = r"""
import socket, struct, sys
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in "kube-dns.kube-system.svc.cluster.local".split(".")) + b"\0"
q += struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(1.5)
s.sendto(q, (sys.argv[1], 53))
try:
    data = s.recv(512)
    sys.exit(0 if data[:2] == q[:2] else 3)
except socket.timeout:
    sys.exit(1)
"""


def dns_answers(model, client, sport: int) -> bool:
    """One real DNS query from ``client``'s port ``sport`` (0: a new one) to cluster DNS: answered?"""
    cip, _, _ = dns_udp(model)
    proc = in_netns(client.netns, sys.executable, "-c", DNS_QUERY, cip, str(sport))
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def check_mtu(model, target) -> None:
    """Small pings pass, full-size ones (DF, the pod's MTU: 1422 + 28 = 1450) are lost, both ways, between a pod
    of the node and one of its peer (a node without pods stands in, with its cni0 address, or flannel.1's before its
    first pod made cni0: changes.peer_end)."""
    def end(node):
        pods = model.pods_on(node.name)
        own = node.gateway.ip if node.name in model.bridge_nodes() else node.vtep_ip
        return (pods[0].netns, str(pods[0].ip)) if pods else (node.netns, str(own))

    here, there = end(target), end(peer_node(model, target))
    size = str(model.pod_mtu - 28)
    for (netns, _), (_, ip) in ((here, there), (there, here)):
        small = in_netns(netns, "ping", "-c1", "-W1", ip)
        assert small.returncode == 0, small.stdout
        big = in_netns(netns, "ping", "-c1", "-W1", "-M", "do", "-s", size, ip)
        assert big.returncode != 0, f"{netns} -> {ip}: a {size}-byte DF ping passed\n{big.stdout}"
