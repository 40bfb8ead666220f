"""trace through Services on a real lab (root): topologies/services.yaml under a unique name.

One lab for the module (client, web-1/web-2 behind web, web-np's NodePort, web-lb's load balancer, kube-dns,
an internet host), taken down at the end. Tests that break it (delete a kube-proxy rule) put back exactly what
they broke, with the fix the trace printed, and check that the lab is as planned again.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from helpers import as_planned_here, in_netns, lab_up, netlab, traced, unique_lab, write_topology
from netlab import Lab
from netlab.plan.services import svc_chain

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
WEB_CHAIN = svc_chain("default/web:http", "tcp")
WEB_RULE = (f'-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" '
            f"-m tcp --dport 80 -j {WEB_CHAIN}")


@pytest.fixture(scope="module")
def svc_lab(tmp_path_factory):
    lab = unique_lab("tb")
    text = re.sub(r"(?m)^name: svc$", f"name: {lab}", (ROOT / "topologies/services.yaml").read_text())
    path = write_topology(tmp_path_factory.mktemp("trace-svc"), text)
    with lab_up(path, lab, in_process=True):  # in this process: no test of the module asks anything of up's or down's CLI
        yield lab, path


def test_a_deleted_kube_services_rule_is_blamed_on_the_node_with_the_rule(svc_lab):
    lab, path = svc_lab
    n1 = f"{lab}-node-1"
    fix = None
    subprocess.run(["ip", "netns", "exec", n1, "iptables", "-t", "nat", *shlex.split(WEB_RULE.replace("-A", "-D", 1))],
                   check=True)
    try:
        rc, d = traced(lab, "client", "svc/web")
        assert rc == 1 and not d["delivered"]
        lost = d["lost"]
        fix = lost["fix"]
        assert lost["netns"] == n1, lost  # not the gateway the packet went on to
        assert f"`{WEB_RULE}`" in lost["reason"] and "missing from node-1's nat table" in lost["reason"]
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["facts"]["missing_rule"] == WEB_RULE
        # The packet really went on: seen leaving node-1 towards the gateway, masqueraded.
        assert any(h["netns"] == f"{lab}-gateway" and h["seen"] for h in d["hops"])
        assert not any(h["kind"] == "dnat" and h["netns"] == f"{lab}-gateway" for h in d["hops"])
        text = netlab("trace", "--lab", lab, "client", "svc/web", check=False).stdout
        assert f"result: LOST at hop {lost['hop']} ({n1} cni0): node-1 did not DNAT this packet" in text
    finally:
        # The printed fix puts back exactly the deleted rule (else `up` repairs it for the next tests).
        subprocess.run(shlex.split(fix), check=False) if fix else Lab.up(path)
    assert as_planned_here(lab)
    rc, d = traced(lab, "client", "svc/web")
    assert rc == 0 and d["delivered"] and d["reply_received"]


def test_the_statistic_rule_that_chose_the_endpoint_is_shown_and_counted(svc_lab):
    lab, _ = svc_lab
    n1 = f"{lab}-node-1"
    for _ in range(2):
        rc, d = traced(lab, "client", "svc/web")
        assert rc == 0 and d["delivered"]
        ep = d["endpoint"]
        live = subprocess.run(["ip", "netns", "exec", n1, "iptables-save", "-t", "nat"], capture_output=True,
                              text=True, check=True).stdout.splitlines()
        # The rule is the kernel's own line, in the Service's chain, jumping to the endpoint's chain ...
        assert ep["rule"] in live and ep["rule"].startswith(f"-A {WEB_CHAIN} ")
        assert ep["rule"].endswith(f"-j {ep['sep_chain']}")
        # ... and its counter went up while the packet passed (iptables-save -c before and after).
        assert ep["rule_counted"] >= 1
        if ep["endpoint"] == "web-1":  # the first endpoint: the statistic match, 1/2
            assert "-m statistic --mode random --probability 0.50000000000" in ep["rule"]
            assert ep["probability"] == 0.5 and ep["rule_position"] == 1
        else:  # the last: unconditional, it takes what the statistic rule let pass
            assert ep["endpoint"] == "web-2" and "statistic" not in ep["rule"] and ep["rule_position"] == 2
            assert "(--probability 0.5) let pass" in ep["chosen_by"]
        assert ep["chance"] == "1/2" and ep["rules"] == 2
    text = netlab("trace", "--lab", lab, "client", "svc/web").stdout
    assert f"  chosen by `-A {WEB_CHAIN} " in text and "1 in 2 overall" in text


def plant_undnated_entry(node_ns: str, sport: int) -> list[str]:
    """What an unanswered SYN from client:SPORT to web's ClusterIP leaves on its node when kube-proxy's rule is
    missing: an entry without a DNAT, SYN_SENT for 120 s. Returns the command that deletes exactly it."""
    subprocess.run(["ip", "netns", "exec", node_ns, "conntrack", "-I", "-p", "tcp", "-s", "10.244.0.3", "-d",
                    "10.96.0.20", "--sport", str(sport), "--dport", "80", "--state", "SYN_SENT", "-t", "120", "-u",
                    "UNREPLIED"], check=True, capture_output=True)
    return ["ip", "netns", "exec", node_ns, "conntrack", "-D", "-p", "tcp", "--orig-src", "10.244.0.3",
            "--orig-port-src", str(sport), "--orig-dst", "10.96.0.20", "--orig-port-dst", "80"]


def test_an_older_entry_without_a_dnat_is_blamed_and_its_deletion_is_the_fix(svc_lab):
    """A client that keeps its port (--sport) meets the entry its earlier SYN left while the rule was missing:
    the nat table is never consulted, whatever kube-proxy's rules say now, and `up` cannot help."""
    lab, _ = svc_lab
    n1 = f"{lab}-node-1"
    delete = plant_undnated_entry(n1, 40001)
    try:
        rc, d = traced(lab, "client", "svc/web", "--sport", "40001")
        assert rc == 1 and not d["delivered"], d["lost"]
        lost = d["lost"]
        assert lost["netns"] == n1 and "already held a conntrack entry for this flow, made before this packet" \
            in lost["reason"], lost
        assert lost["fix"] == " ".join(delete)
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["facts"]["held_before"] is True
        text = netlab("trace", "--lab", lab, "client", "svc/web", "--sport", "40001", check=False).stdout
        fix_line = next(line for line in text.splitlines() if line.startswith("  fix: "))
        assert fix_line == f"  fix: {' '.join(delete)}", text  # no "or: netlab up": up leaves conntrack alone
        subprocess.run(shlex.split(lost["fix"]), check=True, capture_output=True)
        rc, d = traced(lab, "client", "svc/web", "--sport", "40001")
        assert rc == 0 and d["delivered"] and d["endpoint"]["endpoint"] in ("web-1", "web-2")
        entries = subprocess.run(["ip", "netns", "exec", n1, "conntrack", "-L", "-p", "tcp", "--orig-src",
                                  "10.244.0.3", "--orig-port-src", "40001"], capture_output=True, text=True,
                                 check=True).stdout
        assert "dst=10.96.0.20" in entries and "src=10.96.0.20" not in entries, entries  # DNATed now
    finally:
        subprocess.run(delete, check=False, capture_output=True)


