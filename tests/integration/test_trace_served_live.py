"""trace and probe on a real lab (root) work from the lab as `up` serves it, and trace says a stopped server:

* a pod whose containers exited for good (restartPolicy Never: Completed) is no Service endpoint for `up`, status
  and get; `trace cl svc/HEADLESS` suggested tracing it, and probe expected it among svc/b's endpoints (so left the
  spread unchecked: "endpoint done1 runs a command of the topology there");
* `trace` to the cluster DNS with its dnsmasq stopped (`netlab break dns-pod-stopped`, or SIGSTOP) said no socket
  is bound to port 53, not that the container is down nor that `up` restarts it (QA qd, notes);
* `Lab.status()` said that stopped container's way back as a command (`sudo netlab up ...`), not the Python call
  every other way out of a Lab method names."""

from __future__ import annotations

import json
import os
import signal

import pytest

from helpers import netlab, traced, wait_for
from netlab import Lab
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: cl, node: n1}}
  - {{name: up1, node: n1, labels: {{app: a}}}}
  - {{name: up2, node: n1, labels: {{app: a}}}}
  - {{name: done1, node: n1, labels: {{app: a}}, restartPolicy: Never, containers: [{{name: main, command: ["true"]}}]}}
services:
  - {{name: h, selector: {{app: a}}, clusterIP: None, ports: [{{name: http, port: 8080}}]}}
  - {{name: b, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def pods(lab: str) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}


def test_trace_and_probe_leave_a_completed_pod_out_and_trace_says_a_stopped_dns(labs):
    lab = labs.name("tr2x")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    assert wait_for(lambda: pods(lab)["done1"]["status"] == "Completed", 20)
    netlab("up", "-t", path)  # takes done1 out of the Services (it ran when the first up made them)

    got = netlab("trace", "--lab", lab, "cl", "svc/h", check=False)
    assert got.returncode == 2 and "probe or trace its pods (up1, up2), or look up h.default.svc.cluster.local" \
        in got.stderr, got.stderr
    report = json.loads(netlab("probe", "--lab", lab, "-o", "json", timeout=120).stdout)
    # done1 is named once: its own flows are left out (nothing runs there), not as a Service's endpoint
    assert report["summary"]["not_as_expected"] == 0 and [n for n in report["not_probed"] if "done1" in n] == [
        "pod done1 has terminated (its containers exited for good: Completed or Error): no flow to or from it is "
        "probed"], report["not_probed"]
    spread = [d for d in report["distributions"] if d["service"] == "b"]
    assert spread and all(d["as_expected"] and sorted(d["endpoints"]) == ["up1", "up2"] for d in spread), spread

    drawn = netlab("graph", "--lab", lab).stdout  # Mermaid: the Services' arrows go to up1 and up2 only
    assert "| pod_up1" in drawn and "pod_done1[" in drawn and "| pod_done1" not in drawn, drawn
    # break and quiz pick among the endpoints up serves: done1 is none (it was, from the lab as written)
    got = netlab("break", "endpoint-pod-down", "--lab", lab, "--target", "done1", check=False)
    assert got.returncode == 2 and "done1" in got.stderr and not got.stdout, (got.stdout, got.stderr)

    # the cluster DNS's dnsmasq exited: the row where the query arrived says so, and the up that restarts it
    netlab("break", "dns-pod-stopped", "--lab", lab)
    code, doc = traced(lab, "cl", "svc/kube-system/kube-dns")
    arrival = [h for h in doc["hops"] if h["kind"] == "deliver"][-1]
    assert code == 1 and doc["refused"].endswith(f"; pod kube-dns's container dnsmasq does not run "
                                                 f"(hop {arrival['index']})"), doc["refused"]
    assert arrival["problem"].startswith("pod kube-dns's container dnsmasq exited with code 0 (pid "), arrival
    up = netlab_command(f"up -t {path}")
    assert arrival["problem"].endswith(f"as the lab's records say; `{up}` restarts it"), arrival
    assert arrival["fix"] == up
    text = netlab("trace", "--lab", lab, "cl", "svc/kube-system/kube-dns", check=False).stdout
    assert f"\n  fix: {up}\n" in text, text
    netlab("up", "-t", path)
    assert traced(lab, "cl", "svc/kube-system/kube-dns")[0] == 0

    # stopped by SIGSTOP: its socket is bound, nothing answers; the trace says why
    pid = next(c["pid"] for c in pods(lab)["kube-dns"]["containers"] if c["name"] == "dnsmasq")
    os.kill(pid, signal.SIGSTOP)
    try:
        code, doc = traced(lab, "cl", "svc/kube-system/kube-dns")
        status, against = Lab(lab).status(), Lab(lab).status(path)  # Python: its way back the Python call
        cli = netlab("status", "--lab", lab, check=False).stdout
    finally:
        os.kill(pid, signal.SIGCONT)
    stopped = f"containers: pod kube-dns container dnsmasq is stopped (pid {pid}, by SIGSTOP or SIGTSTP); "
    assert f"{stopped}`Lab({lab!r}).repair()` restarts it" in status.drift, status.drift
    assert f"{stopped}`Lab.up({path!r})` restarts it" in against.drift, against.drift
    assert f"  {stopped}`{up}` restarts it\n" in cli, cli
    assert code == 1 and doc["refused"] is None
    assert (f"nothing answered the DNS query for kube-dns.kube-system.svc.cluster.local: pod kube-dns's container "
            f"dnsmasq is stopped (pid {pid}, by SIGSTOP or SIGTSTP), as the lab's records say; `{up}` "
            "restarts it)") in doc["reply_lost"]["reason"], doc["reply_lost"]
