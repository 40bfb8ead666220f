"""A Service whose targetPort nothing listens on (root): kube-proxy sends its endpoints their share of the
connections all the same, and the pods refuse them (containerPort is informational in Kubernetes).

`probe` expects what the kernel does: a Service whose every endpoint runs only netlab's echo server, none
of it on targetPort, is refused, as one without endpoints is; one where some endpoints listen and others do
not is answered or refused as kube-proxy picks, so it is noted, not probed.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab, probe_failures

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: deaf, node: n1, labels: {{app: deaf, mixed: "yes"}}}}
  - name: hears
    node: n1
    labels: {{mixed: "yes"}}
    containers: [{{name: http, ports: [{{containerPort: 9090}}]}}]
  - {{name: client, node: n1}}
services:
  - {{name: deaf, selector: {{app: deaf}}, clusterIP: 10.96.0.30, ports: [{{port: 80, targetPort: 9090}}]}}
  - {{name: mixed, selector: {{mixed: "yes"}}, clusterIP: 10.96.0.31, ports: [{{port: 80, targetPort: 9090}}]}}
"""

# Connects from the client to ADDR:80, each from a new source port; prints one word per connection.
CONNECT = """
import socket, sys
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((sys.argv[1], 80))
        print("answered")
    except ConnectionRefusedError:
        print("refused")
    except OSError as exc:
        print(type(exc).__name__)
    s.close()
"""


def connects(netns: str, address: str, n: int) -> list[str]:
    proc = in_netns(netns, "python3", "-c", CONNECT, address, str(n), check=True)
    return proc.stdout.split()


def test_a_service_nothing_listens_behind_is_refused_and_probe_expects_it(labs):
    lab = labs.name("sd")
    labs.up(TOPOLOGY.format(lab=lab))
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(report)
    deaf = [p for p in report["probes"] if (p.get("service") or {}).get("name") == "deaf"]
    assert deaf and all(p["expected"] == "unreachable" and p["outcome"] == "refused" for p in deaf)
    assert not [p for p in report["probes"] if (p.get("service") or {}).get("name") == "mixed"]
    assert any(n.startswith("svc/mixed tcp/80: not probed: nothing listens on the targetPort of endpoint deaf")
               for n in report["not_probed"])
    # The kernel agrees: every connection to deaf is refused by its pod; mixed's are answered by hears and
    # refused by deaf, as kube-proxy's random pick goes (30 connections all one way: 2 in a billion).
    assert set(connects(f"{lab}-client", "10.96.0.30", 5)) == {"refused"}
    assert set(connects(f"{lab}-client", "10.96.0.31", 30)) == {"answered", "refused"}