def test_a_second_datagram_of_a_flow_follows_its_entry_and_no_rule_is_said_to_have_chosen(svc_lab):
    """A UDP client that keeps its port (--sport) sends its second query along the entry its first left (30 s and
    more): conntrack applies that DNAT, no rule of KUBE-SVC chooses or counts it. The trace said the rule chose
    it, with "its counter did not move (an earlier packet of the connection?)"."""
    lab, _ = svc_lab
    n1 = f"{lab}-node-1"
    try:
        _, first = traced(lab, "client", "svc/kube-system/kube-dns", "--proto", "udp", "--port", "53", "--sport", "40104")
        assert first["delivered"] and first["endpoint"]["rule_counted"] >= 1, first["endpoint"]
        _, second = traced(lab, "client", "svc/kube-system/kube-dns", "--proto", "udp", "--port", "53", "--sport", "40104")
        ep = second["endpoint"]
        assert second["delivered"] and second["dns"]["answer"]["rcode"] == "NOERROR", second["dns"]
        assert ep["chosen_by"].startswith("the entry conntrack held for this flow before the packet came"), ep
        assert "rule" not in ep and "rule_counted" not in ep, ep
        row = next(h for h in second["hops"] if h["kind"] == "dnat" and h["netns"] == n1)
        assert row["facts"]["held_before"] is True
    finally:
        subprocess.run(["ip", "netns", "exec", n1, "conntrack", "-D", "-p", "udp", "--orig-src", "10.244.0.3",
                        "--orig-port-src", "40104"], capture_output=True, check=False)


