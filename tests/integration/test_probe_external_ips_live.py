"""probe dials a Service's externalIPs, from every pod, node and internet host, in both kube-proxy modes (root).

Two Services with one endpoint each on n2: ``web`` (externalTrafficPolicy Cluster, 198.51.100.7) and ``webl``
(Local, 198.51.100.8). The lab's gateway routes both addresses to n1. Real connections, each answered by the
echo server, which reports the client address it saw: for ``web`` the address of the node that took the packet
towards the endpoint (KUBE-EXT masquerades); for ``webl`` a pod's own address, and the internet host dropped by
n1, which has no endpoint of its own. One lab per mode, always taken down.
"""

from __future__ import annotations

import json

import pytest

from helpers import lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: a, node: n1}}
  - {{name: web, node: n2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, externalIPs: [198.51.100.7], ports: [{{port: 80, targetPort: 8080}}]}}
  - name: webl
    selector: {{app: web}}
    externalIPs: [198.51.100.8]
    externalTrafficPolicy: Local
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_probe_dials_each_external_ip_and_the_endpoint_sees_the_address_kube_proxy_gives(tmp_path, mode):
    name = unique_lab("ez")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode))
    with lab_up(path, name):
        got = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        doc = json.loads(got.stdout)
        ext = {(p["service"]["name"], p["source"]): p for p in doc["probes"]
               if p["service"] and p["service"]["via"] == "ExternalIP"}
        assert set(ext) == {(s, src) for s in ("web", "webl") for src in ("a", "web", "kube-dns", "n1", "n2", "client")}
        assert got.returncode == 0 and all(p["as_expected"] for p in ext.values()), \
            [(k, p["problems"]) for k, p in ext.items() if not p["as_expected"]]
        a = next(p for p in doc["probes"] if p["source"] == "a" and not p["service"])["local_address"].split(":")[0]
        seen = {k: (p["seen_client_address"] or "").split(":")[0] for k, p in ext.items()}
        # Cluster: masqueraded by the node that DNATs it (n1's flannel.1 towards n2; n2's cni0 for its own)
        assert seen[("web", "a")] == seen[("web", "client")] == seen[("web", "n1")] == "10.244.0.0", seen
        assert seen[("web", "n2")] == seen[("web", "web")] == "10.244.1.1", seen
        # Local: the pod keeps its address; n1 has no endpoint, so the internet host is dropped there
        assert seen[("webl", "a")] == a and ext[("webl", "a")]["observed"] == "reachable", seen
        assert ext[("webl", "client")]["expected"] == "unreachable" == ext[("webl", "client")]["observed"]
        assert "no endpoint on n1" in ext[("webl", "client")]["reason"]
        assert "svc/web tcp/80 (externalIP 198.51.100.7:80)" in netlab("probe", "--lab", name, "--proto", "tcp",
                                                                         check=False).stdout
