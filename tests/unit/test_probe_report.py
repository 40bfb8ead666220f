"""Rendering a probe run: pingall matrix, summary, failures, JSON, JUnit (no root)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import report as render
from netlab.probe.judge import Report, Result, SelfCheck, judge
from netlab.probe.distribution import judge_distribution
from netlab.probe.matrix import build_matrix
from netlab.probe.tasks import Observation

TOPO = {
    "name": "demo",
    "nodes": [{"name": "minikube", "podCIDR": "10.244.0.0/24"}, {"name": "minikube-m02", "podCIDR": "10.244.1.0/24"}],
    "pods": [{"name": "fedora-1", "node": "minikube", "ip": "10.244.0.2"},
             {"name": "fedora-2", "node": "minikube-m02", "ip": "10.244.1.3"},
             {"name": "fedora-3", "node": "minikube", "ip": "10.244.0.3"}],
    "expect": [{"from": "fedora-1", "to": "fedora-3", "proto": "tcp", "port": 8080, "reach": False}],
}


def fake_report(down: str | None = None, nat: bool = False, reach_forbidden: bool = False) -> Report:
    """What the agent would see if pod ``down`` had no network."""
    lab = resolve(Topology.model_validate(TOPO))
    results = []
    for p in build_matrix(lab, protos=["icmp", "tcp"]):
        sender = str(p.source.ip) if p.source.kind == "pod" else "10.244.0.1"
        if down in (p.source.name, p.destination.name):
            obs = Observation(outcome="timeout")
        elif not p.expected and not reach_forbidden:
            obs = Observation(outcome="timeout")
        elif p.proto == "icmp":
            obs = Observation(outcome="reply", rtt=0.0003, reply_from=str(p.destination.ip), ttl=64, local=sender)
        else:
            seen = "192.168.122.9:4000" if nat and p.source.name == "fedora-1" else f"{sender}:4000"
            obs = Observation(outcome="reply", rtt=0.0005, local=f"{sender}:4000", seen_client=seen,
                              server=f"{p.destination.ip}:8080", answered_by=p.destination.name)
        results.append(Result(p, obs, 1.0, judge(p, obs, 1.0, sender)))
    checks = [SelfCheck(p.name, str(p.ip), str(p.ip)) for p in lab.pods]
    return Report("demo", 1.0, results, checks, {"peak_entries": 40, "table_fulls": 0}, 0.2)


def test_all_as_expected():
    rep = fake_report()
    assert rep.ok
    out = render.text(rep)
    lines = out.splitlines()
    assert "*** icmp" in lines
    assert "fedora-1     ->          fedora-2 fedora-3" in lines
    assert "minikube     -> fedora-1 fedora-2 fedora-3" in lines
    # The forbidden pair is an expected miss: X without "!".
    tcp = lines[lines.index("*** tcp/8080") + 1]
    assert tcp.split("->")[1].split() == ["fedora-2", "X"]
    n = len(rep.results)
    assert f"*** {n}/{n} probes as expected in 0.20 s" in lines
    assert "not as expected" not in out


def test_pod_down_fails_exactly_its_probes_in_words():
    rep = fake_report(down="fedora-2")
    assert not rep.ok
    bad = {(r.probe.source.name, r.probe.destination.name) for r in rep.failures}
    assert all("fedora-2" in pair for pair in bad)
    assert len(bad) == 2 * 2 + 2  # to/from both other pods, from both nodes
    out = render.text(rep)
    assert "fedora-1 -> fedora-2 icmp: expected reachable, no reply in 1 s" in out
    assert "X!" in out
    assert "(X: not reached: no reply, refused or unreachable; !: not as expected, see below)" in out
    assert render.summary_line(rep) == f"{rep.as_expected}/{len(rep.results)} probes as expected"


def test_unexpected_reach_and_nat_are_failures():
    rep = fake_report(reach_forbidden=True)
    assert [r.probe.label for r in rep.failures] == ["fedora-1 -> fedora-3 tcp/8080"]
    assert "fedora-3!" in render.text(rep)
    rep = fake_report(nat=True)
    assert rep.failures and all(r.problems[0].startswith("NAT:") for r in rep.failures)
    assert "no NAT: " in render.text(rep)


def test_self_check_failure_is_reported():
    rep = fake_report()
    rep.self_checks[0] = SelfCheck("fedora-1", "10.244.0.2", "10.244.0.9")
    assert not rep.ok
    assert "fedora-1: sees itself as 10.244.0.9 on eth0, but others reach it at 10.244.0.2" in render.text(rep)


def test_json_has_one_record_per_probe():
    rep = fake_report(down="fedora-2")
    data = render.to_json(rep)
    assert data["ok"] is False and len(data["probes"]) == len(rep.results)
    rec = next(r for r in data["probes"] if r["source"] == "fedora-1" and r["destination"] == "fedora-3"
               and r["protocol"] == "icmp")
    assert rec["expected"] == "reachable" and rec["observed"] == "reachable" and rec["rtt_ms"] == 0.3
    for key in ("source", "destination", "protocol", "port", "expected", "observed", "seen_client_address",
                "rtt_ms"):
        assert key in rec
    assert data["summary"]["as_expected"] == rep.as_expected


def test_junit_lists_failures():
    rep = fake_report(down="fedora-2")
    root = ET.fromstring(render.junit(rep))
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == len(rep.results) + len(rep.self_checks)
    failures = suite.findall("testcase/failure")
    assert len(failures) == len(rep.failures) == int(suite.get("failures"))
    assert any(f.get("message") == "expected reachable, no reply in 1 s" for f in failures)


def test_wide_matrix_lists_only_misses():
    pods = [{"name": f"p{i}", "node": "n1"} for i in range(20)]
    lab = resolve(Topology.model_validate({"name": "w", "nodes": [{"name": "n1"}], "pods": pods}))
    results = []
    for p in build_matrix(lab, protos=["icmp"]):
        obs = Observation(outcome="timeout" if p.destination.name == "p7" else "reply")
        results.append(Result(p, obs, 1.0, judge(p, obs, 1.0, str(p.source.ip))))
    rep = Report("w", 1.0, results, [], {}, 0.0)
    lines = render.matrix_text(rep.results)
    assert "p0  -> 18/19 reached  X:p7!" in lines
    assert "p7  -> 19/19 reached" in lines


# --- Services in the report --------------------------------------------------------------------


def service_report(broken: bool = False) -> Report:
    """A healthy (or, ``broken``, one DNAT rule short) run of test_probe_services' lab, as the agent would see it."""
    from test_probe_services import SVC, dist_obs

    from netlab.probe import services as svcs

    lab = resolve(Topology.model_validate(SVC))
    plan = svcs.build(lab, ["tcp"])
    pods = {p.name: p for p in lab.pods}
    results = []
    for p in plan.probes:
        if not p.expected:
            o = Observation(outcome="refused", detail="connection refused")
        elif p.question is not None:  # the cluster DNS, asked its question
            o = Observation(outcome="reply", local=f"{p.source.addr}:61000", dns={"rcode": "NOERROR",
                                                                                "a": [p.question.address]})
        elif not p.svc.echo:
            o = Observation(outcome="reply", local=f"{p.source.addr}:61000", detail="connected")
        else:
            ep, ip, port = p.svc.endpoints[-1]
            rule = p.rule_for(ep)
            if broken and p.svc.kind == "ClusterIP" and p.svc.service == "web" and p.source.name == "client":
                o = Observation(outcome="timeout")
            else:
                o = Observation(outcome="reply", rtt=0.001, local=f"{p.source.addr}:61000",
                                seen_client=f"{rule.allowed[0]}:61000", server=f"{ip}:{port}", answered_by=ep)
        results.append(Result(p, o, 1.0, judge(p, o, 1.0, p.source.addr)))
    dists = []
    for d in plan.distributions:
        counts = {"web-1": 96} if broken and d.target.service == "web" else {"web-1": 100, "web-2": 100}
        if d.target.affinity:
            counts = {"web-2": 200}
        dists.append(judge_distribution(d, dist_obs(counts, failed=104 if "web-2" not in counts else 0),
                                             1.0))
    checks = [SelfCheck(p.name, str(p.ip), str(p.ip)) for p in pods.values()]
    return Report("svc", 1.0, results, checks, {}, 0.3, dists, plan.notes)


