"""`netlab probe` over UDP: the echo server answers every datagram on each TCP port's UDP twin, and the probe
sends there (it sent nothing: `--proto udp` said "0/0 probes as expected", exit 0)."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import in_netns, netlab

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    # a: no containers (the echo server's 8080, TCP and UDP); web: an echo container declaring 9000/TCP (it
    # listens on 9000/UDP too); own: a command of the user's on 7000/TCP (its UDP is nobody's: not probed).
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1}}
  - name: web
    node: n2
    containers: [{{name: http, ports: [{{containerPort: 9000, protocol: TCP}}]}}]
  - name: own
    node: n1
    containers: [{{name: srv, command: [sleep, infinity], ports: [{{containerPort: 7000}}]}}]
expect:
  - {{from: a, to: web, proto: udp, port: 9999, reach: true}}
"""


def probe(lab: str, *args: str) -> tuple[int, dict]:
    proc = netlab("probe", "--lab", lab, "-o", "json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.skipif(not shutil.which("iptables"), reason="needs iptables")
def test_udp_is_probed_where_the_echo_server_listens_and_its_answer_checked(labs):
    lab = labs.name("pu")
    labs.up(topology(lab))
    web = f"{lab}-web"
    # What listens in web, as `get pods` says it: the declared 9000/TCP and its UDP twin (it listed 9000/TCP only).
    bound = in_netns(web, "ss", "-Htuln", check=True).stdout
    assert "0.0.0.0:9000 " in bound and bound.count(":9000 ") == 2, bound
    pods = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)
    ports = {p["name"]: [f"{port['container_port']}/{port['protocol']}" for c in p["containers"] for port in c["ports"]]
             for p in pods["items"]}
    assert ports == {"a": ["8080/TCP", "8080/UDP"], "web": ["9000/TCP", "9000/UDP"], "own": ["7000/TCP"]}

    text = netlab("probe", "--lab", lab, "--proto", "udp", check=False)
    assert "*** udp/8080" in text.stdout and "*** udp/9000" in text.stdout, text.stdout
    code, data = probe(lab, "--proto", "udp")
    got = {(r["source"], r["destination"], r["port"]): r for r in data["probes"]}
    assert {r["protocol"] for r in data["probes"]} == {"udp"}
    # every pod and node to a on 8080 and to web on 9000, and the expect: entry; nothing to own (no echo server)
    assert {(s, d, port) for s, d, port in got if port != 9999} == \
        {(s, "a", 8080) for s in ("web", "own", "n1", "n2")} | {(s, "web", 9000) for s in ("a", "own", "n1", "n2")}
    answered = [r for r in data["probes"] if r["port"] != 9999]
    for r in answered:  # the echo server's answer: who answered, at which address, and the client it saw
        assert r["as_expected"] and r["outcome"] == "reply", r
        assert r["answered_by"] == r["destination"] and r["server_address"] == f"{r['destination_ip']}:{r['port']}"
        if r["source"] in ("a", "own", "web"):
            assert r["seen_client_address"] == r["local_address"], r  # rule 1: no NAT between pods
    # A UDP port where nothing listens is said to be so, from the destination's own socket table.
    closed = got[("a", "web", 9999)]
    assert code == 1 and not closed["as_expected"] and closed["outcome"] == "refused", closed
    assert closed["detail"].endswith(f"nothing is bound to udp port 9999 in {web} (ip netns exec {web} ss -lun)")
    assert data["summary"]["probes"] == len(answered) + 1 and data["summary"]["as_expected"] == len(answered)

    # Blocked: web's own firewall drops the datagrams to 9000. The probes get no reply, and say so.
    in_netns(web, "iptables", "-I", "INPUT", "-p", "udp", "--dport", "9000", "-j", "DROP", check=True)
    code, data = probe(lab, "--proto", "udp")
    dropped = [r for r in data["probes"] if r["port"] == 9000]
    assert code == 1 and len(dropped) == 4
    assert all(r["outcome"] == "timeout" and not r["as_expected"] and r["problems"] == [
        "expected reachable, no reply in 1 s"] for r in dropped), dropped
    assert all(r["as_expected"] for r in data["probes"] if r["port"] == 8080)


def test_a_run_that_would_probe_nothing_is_a_usage_error(labs):
    """Only commands of the user's: no UDP port the prober may judge. It said "0/0 probes as expected", exit 0."""
    lab = labs.name("pu")
    labs.up(f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: p1, node: n1, containers: [{{name: srv, command: [sleep, infinity], ports: [{{containerPort: 7000}}]}}]}}
  - {{name: p2, node: n1, containers: [{{name: srv, command: [sleep, infinity], ports: [{{containerPort: 7000}}]}}]}}
""")
    proc = netlab("probe", "--lab", lab, "--proto", "udp", check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.strip().splitlines() == [
        f"netlab: nothing to probe in lab {lab} with --proto udp: no pod serves a UDP port netlab's echo server "
        "listens on (UDP is probed only there and at the cluster DNS: another server's silence proves nothing)"]
    said = proc.stderr.strip()[len("netlab: "):]
    proc = netlab("probe", "--lab", lab, "--proto", "udp", "-o", "json", check=False)
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"] == said, proc  # the error document
    assert netlab("probe", "--lab", lab, "--proto", "icmp").returncode == 0  # the lab itself is fine