def test_a_random_source_port_is_one_conntrack_holds_no_flow_of(svc_lab, monkeypatch):
    """The trace's own port is new to conntrack: an earlier trace's unanswered SYN (while a rule was missing)
    leaves an entry for 120 s, and a later trace from its port would follow it, not the rules (a flake of the
    suite: a trace after the deleted-rule test met one). The first port the trace would take is held."""
    from netlab.probe import sockets

    lab, _ = svc_lab
    n1 = f"{lab}-node-1"
    first = sockets.SERVICE_PORTS[0]
    delete = plant_undnated_entry(n1, first)
    monkeypatch.setattr(sockets, "_service_next", (os.getpid(), 0))  # this process's next port: the held one
    try:
        t = Lab.attach(lab).trace("client", "svc/web")
        dnat = next(h for h in t.hops if h.kind == "dnat")
        assert t.delivered and t.endpoint is not None, (t.lost, dnat.problem)
        assert dnat.facts["before"].startswith(f"10.244.0.3:{first + 1} → 10.96.0.20:80"), dnat.facts
    finally:
        subprocess.run(delete, check=False, capture_output=True)


def test_internet_to_a_node_port_shows_the_endpoint_pods_hop(svc_lab):
    lab, _ = svc_lab
    rc, d = traced(lab, "example", "node-2", "--port", "30080")  # tcp: the nodePort's protocol
    assert rc == 0 and d["delivered"] and d["reply_received"], d["reply"]
    assert d["proto"] == "tcp" and d["dst"]["service"] == "web-np"
    ep = d["endpoint"]
    assert ep["service"] == "default/web-np:http" and ep["endpoint"] in ("web-1", "web-2")
    dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
    assert dnat["netns"] == f"{lab}-node-2" and dnat["facts"]["before"].endswith("192.168.122.3:30080 tcp")
    # Followed through the DNAT (to node-1 over the overlay for web-1) to the endpoint, seen there.
    last = d["hops"][-1]
    assert (last["netns"], last["kind"], last["seen"]) == (f"{lab}-{ep['endpoint']}", "deliver", True)
    assert f"{lab}-{ep['endpoint']}" in d["captured_netns"]
    observable = [h for h in d["hops"] if h.get("observe") is not None]
    assert all(h["seen"] for h in observable), [(h["index"], h["netns"], h["device"]) for h in observable]
    text = netlab("trace", "--lab", lab, "example", "node-2", "--proto", "tcp", "--port", "30080").stdout
    assert "result: delivered to web-" in text
    assert "endpoint of Service default/web-np:http (node-2:30080 DNATed to 10.244." in text


def test_a_pod_to_itself_says_what_happens(svc_lab):
    lab, _ = svc_lab
    rc, d = traced(lab, "client", "client")
    assert rc == 0 and d["delivered"] and d["reply_received"]
    assert [(h["device"], h["kind"], h["seen"]) for h in d["hops"]] == [("lo", "deliver", True)]
    assert [(h["device"], h["seen"]) for h in d["reply_hops"]] == [("lo", True)]
    text = netlab("trace", "--lab", lab, "client", "client").stdout
    assert "\nreply :" not in text and "\nreply 10.244.0.3 → 10.244.0.3 icmp id " in text
    assert "result: delivered to client (itself: 10.244.0.3 is its own address, so the kernel loops the packet " \
           f"back through lo and it never leaves {lab}-client)" in text
    # Through its own Service (kube-dns is the only endpoint of kube-dns): out to node-1 and back in hairpin.
    rc, d = traced(lab, "kube-dns", "svc/kube-dns", "--proto", "tcp")
    assert rc == 0 and d["delivered"] and d["reply_received"]
    back_out = [h for h in d["hops"] if h["kind"] == "bridge" and h["facts"].get("hairpin")]
    assert back_out and back_out[0]["netns"] == f"{lab}-node-1" and back_out[0]["seen"]
    assert d["hops"][-1]["netns"] == f"{lab}-kube-dns" and d["hops"][-1]["seen"]
    text = netlab("trace", "--lab", lab, "kube-dns", "svc/kube-dns", "--proto", "tcp").stdout
    assert "(itself, through the Service: node-1's bridge cni0 sent the frame back out the port it came in on, " \
           f"{back_out[0]['device']} in hairpin mode, masqueraded to 10.244.0.1 so that the reply comes back " \
           "through node-1 to be un-DNATed)" in text


