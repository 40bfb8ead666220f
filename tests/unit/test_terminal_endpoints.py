"""A terminal pod (every container exited for good: phase Succeeded or Failed, `get pods` Completed or Error) is no
Service endpoint, as the EndpointSlice controller's ShouldPodBeInEndpoints leaves it out: not in kube-proxy's plan,
not in the cluster DNS's A, PTR or SRV records, not in `get svc` (no root)."""

from __future__ import annotations

import pytest

from netlab.api import views
from netlab.model import dnsrecords
from netlab.model.endpoints import service_notes
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.plan import nftables, services
from netlab.realize.state import LabState
from netlab.workload import dns_records, exits, terminal
from netlab.workload.containers import container_argv

EXIT = [{"name": "main", "command": ["sh", "-c", "exit 0"]}]
TOPO = {"name": "tm", "nodes": [{"name": "n1"}],
        "pods": [{"name": "cl", "node": "n1"},
                 {"name": "up1", "node": "n1", "labels": {"app": "a"}},
                 {"name": "done1", "node": "n1", "labels": {"app": "a"}, "restartPolicy": "Never", "containers": EXIT},
                 {"name": "fail1", "node": "n1", "labels": {"app": "a"}, "restartPolicy": "Never", "containers": EXIT},
                 {"name": "job", "node": "n1", "labels": {"app": "j"}, "restartPolicy": "OnFailure",
                  "containers": EXIT}],
        "services": [{"name": "a", "selector": {"app": "a"}, "clusterIP": "None",
                      "ports": [{"name": "http", "port": 8080}]},
                     {"name": "b", "selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}]},
                     {"name": "h", "selector": {"app": "a"}, "clusterIP": "None"},
                     {"name": "j", "selector": {"app": "j"}, "ports": [{"port": 80}]}]}
DONE = frozenset({"done1", "fail1"})


def lab_of(terminal_pods: frozenset[str] = frozenset()):
    return resolve(Topology.model_validate(TOPO)).with_terminal(terminal_pods)


def names(eps) -> list[str]:
    return [p.name for p, _ in eps]


def test_terminal_pods_are_no_endpoint_of_any_service_port():
    before, lab = lab_of(), lab_of(DONE)
    a, b, h = (next(s for s in lab.services if s.name == n) for n in "abh")
    assert names(before.endpoints(b, b.ports[0])) == ["up1", "done1", "fail1"]
    assert names(lab.endpoints(b, b.ports[0])) == ["up1"]
    assert names(lab.endpoints(a, a.ports[0])) == ["up1"]
    assert [p.name for p in lab.serving(h)] == ["up1"]  # headless without ports: every serving pod, of no port
    assert services.endpoint_index(lab)[("default", "b", 80, "TCP")] == lab.endpoints(b, b.ports[0])
    assert lab.with_terminal(DONE) is lab and before.with_terminal(frozenset({"nosuch"})) is before


def kube_proxy_text(mode: str, terminal_pods: frozenset[str]) -> str:
    lab = resolve(Topology.model_validate(dict(TOPO, cluster={"kubeProxyMode": mode}))).with_terminal(terminal_pods)
    if mode == "iptables":
        return "\n".join(rule for r in services.resources(lab) if r.kind == "nat" for rule in r.rules)
    return nftables.replace_payload(nftables.kube_proxy_table(lab, lab.nodes[0], services.service_ports(lab)))


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_kube_proxy_sends_nothing_to_a_terminal_pod(mode):
    ips = {str(p.ip) for p in lab_of().pods if p.name in DONE}
    before, after = kube_proxy_text(mode, frozenset()), kube_proxy_text(mode, DONE)
    assert all(f"{ip}:8080" in before for ip in ips)  # each was a DNAT target
    assert not [ip for ip in ips if ip in after], after
    up1 = str(lab_of().pod("up1").ip)
    assert f"--to-destination {up1}:8080" in after or f"dnat to {up1}:8080" in after


def test_cluster_dns_answers_no_terminal_pod():
    lab = lab_of(DONE)
    ips = [str(p.ip) for p in lab.pods if p.name in DONE]
    up1 = str(lab.pod("up1").ip)
    hosts = dnsrecords.hosts_file(dnsrecords.cluster_records(lab.topo, lab.addressing, lab.terminal))
    assert not [line for line in hosts.splitlines() if line.split(" ")[0] in ips], hosts
    assert f"{up1} a.default.svc.cluster.local" in hosts and f"{up1} h.default.svc.cluster.local" in hosts
    # the SRV records are on the add-on's dnsmasq command line: made again without them
    argv = " ".join(next(p for p in lab.pods if p.name == "kube-dns").containers[0].command or [])
    assert "_http._tcp.a.default.svc.cluster.local" in argv
    assert not [ip for ip in ips if ip.replace(".", "-") in argv], argv
    old = " ".join(next(p for p in lab_of().pods if p.name == "kube-dns").containers[0].command or [])
    assert all(ip.replace(".", "-") in old for ip in ips)


def test_get_svc_and_notes_agree():
    lab = lab_of(DONE | {"job"})
    by_name = {s.name: s for s in views.services(lab)}
    assert [e.pod for p in by_name["b"].ports for e in p.endpoints] == ["up1"]
    assert [e.pod for p in by_name["a"].ports for e in p.endpoints] == ["up1"]
    assert by_name["h"].addresses == (str(lab.pod("up1").ip),)
    assert [e.pod for p in by_name["j"].ports for e in p.endpoints] == []
    notes = service_notes(lab)
    assert "service default/j port 80/TCP: its pods (job) have terminated (Completed or Error), and a terminated " \
           "pod is no endpoint: no endpoints, so kube-proxy rejects its connections" in notes, notes
    assert not [n for n in notes if "done1" in n or "fail1" in n], notes


GONE = {"pid": 4194303, "start": 1}  # a process that is not there: the container exited


def state_of(lab, records: dict[str, dict]) -> LabState:
    pods = {}
    for name, crec in records.items():
        pod = lab.pod(name)
        pods[name] = {"containers": {c.name: {**GONE, "argv": container_argv(pod, c), **crec} for c in pod.containers}}
    return LabState(lab=lab.name, extra={"workload": {"pods": pods}})


def test_terminal_pods_are_those_whose_containers_exited_for_good(monkeypatch):
    lab = lab_of()
    asked: list[list[str]] = []
    codes = {"job/main": 0}
    monkeypatch.setattr(exits, "exit_codes", lambda name, recs: (asked.append(sorted(recs)),
                                                                 {k: codes[k] for k in recs if k in codes})[1])
    state = state_of(lab, {"done1": {}, "fail1": {}, "job": {}, "up1": {}})
    assert terminal.terminal_pods(lab, state) == DONE | {"job"}  # up1: restartPolicy Always, never terminal
    assert asked == [["job/main"]]  # Never needs no exit code
    codes["job/main"] = 3  # OnFailure restarts a failed container: not terminal
    assert terminal.terminal_pods(lab, state) == DONE
    del codes["job/main"]  # nobody saw how it exited: OnFailure restarts it
    assert terminal.terminal_pods(lab, state) == DONE
    changed = state_of(lab, {"done1": {"argv": ["true"]}, "fail1": {"error": "no such file"}})
    assert terminal.terminal_pods(lab, changed) == frozenset()  # up starts a changed command, a failed start
    assert terminal.terminal_pods(lab, state_of(lab, {"done1": {}})) == {"done1"}
    assert terminal.terminal_pods(lab, None) == frozenset()


def test_status_line_names_a_terminal_pod_still_in_the_rules_or_the_dns(monkeypatch):
    lab = lab_of(DONE)
    done1, fail1 = str(lab.pod("done1").ip), str(lab.pod("fail1").ip)
    monkeypatch.setattr(dns_records, "read", lambda name: f"{fail1} a.default.svc.cluster.local\n")
    lines = terminal.still_endpoints(lab, [f'{{"detail": "extra rule: -A KUBE-SVC-X --comment \\"default/b -> '
                                           f'{done1}:8080\\""}}', f"route {fail1}0/32"])
    assert lines == [
        "services: pod done1 has terminated (its containers exited for good: Completed or Error) and is still a "
        "Service endpoint in kube-proxy's rules; up takes it out",
        "services: pod fail1 has terminated (its containers exited for good: Completed or Error) and is still a "
        "Service endpoint in the cluster DNS; up takes it out"]
    monkeypatch.setattr(dns_records, "read", lambda name: None)
    assert terminal.still_endpoints(lab, []) == []


def test_what_probe_trace_and_get_load_for_served_leaves_the_plan_and_the_containers_out():
    """``served`` (probe, trace, get, reach: every command that reads the lab as up serves it) loads this module;
    what only a pod that can terminate, or status's comparison, needs is loaded there: the Flannel plan (for its CNI
    network's name), portmap's rules, the containers' records and the echo server's control (26 modules, ~10 ms of a
    probe's CPU beside its agent's)."""
    import subprocess
    import sys

    code = ("import sys\nimport netlab.workload.terminal\n"
            "print(sorted(m for m in ('netlab.plan.flannel', 'netlab.plan.portmap_rules', 'netlab.plan.iptables', "
            "'netlab.workload.exits', 'netlab.workload.dns_records', 'netlab.workload.containers', "
            "'netlab.workload.echocontrol', 'netlab.workload.tasks') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
