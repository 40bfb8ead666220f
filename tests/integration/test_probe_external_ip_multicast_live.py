"""A multicast and a broadcast externalIP on a real lab (root): the kernel connects no TCP to either (a pod's
connect() says Network is unreachable, as the note says), and probe of the freshly built lab leaves those flows
out with that reason, probes the Service's ordinary externalIP, and finds everything as expected (exit 0)."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
nodes: [{{name: n1}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods: [{{name: p, node: n1, labels: {{a: b}}, containers: [{{name: c, ports: [{{containerPort: 80}}]}}]}}]
services: [{{name: s, selector: {{a: b}}, externalIPs: [239.1.1.1, 255.255.255.255, 198.51.100.7], ports: [{{port: 80}}]}}]
"""
CONNECT = ("import errno, socket, sys\ns = socket.socket()\ntry:\n    s.connect((sys.argv[1], 80))\n"
           "except OSError as e:\n    print(errno.errorcode[e.errno])\nelse:\n    print('connected')\n")


def test_probe_leaves_out_what_the_kernel_never_connects_and_says_why(tmp_path):
    name = unique_lab("fz")
    path = write_topology(tmp_path, TOPO.format(name=name))
    valid = netlab("validate", "-t", path)
    assert "externalIP 239.1.1.1 is a multicast address (224.0.0.0/4)" in valid.stdout + valid.stderr, valid
    with lab_up(path, name):
        for ip in ("239.1.1.1", "255.255.255.255"):  # the kernel's answer, from the pod and the internet host
            for who in ("p", "client"):
                got = netlab("exec", "--lab", name, who, "--", "python3", "-I", "-c", CONNECT, ip).stdout.strip()
                assert got == "ENETUNREACH", (who, ip, got)
        run = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        doc = json.loads(run.stdout)
        ext = [p for p in doc["probes"] if p["service"] and p["service"]["via"] == "ExternalIP"]
        assert all(p["as_expected"] for p in doc["probes"]), run.stdout
        assert sorted(p["source"] for p in ext) == ["client", "kube-dns", "n1", "p"], ext
        assert all("198.51.100.7" in json.dumps(p["service"]) for p in ext), ext
        assert run.returncode == 0, run
        skipped = [n for n in doc["not_probed"] if "(externalIP 239.1.1.1)" in n or "(externalIP 255.255" in n]
        assert skipped == [
            "svc/s tcp/80 (externalIP 239.1.1.1): not probed: a multicast address (224.0.0.0/4): no host's kernel "
            "connects TCP to it (connect() says Network is unreachable), so no client reaches the Service there",
            "svc/s tcp/80 (externalIP 255.255.255.255): not probed: the limited broadcast address: no host's kernel "
            "connects TCP to it (connect() says Network is unreachable), so no client reaches the Service there"], \
            doc["not_probed"]


UDP_TOPO = """\
name: {name}
nodes: [{{name: n1}}]
pods:
  - {{name: w, node: n1, labels: {{a: b}}, containers: [{{name: c, ports: [{{containerPort: 8080, protocol: UDP}}]}}]}}
  - {{name: cl, node: n1}}
services: [{{name: s, selector: {{a: b}}, externalIPs: [239.1.1.1, 255.255.255.255, 198.51.100.7],
            ports: [{{name: u, port: 53, targetPort: 8080, protocol: UDP}}]}}]
"""
SEND = ("import errno, socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    s.connect((sys.argv[1], 53))\n    print('sent', s.send(b'hi'))\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])\n")


def test_a_udp_datagram_to_such_an_external_ip_is_sent_and_its_reason_says_so(tmp_path):
    """QA q18 3: the UDP port's not-probed reason. A pod's datagram to 239.1.1.1 is sent (connect() and send
    succeed) and kube-proxy's rule DNATs it to the endpoint (the node's conntrack entry); 255.255.255.255 is refused
    without SO_BROADCAST; probe names each UDP flow with UDP's reason, not TCP's."""
    name = unique_lab("gw")
    path = write_topology(tmp_path, UDP_TOPO.format(name=name))
    with lab_up(path, name):
        sent = {ip: netlab("exec", "--lab", name, "cl", "--", "python3", "-I", "-c", SEND, ip).stdout.strip()
                for ip in ("239.1.1.1", "255.255.255.255")}
        assert sent == {"239.1.1.1": "sent 2", "255.255.255.255": "EACCES"}, sent
        w = json.loads(netlab("get", "pods", "--lab", name, "w", "-o", "json").stdout)
        w_ip = (w[0] if isinstance(w, list) else w.get("items", [w])[0])["ip"]
        ct = subprocess.run(["ip", "netns", "exec", f"{name}-n1", "conntrack", "-L", "-p", "udp", "-d", "239.1.1.1"],
                            capture_output=True, text=True).stdout
        assert f"dport=53 src={w_ip} " in ct and "sport=8080" in ct, ct  # DNATed to the endpoint w:8080
        run = netlab("probe", "--lab", name, "--proto", "udp", "-o", "json", check=False)
        doc = json.loads(run.stdout)
        skipped = [n for n in doc["not_probed"] if "(externalIP 239.1.1.1)" in n or "(externalIP 255" in n]
        assert skipped == [
            "svc/s udp/53 (externalIP 239.1.1.1): not probed: a multicast address (224.0.0.0/4): a UDP datagram to "
            "it is sent (connect() and send succeed) and kube-proxy's rule passes it to an endpoint, but the "
            "endpoint's answer never reaches the client, so no client gets an answer from the Service there",
            "svc/s udp/53 (externalIP 255.255.255.255): not probed: the limited broadcast address: a UDP datagram "
            "to it is sent only by a socket with SO_BROADCAST (connect() says Permission denied without it), and "
            "no answer comes back, so no client gets an answer from the Service there"], doc["not_probed"]
        assert run.returncode == 0, run