def test_service_sections_follow_the_protocol_blocks():
    rep = service_report()
    assert rep.ok
    lines = render.text(rep).splitlines()
    i = lines.index("*** svc/web tcp/80 (ClusterIP 10.96.0.20)")
    assert lines[i + 1:i + 5] == ["web-1    -> web", "web-2    -> web", "client   -> web", "kube-dns -> web"]
    j = lines.index("*** svc/web-np tcp/80 (NodePort 30080 on every node)")
    # a header says whose nodePort a cell is: the node the row's client dialed (qa54 #7)
    assert lines[j + 1:j + 5] == ["(each cell: the node whose nodePort 30080 the row's client dialed)",
                                  "node-1  -> node-1 node-2", "node-2  -> node-1 node-2", "example -> node-1 node-2"]
    heads = [i for i, line in enumerate(lines) if line.startswith("(each cell: the node whose nodePort")]
    assert [lines[i - 1] for i in heads] == [line for line in lines if " on every node" in line and "***" in line]
    assert "*** svc/web-lb tcp/80 (LoadBalancer 203.0.113.100:80)" in lines
    assert "*** svc/empty tcp/80 (ClusterIP 10.96.0.25; no endpoints: must be refused)" in lines
    k = lines.index("*** distribution (connections to each ClusterIP, counted per endpoint)")
    assert lines[k + 1] == ("svc/web tcp/80 (10.96.0.20): 200 connections from client: web-1 100, web-2 100 "
                            "(each at least 50) ok")
    assert any(line.startswith("svc/sticky tcp/8080") and "ClientIP affinity" in line for line in lines)
    n = len(rep.results)
    assert f"*** {n}/{n} probes as expected, 4/4 Service distributions as expected in 0.30 s" in lines
    assert any(line.startswith("Service and egress NAT: ") for line in lines)


