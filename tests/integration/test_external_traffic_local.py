"""externalTrafficPolicy: Local, in both kube-proxy modes, with real connections and the kernel's own view.

A NodePort Service whose one endpoint runs on n1: an internet host's connection to n1's nodePort reaches it
with the client's own address (no masquerade: the point of the policy), the same connection to n2's nodePort
is dropped there (n2 has no endpoint of its own: a timeout, not a refusal), a pod on n2 still reaches the
Service through n2's nodePort (kube-proxy's short-circuit of pod traffic to every endpoint), and the node's
rules are kube-proxy's: KUBE-SVL and the "has no local endpoints" DROP in iptables mode, the local- chain and
the ``: drop`` elements in nftables mode. ``netlab status`` sees no drift, ``netlab probe`` passes and ``netlab trace`` names the drop.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip_json, ipv4_of, lab_up, netlab, probe_failures, unique_lab, write_topology

pytestmark = pytest.mark.root

NODE_PORT = 30081

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: other, node: n2}}
services:
  - name: web
    type: NodePort
    externalTrafficPolicy: Local
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080, nodePort: {np}}}]
"""


def fetch(netns: str, url: str, timeout: float = 3) -> subprocess.CompletedProcess:
    return in_netns(netns, "curl", "-s", "-m", str(timeout), url, timeout=timeout + 5)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_local_policy_keeps_the_clients_address_and_drops_where_no_endpoint_runs(tmp_path, mode):
    name = unique_lab("etp")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, np=NODE_PORT))
    with lab_up(path, name):
        n1, n2 = ipv4_of(f"{name}-n1", "eth0"), ipv4_of(f"{name}-n2", "eth0")
        client = f"{name}-client"
        # n1 has the endpoint: answered, and the echo server saw the internet host's own address.
        got = fetch(client, f"http://{n1}:{NODE_PORT}/")
        assert got.returncode == 0, (got.returncode, got.stderr)
        answer = json.loads(got.stdout.strip().splitlines()[-1])
        assert answer["pod"] == "web" and answer["client"].split(":")[0] == "203.0.113.50", answer
        # n2 has none: the packet is dropped (curl's timeout, 28), not refused (7).
        got = fetch(client, f"http://{n2}:{NODE_PORT}/", timeout=2)
        assert got.returncode == 28, (got.returncode, got.stdout, got.stderr)
        # A pod on n2 still reaches the Service through n2's nodePort: pods' traffic uses every endpoint.
        got = fetch(f"{name}-other", f"http://{n2}:{NODE_PORT}/")
        assert got.returncode == 0 and json.loads(got.stdout.strip().splitlines()[-1])["pod"] == "web", got

        # The kernel's view.
        if mode == "iptables":
            nat1 = in_netns(f"{name}-n1", "iptables-save", "-t", "nat", check=True).stdout
            nat2 = in_netns(f"{name}-n2", "iptables-save", "-t", "nat", check=True).stdout
            filt2 = in_netns(f"{name}-n2", "iptables-save", "-t", "filter", check=True).stdout
            svl = [line for line in nat1.splitlines() if line.startswith("-A KUBE-SVL-")]
            assert len(svl) == 1 and "default/web -> 10.244." in svl[0], nat1
            assert not any(line.startswith("-A KUBE-SVL-") for line in nat2.splitlines()), nat2
            assert any('pod traffic for default/web external destinations' in line for line in nat2.splitlines())
            drop = [line for line in filt2.splitlines() if '"default/web has no local endpoints"' in line]
            assert drop and drop[0].startswith("-A KUBE-EXTERNAL-SERVICES") and drop[0].endswith(
                f"--dport {NODE_PORT} -j DROP"), filt2
        else:
            def listing(node: str) -> list[dict]:
                out = in_netns(f"{name}-{node}", "nft", "-j", "list", "table", "ip", "kube-proxy", check=True)
                return json.loads(out.stdout)["nftables"]
            t1, t2 = listing("n1"), listing("n2")
            chains1 = {o["chain"]["name"] for o in t1 if "chain" in o}
            chains2 = {o["chain"]["name"] for o in t2 if "chain" in o}
            assert any(c.startswith("local-") and c.endswith("default/web/tcp/") for c in chains1), chains1
            assert not any(c.startswith("local-") for c in chains2), chains2
            elems = next(o["map"] for o in t2 if "map" in o and o["map"]["name"] == "no-endpoint-nodeports")
            assert any(e[1] == {"drop": None} and str(NODE_PORT) in json.dumps(e[0]) for e in elems.get("elem", [])), elems

        status = netlab("status", "--lab", name, check=False)  # each node's rules compare equal to its own plan
        assert status.returncode == 0, status.stdout[-3000:]
        proc = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        assert proc.returncode == 0, probe_failures(json.loads(proc.stdout))
        trace = netlab("trace", "--lab", name, "client", n2, "--port", str(NODE_PORT), check=False)
        assert "has no local endpoints" in trace.stdout, trace.stdout[-3000:]

        # n1's own endpoints' chain flushed: the internet host's packet is picked there (not in the Service's
        # chain, whole), so the trace blames that chain's rule, and the printed fix puts it back.
        local = next(c for c in (chains1 if mode == "nftables" else [line.split()[1] for line in svl])
                     if c.startswith(("local-", "KUBE-SVL-")))
        flush = (["nft", "flush", "chain", "ip", "kube-proxy", local] if mode == "nftables"
                 else ["iptables", "-t", "nat", "-F", local])
        in_netns(f"{name}-n1", *flush, check=True)
        assert fetch(client, f"http://{n1}:{NODE_PORT}/", timeout=2).returncode != 0
        proc = netlab("trace", "--lab", name, "client", n1, "--port", str(NODE_PORT), "-o", "json", check=False)
        lost = json.loads(proc.stdout)["lost"]
        assert proc.returncode == 1 and lost["netns"] == f"{name}-n1", lost
        assert "choice of one of the node's own endpoints" in lost["reason"], lost["reason"]
        row = next(h for h in json.loads(proc.stdout)["hops"] if h["index"] == lost["hop"])
        assert local in row["facts"]["missing_rule"], row["facts"]
        subprocess.run(["bash", "-c", lost["fix"]], check=True)
        assert netlab("status", "--lab", name, check=False).returncode == 0
        assert fetch(client, f"http://{n1}:{NODE_PORT}/").returncode == 0


