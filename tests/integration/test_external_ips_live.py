"""spec.externalIPs in both kube-proxy modes, with real connections and the kernel's own view (root).

A ClusterIP Service with externalIPs [198.51.100.7], its one endpoint on n2: the lab's internet gateway routes
the address to n1, whose kube-proxy sends it through the external chain (masqueraded: the endpoint sees a
cluster address, not the internet host's) to the endpoint on n2; n2 itself reaches it too (its own OUTPUT
rules). The rule is kube-proxy's (``-d 198.51.100.7/32`` in KUBE-SERVICES, counted by ``iptables-save -c``;
the ``service-ips`` element in nftables mode); ``status`` is clean after up, reports the rule or element
deleted by hand, and ``up`` puts it back. One lab per mode, always taken down.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

EXTERNAL_IP = "198.51.100.7"

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n2, labels: {{app: web}}}}
services:
  - name: web
    selector: {{app: web}}
    externalIPs: [{ip}]
    ports: [{{port: 80, targetPort: 8080}}]
"""


def fetch(netns: str, url: str, timeout: float = 3) -> subprocess.CompletedProcess:
    return in_netns(netns, "curl", "-s", "-m", str(timeout), url, timeout=timeout + 5)


def answer(netns: str) -> dict:
    got = fetch(netns, f"http://{EXTERNAL_IP}:80/")
    assert got.returncode == 0, (netns, got.returncode, got.stderr)
    return json.loads(got.stdout.strip().splitlines()[-1])


def external_ip_rule(ns: str) -> str:
    """n1's KUBE-SERVICES rule for the external IP, with its counters."""
    saved = in_netns(ns, "iptables-save", "-c", "-t", "nat", check=True).stdout
    return next(line for line in saved.splitlines() if f"-d {EXTERNAL_IP}/32" in line and "KUBE-SERVICES" in line)


def service_ips(ns: str) -> list:
    out = json.loads(in_netns(ns, "nft", "-j", "list", "map", "ip", "kube-proxy", "service-ips", check=True).stdout)
    return next(o["map"] for o in out["nftables"] if "map" in o).get("elem", [])


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_external_ip_reaches_the_endpoint_from_the_internet_and_another_node(tmp_path, mode):
    name = unique_lab("ex")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, ip=EXTERNAL_IP))
    with lab_up(path, name):
        n1 = f"{name}-n1"
        assert netlab("status", "--lab", name, check=False).returncode == 0
        if mode == "iptables":
            before = int(re.match(r"\[(\d+):", external_ip_rule(n1)).group(1))
        # The internet host: routed to n1 by the gateway, DNATed there, masqueraded on its way to n2.
        got = answer(f"{name}-client")
        assert got["pod"] == "web" and not got["client"].startswith("203.0.113.50:"), got
        tr = netlab("trace", "--lab", name, "client", "svc/web", "--proto", "tcp", "--port", "80", check=False)
        assert tr.returncode == 0 and f"→ svc/web ({EXTERNAL_IP}:80)" in tr.stdout, tr.stdout
        assert re.search(rf"{name}-n1 +eth0 +DNAT {EXTERNAL_IP}:80 → 10\.244\.1\.\d+:8080", tr.stdout), tr.stdout
        # Another node: n2's own kube-proxy rules take it (OUTPUT).
        assert answer(f"{name}-n2")["pod"] == "web"
        if mode == "iptables":
            rule = external_ip_rule(n1)
            assert int(re.match(r"\[(\d+):", rule).group(1)) > before, rule
            assert (f'-A KUBE-SERVICES -d {EXTERNAL_IP}/32 -p tcp -m comment --comment "default/web external IP" '
                    "-m tcp --dport 80 -j KUBE-EXT-") in rule, rule
            spec = rule.split(" ", 1)[1].replace("-A KUBE-SERVICES ", "", 1)
            subprocess.run(["ip", "netns", "exec", n1, "sh", "-c", f"iptables -t nat -D KUBE-SERVICES {spec}"],
                           check=True)
        else:
            elems = [e for e in service_ips(n1) if e[0]["concat"][0] == EXTERNAL_IP]
            assert len(elems) == 1 and elems[0][1]["goto"]["target"].startswith("external-"), elems
            in_netns(n1, "nft", "delete", "element", "ip", "kube-proxy", "service-ips",
                     f"{{ {EXTERNAL_IP} . tcp . 80 }}", check=True)
        # Deleted by hand: status names it; the internet host now gets nothing at n1, and trace says why there;
        # up puts it back.
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 1 and EXTERNAL_IP in st.stdout + st.stderr, (st.stdout, st.stderr)
        tr = netlab("trace", "--lab", name, "client", EXTERNAL_IP, "--proto", "tcp", "--port", "80", check=False)
        lost = next(line for line in tr.stdout.splitlines() if line.startswith("result:"))
        assert tr.returncode == 1 and f"{name}-n1" in lost and "did not DNAT" in lost, tr.stdout
        assert fetch(f"{name}-client", f"http://{EXTERNAL_IP}:80/", timeout=2).returncode != 0
        netlab("up", "-t", path)
        assert netlab("status", "--lab", name, check=False).returncode == 0
        assert answer(f"{name}-client")["pod"] == "web"