def test_broken_service_fails_in_words_json_and_junit():
    rep = service_report(broken=True)
    assert not rep.ok and len(rep.dist_failures) == 1
    out = render.text(rep)
    assert "client -> svc/web 10.96.0.20:80/tcp (ClusterIP): expected reachable, no reply in 1 s" in out
    assert ("svc/web tcp/80 distribution from client: 104 of 200 connections failed (104 timeout); "
            "web-2 served 0 of 200 connections, under half its fair share (50 of 100)") in out
    assert "client   -> X!" in out
    data = render.to_json(rep)
    assert data["ok"] is False and data["summary"]["distributions"] == 4
    assert data["summary"]["distributions_as_expected"] == 3
    web = next(d for d in data["distributions"] if d["service"] == "web")
    assert web["endpoints"] == {"web-1": 96, "web-2": 0} and not web["as_expected"]
    assert any(r["service"] and r["service"]["via"] == "NodePort" for r in data["probes"])
    root = ET.fromstring(render.junit(rep))
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == len(rep.results) + len(rep.self_checks) + 4
    assert int(suite.get("failures")) == 2
    names = [c.get("classname") for c in suite.findall("testcase")]
    assert "svc.svc.web.ClusterIP.tcp.80" in names and "svc.distribution" in names


def test_a_full_neighbour_table_during_a_failed_run_is_said_in_the_text():
    """table_fulls and forced_gc_runs were in the JSON only (qa62s): a run whose probes failed while the machine's
    neighbour table overflowed says so in one line of its text (the failures may be the machine's, not the lab's);
    a run that failed with the table quiet, or passed with it full, says nothing of it."""
    full = {"table_fulls": 3, "forced_gc_runs": 12}
    failed = fake_report(down="fedora-2")
    failed.stats.update(full)
    said = [ln for ln in render.text(failed).splitlines() if "neighbour" in ln]
    assert said == ["note: the machine's neighbour (ARP) table was full 3 times during the run (12 forced garbage "
                    "collections): the failures may come from that table, shared by every namespace on this machine "
                    "(other labs, the host), not from the lab; see /proc/net/stat/arp_cache and "
                    "net.ipv4.neigh.default.gc_thresh3"]
    gc_only = fake_report(down="fedora-2")
    gc_only.stats.update(table_fulls=0, forced_gc_runs=5)
    assert [ln for ln in render.text(gc_only).splitlines() if "neighbour" in ln] == [
        "note: the machine's neighbour (ARP) table needed 5 forced garbage collections during the run: the failures "
        "may come from that table, shared by every namespace on this machine (other labs, the host), not from the lab; "
        "see /proc/net/stat/arp_cache and net.ipv4.neigh.default.gc_thresh3"]
    quiet = fake_report(down="fedora-2")
    assert "neighbour" not in render.text(quiet)
    passed = fake_report()
    passed.stats.update(full)
    assert "neighbour" not in render.text(passed)