def test_trace_to_kube_dns_asks_a_real_question_and_shows_the_answer(svc_lab):
    lab, _ = svc_lab
    rc, d = traced(lab, "client", "svc/kube-system/kube-dns")  # udp/53: the Service's first port
    assert rc == 0 and d["delivered"] and d["reply_received"], d["reply_lost"]
    assert d["dns"]["question"] == "kube-dns.kube-system.svc.cluster.local"
    answer = d["dns"]["answer"]
    assert answer["rcode"] == "NOERROR" and answer["id"] == d["dns"]["id"]
    assert [(a["name"], a["type"], a["data"]) for a in answer["answers"]] == [
        ("kube-dns.kube-system.svc.cluster.local.", "A", "10.96.0.10")]
    # Seen all the way there and back: the answer comes from the ClusterIP (un-DNATed on node-1's bridge).
    observable = [h for h in d["hops"] + d["reply_hops"] if h.get("observe") is not None]
    assert all(h["seen"] for h in observable), [(h["direction"], h["index"], h["netns"], h["device"])
                                                for h in observable if not h["seen"]]
    assert d["reply_hops"][-1]["observe"]["flow"].startswith("10.96.0.10:53 → 10.244.0.3:")
    # dnsmasq itself logged the question, from the client's own address (no NAT on the way in), as the
    # authority for cluster.local it is to every pod (model/clusterdns.py).
    log = Lab.attach(lab).logs("kube-dns")  # what `netlab logs` prints
    assert "auth[A] kube-dns.kube-system.svc.cluster.local from 10.244.0.3" in log
    text = netlab("trace", "--lab", lab, "client", "svc/kube-system/kube-dns").stdout
    assert "DNS query (UDP port 53) for A kube-dns.kube-system.svc.cluster.local" in text.splitlines()[0]
    assert "reply received: DNS answer: kube-dns.kube-system.svc.cluster.local. A 10.96.0.10 (NOERROR)" in text
    assert "is a server listening" not in text