ITP = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: near, node: n1}}
  - {{name: far, node: n2}}
services:
  - name: web
    clusterIP: 10.96.0.50
    internalTrafficPolicy: Local
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_internal_local_policy_answers_pods_of_the_endpoints_node_only(tmp_path, mode):
    """internalTrafficPolicy: Local: a pod on the endpoint's node reaches the ClusterIP (its own address seen), a
    pod on the other node gets nothing (its node drops it: "has no local endpoints"), in both modes."""
    name = unique_lab("etq")
    path = write_topology(tmp_path, ITP.format(name=name, mode=mode))
    with lab_up(path, name):
        got = fetch(f"{name}-near", "http://10.96.0.50/")
        assert got.returncode == 0, (got.returncode, got.stderr)
        answer = json.loads(got.stdout.strip().splitlines()[-1])
        near_ip = ip_json("addr", "show", "dev", "eth0", netns=f"{name}-near")[0]["addr_info"][0]["local"]
        assert answer["pod"] == "web" and answer["client"].split(":")[0] == near_ip, answer
        got = fetch(f"{name}-far", "http://10.96.0.50/", timeout=2)
        assert got.returncode == 28, (got.returncode, got.stdout, got.stderr)
        if mode == "iptables":
            filt2 = in_netns(f"{name}-n2", "iptables-save", "-t", "filter", check=True).stdout
            assert any(line.startswith("-A KUBE-SERVICES -d 10.96.0.50/32") and "has no local endpoints" in line
                       and line.endswith("-j DROP") for line in filt2.splitlines()), filt2
        else:
            out = in_netns(f"{name}-n2", "nft", "list", "map", "ip", "kube-proxy", "no-endpoint-services",
                           check=True).stdout
            assert "10.96.0.50 . tcp . 80" in out and ": drop" in out, out
        status = netlab("status", "--lab", name, check=False)
        assert status.returncode == 0, status.stdout[-3000:]
        proc = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        assert proc.returncode == 0, probe_failures(json.loads(proc.stdout))
        trace = netlab("trace", "--lab", name, "far", "10.96.0.50", "--port", "80", check=False)
        assert "internalTrafficPolicy Local and no endpoint on n2" in trace.stdout, trace.stdout[-3000:]
