"""A pod reaches itself through its own Service under default-deny both ways (root, one small lab).

A pod's connection to its own Service's ClusterIP, DNATed back to itself (hairpin), passes its node's FORWARD with
the pod's address on both sides, and was judged there by the pod's own policies: refused under default-deny, and
``probe`` expected it so, while the pod reaching its own address was "never judged". A pod is not judged reaching
itself (model/netpol.py): the model, probe's expectation, trace and the kernel's rules now all let it through.
Checked with real TCP, the probe's JSON and the kernel's counters.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from helpers import in_netns, netlab, probe_failures
from netlab.kernel.iptables import save as iptables_save

DENY_BOTH = {"name": "deny-all", "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
TOPO = {
    "name": "nphair",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "web", "node": "n1", "labels": {"app": "web"}},
             {"name": "buddy", "node": "n1", "labels": {"app": "buddy"}},
             {"name": "far", "node": "n2", "labels": {"app": "far"}}],
    "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}],
    "networkPolicies": [DENY_BOTH],
}

pytestmark = [pytest.mark.root, pytest.mark.netlab(TOPO, scope="module")]


def echo_line(lab: str, src: str, addr: str, port: int) -> tuple[dict | None, str]:
    """(the echo server's JSON line, or None; the client's stderr) for one real TCP connection from pod SRC."""
    code = ("import socket\n"
            f"s = socket.create_connection(({addr!r}, {port}), timeout=2)\n"
            "print(s.makefile().readline().strip())\n")
    proc = in_netns(f"{lab}-{src}", sys.executable, "-c", code)
    line = proc.stdout.strip()
    return (json.loads(line) if proc.returncode == 0 and line else None), proc.stderr


def counted(netns: str, pattern: str) -> int:
    """Packets the filter rules matching ``pattern`` counted (the kernel's counters)."""
    out = 0
    for line in iptables_save(netns, "filter", counters=True).splitlines():
        m = re.match(r"^\[(\d+):\d+\] (.*)$", line)
        if m and re.search(pattern, m.group(2)):
            out += int(m.group(1))
    return out


def test_a_pod_reaches_its_own_service_under_default_deny_both_ways(netlab_lab):
    lab = netlab_lab.name
    model = netlab_lab.model
    web = model.pod("web")
    cip = str(model.cluster_ip(model.find_service("web")))
    n1 = f"{lab}-n1"
    hairpin_rule = rf"-s {web.ip}/32 -d {web.ip}/32 .*reaches itself through a Service.* -j RETURN"
    rejects = r"^-A NETPOL-(IN|OUT)-\S+ .*-j REJECT"
    before_return, before_reject = counted(n1, hairpin_rule), counted(n1, rejects)

    # Real TCP: web reaches its own ClusterIP, answered by itself, which sees its node's cni0 address (kube-proxy
    # masquerades the hairpin); buddy beside it, under the same default-deny, does not get through.
    got, err = echo_line(lab, "web", cip, 80)
    assert got is not None and got["pod"] == "web", err
    assert got["client"].split(":")[0] == str(model.node("n1").gateway.ip), got
    assert counted(n1, hairpin_rule) > before_return  # the kernel let it through at the hairpin rule
    assert counted(n1, rejects) == before_reject  # and no policy REJECT saw it
    refused, _ = echo_line(lab, "buddy", cip, 80)
    assert refused is None and counted(n1, rejects) > before_reject

    # probe expects what the packets did, and says why; every probe is as expected.
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(data)
    to_web = {p["source"]: p for p in data["probes"] if (p.get("service") or {}).get("name") == "web"}
    own = to_web["web"]
    assert (own["expected"], own["observed"], own["answered_by"]) == ("reachable", "reachable", "web"), own
    assert own["reason"] == "service; policy: default/web reaches itself through a Service (hairpin): never judged"
    assert to_web["buddy"]["expected"] == to_web["buddy"]["observed"] == "unreachable", to_web["buddy"]
    assert "denied by policy default/deny-all" in to_web["buddy"]["reason"]

    # trace reads the same model function: delivered, and its policy verdict says so.
    t = netlab_lab.trace("web", "svc/web", proto="tcp", port=80)
    assert t.delivered and t.endpoint is not None and t.endpoint.pod == "web", t.lost
    assert [p["text"] for p in t.policy] == ["default/web reaches itself through a Service (hairpin): never judged"]
