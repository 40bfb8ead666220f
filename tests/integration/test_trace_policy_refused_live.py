"""A NetworkPolicy's REJECT, traced on a real lab (root): the node answers a denied TCP SYN with a reset in the
pod's name (any other packet with an ICMP port unreachable), so the client's connect() is refused at once, as the
kernel shows it (ECONNREFUSED in milliseconds). trace said "LOST ... dropped ... the kernel's REJECT rule", a loss,
while kube-proxy's REJECT of a Service without endpoints is REFUSED; probe says "refused" of the same flow.
"""

from __future__ import annotations

import json
import time

import pytest

from helpers import in_netns, ipv4_of, netlab

pytestmark = pytest.mark.root
PORT = 8080


def topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n2, labels: {{app: web}}, containers: [{{name: c, ports: [{{containerPort: {PORT}}}]}}]}}
  - {{name: cli, node: n1}}
networkPolicies:
  - name: deny-web
    spec: {{podSelector: {{matchLabels: {{app: web}}}}, policyTypes: [Ingress]}}
"""


def connect_errno(src: str, ip: str, proto: str) -> tuple[int, float]:
    """What the client's socket says, and how fast."""
    kind = "SOCK_STREAM" if proto == "tcp" else "SOCK_DGRAM"
    code = (f"import socket,sys,time; s=socket.socket(socket.AF_INET, socket.{kind}); s.settimeout(5); "
            f"s.connect(({ip!r}, {PORT})); s.send(b'x')\n"
            "try:\n s.recv(9); print(0)\nexcept OSError as e:\n print(e.errno or -1)")
    t = time.monotonic()
    out = in_netns(src, "python3", "-c", code)
    return int((out.stdout or out.stderr.split("Errno ")[-1].split("]")[0] or "-1").strip()), time.monotonic() - t


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_a_policy_reject_is_refused_as_the_client_sees_it(labs, proto):
    lab = labs.name("pr")
    labs.up(topology(lab))
    web = ipv4_of(f"{lab}-web", "eth0")
    err, took = connect_errno(f"{lab}-cli", web, proto)
    assert err == 111 and took < 2, (err, took)  # ECONNREFUSED, at once: the kernel's verdict
    proc = netlab("trace", "--lab", lab, "cli", "web", "--proto", proto, "--port", str(PORT), check=False, timeout=60)
    assert proc.returncode == 1, proc.stdout
    result = next(line for line in proc.stdout.splitlines() if line.startswith("result:"))
    answer = "a TCP reset in pod default/web's name" if proto == "tcp" else "an ICMP port unreachable"
    assert result.startswith("result: REFUSED at hop ") and "LOST" not in result, result
    assert "dropped in node n2, chain NETPOL-IN-" in result and "by policy default/deny-web" in result, result
    assert f"answered it at once with {answer}: the client is refused, it does not time out" in result, result
    d = json.loads(netlab("trace", "--lab", lab, "cli", "web", "--proto", proto, "--port", str(PORT), "-o", "json",
                          check=False, timeout=60).stdout)
    assert not d["delivered"] and d["refused"] and d["lost"]["netns"] == f"{lab}-n2", d["lost"]
    assert d["lost"]["reason"].endswith("the kernel's REJECT rule there counted it"), d["lost"]  # as before
    # probe's words for the same flow agree: refused
    probe = json.loads(netlab("probe", "--lab", lab, "-o", "json", check=False, timeout=120).stdout)
    [p] = [p for p in probe["probes"] if (p["source"], p["destination"], p["protocol"]) == ("cli", "web", proto)
           and p["port"] == PORT]
    assert (p["outcome"], p["as_expected"]) == ("refused", True), p