def run_on_terminal(argv: list[str], columns: int) -> str:
    """Run a command with its output on a pseudo-terminal ``columns`` wide, as a learner's shell would."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_on_a_terminal_lines_wrap_to_its_width_and_json_keeps_them_whole(svc_lab):
    import sys

    lab, _ = svc_lab
    text = run_on_terminal([sys.executable, "-m", "netlab", "trace", "--lab", lab, "client", "svc/web"], 100)
    lines = text.splitlines()
    assert any(line.startswith("result: delivered to web-") for line in lines), text
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "status:" in lines and any(line.startswith("  -         nothing a capture can show") for line in lines)
    _, d = traced(lab, "client", "svc/web")  # -o json, piped: every decision whole, on one line
    dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
    assert len(dnat["decision"]) > 100 and "\n" not in dnat["decision"]
    piped = netlab("trace", "--lab", lab, "client", "svc/web").stdout  # not a terminal: not wrapped
    assert max(len(line) for line in piped.splitlines()) > 100


def test_the_picture_numbers_every_hop_and_shows_the_lost_one_in_red(svc_lab, tmp_path):
    import xml.etree.ElementTree as ET

    lab, path = svc_lab
    svg_ns = "{http://www.w3.org/2000/svg}"
    n1 = f"{lab}-node-1"
    subprocess.run(["ip", "netns", "exec", n1, "iptables", "-t", "nat", *shlex.split(WEB_RULE.replace("-A", "-D", 1))],
                   check=True)
    try:
        _, d = traced(lab, "client", "svc/web")
        picture = tmp_path / "lost.svg"
        proc = netlab("trace", "--lab", lab, "client", "svc/web", "-o", "svg", "-w", str(picture), check=False,
                      timeout=60)
    finally:
        Lab.up(path)  # the repair, as `netlab up -t PATH` makes it
    assert proc.returncode == 1 and f"wrote {picture}" in proc.stderr and "LOST at hop" in proc.stderr
    root = ET.fromstring(picture.read_text())
    texts = [(t.text or "").replace("\xa0", " ") for t in root.iter(f"{svg_ns}text")]
    hops = {h["index"] for h in d["hops"]}
    numbered = {int(m.group(1)) for t in texts for m in [re.match(r"(\d+)  \S", t)] if m}
    assert hops <= numbered, sorted(hops - numbered)
    words = " ".join(" ".join(texts).split())
    reason = " ".join(d["lost"]["reason"].split())
    assert f"LOST here: {reason}" in words  # the lost hop's reason, on the lost hop's note
    assert any(t.startswith(f"{d['lost']['hop']}  no DNAT for ") for t in texts)
    red = [g for g in root.iter(f"{svg_ns}g") if g.get("class") == "node"
           and any(p.get("stroke") == "#d1242f" for p in g.iter() if p.get("stroke"))]
    assert any((g.find(f"{svg_ns}title").text or "") == "node_node_1_cni0" for g in red)  # node-1's cni0: hop 5
    # Repaired: the picture of a delivered packet, as PNG.
    png = tmp_path / "ok.png"
    proc = netlab("trace", "--lab", lab, "client", "svc/web", "-o", "png", "-w", str(png), timeout=60)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and ": delivered" in proc.stderr


def test_a_nodes_own_connection_to_a_service_on_another_node_is_answered_and_seen_back(svc_lab):
    """node-2 → kube-dns (on node-1): OUTPUT DNAT, masqueraded into the overlay; the answer comes back un-SNATed and
    un-DNATed on node-2. It was reported lost "seen on flannel.1, never on flannel.1"."""
    lab, _ = svc_lab
    n2 = f"{lab}-node-2"
    rc, d = traced(lab, "node-2", "svc/kube-dns", "--proto", "tcp")
    assert rc == 0 and d["delivered"] and d["reply_received"] and d["reply_lost"] is None, d["reply_lost"]
    observable = [h for h in d["reply_hops"] if h.get("observe") is not None]
    assert all(h["seen"] for h in observable), [(h["index"], h["netns"], h["device"]) for h in observable]
    last = d["reply_hops"][-1]
    assert (last["netns"], last["device"], last["kind"]) == (n2, "flannel.1", "deliver")
    undo = [h for h in d["reply_hops"] if h["netns"] == n2 and h["kind"] == "snat"]
    assert undo and "source 10.244.0.4:53 → 10.96.0.10:53" in undo[0]["decision"]  # what node-2's socket gets
    # The first row is the route lookup that picked the socket's source (eth0's address, by the default route to
    # the ClusterIP); the next, nat OUTPUT's DNAT of the socket's packet, names the device it leaves by once routed
    # again (flannel.1, towards kube-dns on node-1), as the route row after it does; it said "-".
    source, first = d["hops"][0], d["hops"][1]
    route = next(h for h in d["hops"][1:] if h["kind"] == "route")
    assert (source["netns"], source["kind"], source["device"]) == (n2, "route", "eth0") \
        and source["facts"]["source_route"], source
    assert (first["netns"], first["kind"], first["device"]) == (n2, "dnat", "flannel.1"), first
    assert (route["netns"], route["device"]) == (n2, "flannel.1"), route
    text = netlab("trace", "--lab", lab, "node-2", "svc/kube-dns", "--proto", "tcp").stdout
    assert re.search(rf"(?m)^  2  -         {n2} +flannel\.1 +DNAT 10\.96\.0\.10:53 → ", text), text


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_service_without_endpoints_is_rejected_at_the_clients_node(mode, tmp_path):
    """kube-proxy rejects a connection to a Service without endpoints at the client's node (ICMP port
    unreachable); trace blames that node and says no more: the packet did not go on (it said it "went on as it
    was" and was lost at the node's underlay ARP entry)."""
    lab = unique_lab("tb0")
    path = write_topology(tmp_path, f"""name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods: [{{name: client, node: n1}}]
services:
  - {{name: ghost, selector: {{app: none}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")
    with lab_up(path, lab, in_process=True):
        rc, tr = traced(lab, "client", "svc/ghost", "--proto", "tcp", "--port", "80")
        assert rc == 1 and tr["lost"]["netns"] == f"{lab}-n1", tr["lost"]
        assert tr["lost"]["reason"].startswith("Service default/ghost has no endpoints: kube-proxy's "), tr["lost"]
        assert "went on" not in tr["lost"]["reason"], tr["lost"]
        assert any("port unreachable" in e["text"] for e in tr["icmp_errors"]), tr["icmp_errors"]
        # The client's connection is refused at once, not lost: REFUSED, naming the node and kube-proxy's rule
        # (the kernel's own, as iptables-save / nft list it), `refused` set in JSON as for a closed port.
        rule = "map no-endpoint-services (`element no-endpoint-services 10.96.0." if mode == "nftables" else \
            'filter rule `-A KUBE-SERVICES -d 10.96.0.'
        said = f"Service default/ghost has no endpoints: node n1's kube-proxy {rule}"
        assert (tr["refused"] or "").startswith(said), tr["refused"]
        listed = in_netns(f"{lab}-n1", *(["nft", "list", "map", "ip", "kube-proxy", "no-endpoint-services"]
                                         if mode == "nftables" else ["iptables-save", "-t", "filter"]),
                          check=True).stdout
        assert ('"default/ghost" : goto reject-chain' if mode == "nftables" else
                '"default/ghost has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable') \
            in listed, listed
        text = netlab("trace", "--lab", lab, "client", "svc/ghost", "--proto", "tcp", "--port", "80",
                      check=False).stdout
        line = next(x for x in text.splitlines() if x.startswith("result:"))
        assert line.startswith(f"result: REFUSED at hop {tr['lost']['hop']} ({lab}-n1 ") and "LOST" not in line, line


def test_a_nodeport_refused_by_the_endpoints_policy_after_masquerade_is_blamed_on_the_policy(labs):
    """web-1 (n1) admits only pods labelled role=client. A node's or an internet host's packet to the nodePort
    is refused there by its NETPOL-IN chain: from n2's eth0 address, from example's own address, or from n2's
    flannel.1 address after n2's masquerade. trace judged no policy for a nodePort, and blamed the missing ARP
    entry of web-1 on cni0 (the packet never got that far) or said "the policy is named below" and named none."""
    lab = labs.name("qt")
    labs.up_here(f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: client, node: n1, labels: {{role: client}}}}
services:
  - {{name: web-np, type: NodePort, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
networkPolicies:
  - name: web-from-clients
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]}}]
expect:
  - {{from: n2, to: n1, proto: tcp, port: 30080, reach: false}}
  - {{from: example, to: n1, proto: tcp, port: 30080, reach: false}}
  - {{from: example, to: n2, proto: tcp, port: 30080, reach: false}}
  - {{from: client, to: n1, proto: tcp, port: 30080}}
""")
    # The kernel: real connections, refused (the REJECT's reset) where the policy says so.
    report = json.loads(netlab("probe", "--lab", lab, "-o", "json", check=False).stdout)
    got = {(p["source"], p["destination"]): p["outcome"] for p in report["probes"] if p.get("port") == 30080}
    # The pairs no expect: entry names are the Service's own nodePort probes: n1 to its own pod is never judged,
    # n1 and n2 through n2 arrive as n2's flannel.1 address.
    assert got == {("n2", "n1"): "refused", ("example", "n1"): "refused", ("example", "n2"): "refused",
                   ("client", "n1"): "reply", ("n1", "n1"): "reply", ("n1", "n2"): "refused",
                   ("n2", "n2"): "refused"}, got
    # all of them Service probes (an expect: entry to a nodePort is judged as one), each as expected
    nodeport = [p for p in report["probes"] if p.get("port") == 30080]
    assert all(p["service"] and p["as_expected"] for p in nodeport), nodeport
    assert len([p for p in nodeport if not p["reason"].startswith("expect[")]) == 3, nodeport
    for src, dst, seen in (("n2", "n1", "n2's eth0 address"), ("example", "n1", "203.0.113.10, example's own address"),
                           ("example", "n2", "n2's address after its masquerade")):
        rc, d = traced(lab, src, dst, "--port", "30080")
        lost = d["lost"]
        want = (r"dropped in node n1, chain NETPOL-IN-\w+, by policy default/web-from-clients \(no ingress rule allows "
                r"it for pod default/web-1; it comes from ")
        assert rc == 1 and re.match(want, lost["reason"]), lost
        assert seen in lost["reason"] and "ARP" not in lost["reason"], lost
        [entry] = d["policy"]
        assert (entry["node"], entry["counted"], entry["allowed"]) == ("n1", True, False), entry
        # The rows agree with the verdict: lost in n1, at the REJECT's row (n2's packet, routed in from
        # flannel.1) or at the DNAT row that says the REJECT counted it (n1's own nodePort), and no row blames a
        # missing ARP entry nor leaves the policy to be "named below".
        row = d["hops"][lost["hop"] - 1]
        assert row["netns"] == f"{lab}-n1" and row["problem"] is not None, row
        assert "default/web-from-clients" in row["problem"] and "named below" not in row["problem"], row
        if dst == "n2":
            assert row["kind"] == "drop" and row["facts"]["chain"] == entry["chain"], row
            assert row["decision"].startswith("FORWARD (in on flannel.1, out on cni0)"), row
        assert not any("ARP" in (h["problem"] or "") for h in d["hops"]), [h["problem"] for h in d["hops"]]
    rc, d = traced(lab, "client", "n1", "--port", "30080")
    assert rc == 0 and d["delivered"] and d["policy"][0]["allowed"], d["policy"]
