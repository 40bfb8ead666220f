"""`trace` to a pod whose server's container does not run (the cluster DNS with its dnsmasq stopped: `netlab break
dns-pod-stopped`) said no socket is bound on port 53, not that the container is down nor that `up` restarts it
(QA qd, notes). The row where the packet arrived says the container's state, as the lab's records say, and the
`up` that restarts it; the refusal points at that row, and its fix is under the result. No root: the lab's state
is a fake, the trace's rows are made here."""

from __future__ import annotations

import pytest

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize.state import LabState
from netlab.trace import run as trace_run
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.verdict import Verdict
from netlab.workload import exits, not_running
from netlab.workload.containers import container_argv

TOPO = {"name": "sd", "nodes": [{"name": "n1"}],
        "pods": [{"name": "cl", "node": "n1"}, {"name": "web", "node": "n1", "labels": {"app": "w"}},
                 {"name": "once", "node": "n1", "restartPolicy": "Never",
                  "containers": [{"name": "main", "command": ["sh", "-c", "exit 3"],
                                  "ports": [{"containerPort": 9000}]}]}],
        "services": [{"name": "w", "selector": {"app": "w"}, "ports": [{"port": 80, "targetPort": 8080}]}]}
GONE = {"pid": 4194303, "start": 1}  # a process that is not there: the container exited
REPAIR = "sudo netlab up -t /tmp/sd.yaml"


@pytest.fixture
def lab(monkeypatch):
    lab = resolve(Topology.model_validate(TOPO))
    records = {p.name: {"containers": {c.name: {**GONE, "argv": container_argv(p, c)} for c in p.containers}}
               for p in lab.pods if p.name in ("kube-dns", "once")}
    state = LabState(lab="sd", topology=TOPO, extra={"workload": {"pods": records}})
    monkeypatch.setattr("netlab.realize.state.load_state", lambda name: state)
    monkeypatch.setattr(exits, "exit_codes", lambda name, recs: {k: 0 if k.startswith("kube-dns/") else 3
                                                                 for k in recs})
    return lab


def test_the_dns_pods_stopped_container_is_said_with_the_up_that_restarts_it(lab):
    dns = lab.pod("kube-dns")
    down = not_running.line(lab, dns.netns, "udp", 53, REPAIR)
    assert down == not_running.Down(
        "pod kube-dns's container dnsmasq",
        f"pod kube-dns's container dnsmasq exited with code 0 (pid {GONE['pid']}), as the lab's records say; "
        f"`{REPAIR}` restarts it", True)
    assert not_running.line(lab, lab.pod("web").netns, "tcp", 8080, REPAIR).text == (
        f"pod web's container main was never started, as the lab's records say; `{REPAIR}` restarts it")
    assert not_running.line(lab, lab.nodes[0].netns, "udp", 53, REPAIR) is None  # a node: no pod's containers


def test_a_never_pods_exited_container_is_said_with_no_up_to_restart_it(lab):
    down = not_running.line(lab, lab.pod("once").netns, "tcp", 9000, REPAIR)
    assert down is not None and not down.restarts
    assert down.text == (f"pod once's container main exited with code 3 (pid {GONE['pid']}) (restartPolicy Never "
                         "leaves it so), as the lab's records say; no `up` restarts it")


def refused_trace(lab) -> TraceResult:
    dns = lab.pod("kube-dns")
    hops = [Hop(lab.pod("cl").netns, "pod cl", "eth0", "send", "sends"),
            Hop(dns.netns, "pod kube-dns", "eth0", "deliver", "delivered")]
    walk = Walk(hops, "delivered", end_netns=dns.netns)
    r = TraceResult(lab="sd", src={"name": "cl", "ip": str(lab.pod("cl").ip)}, dst={"name": "kube-dns", "ip": str(dns.ip)},
                    proto="udp", port=53, marker="m", forward=walk, verdict=Verdict(True, None, None), reply=None,
                    reply_verdict=None, reply_received=False)
    number(r)
    r.refused = "no socket is bound to udp port 53 in sd-kube-dns; its kernel answered with an ICMP port unreachable"
    return r


def test_the_row_where_it_arrived_says_it_and_the_result_points_there(lab):
    r = refused_trace(lab)
    down = not_running.line(lab, lab.pod("kube-dns").netns, "udp", 53, REPAIR)
    trace_run._says_down(r, lab.pod("kube-dns").netns, down, REPAIR)
    text = render_text(r)
    assert f"!! {down.text}" in text, text
    assert "ICMP port unreachable; pod kube-dns's container dnsmasq does not run (hop 2)\n  fix: " + REPAIR + "\n" \
        in text, text
    doc = r.to_json()
    assert (doc["hops"][1]["problem"], doc["hops"][1]["fix"]) == (down.text, REPAIR)  # -o json: the row says it
