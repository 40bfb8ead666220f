"""Which probes a lab gets, expectations, and judging replies (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe.judge import judge
from netlab.probe.dnsq import Question
from netlab.probe.job import make_job
from netlab.probe.matrix import build_matrix, endpoints
from netlab.probe.tasks import Observation

DEMO = {
    "name": "demo",
    "nodes": [{"name": "minikube", "ip": "192.168.122.215", "podCIDR": "10.244.0.0/24"},
              {"name": "minikube-m02", "ip": "192.168.122.7", "podCIDR": "10.244.1.0/24"}],
    "pods": [{"name": "fedora-1", "node": "minikube", "ip": "10.244.0.2"},
             {"name": "fedora-2", "node": "minikube-m02", "ip": "10.244.1.3"},
             {"name": "fedora-3", "node": "minikube", "ip": "10.244.0.3"},
             {"name": "fedora-4", "node": "minikube-m02", "ip": "10.244.1.2"}],
}


def lab(**changes):
    data = dict(DEMO)
    data.update(changes)
    return resolve(Topology.model_validate(data))


def keys(probes, proto=None):
    return {p.key for p in probes if proto is None or p.proto == proto}


def test_default_matrix_is_every_ordered_pod_pair_and_node_to_pod():
    probes = build_matrix(lab())
    icmp = keys(probes, "icmp")
    pods = [p["name"] for p in DEMO["pods"]]
    nodes = [n["name"] for n in DEMO["nodes"]]
    want = {(a, b, "icmp", None) for a in pods for b in pods if a != b}
    want |= {(n, b, "icmp", None) for n in nodes for b in pods}
    assert icmp == want
    assert len(icmp) == 4 * 3 + 2 * 4
    # The echo server's default port, from every other pod and every node.
    assert keys(probes, "tcp") == {(a, b, "tcp", 8080) for (a, b, _, _) in want}
    # And its UDP twin, where the same server answers every datagram with the client address it saw
    # (the matrix left it out: `probe --proto udp` probed nothing, though the help says UDP is probed there).
    assert keys(probes, "udp") == {(a, b, "udp", 8080) for (a, b, _, _) in want}
    assert all(p.echo for p in probes if p.proto == "udp")
    assert all(p.expected and p.reason == "default" for p in probes)
    assert keys(build_matrix(lab(), protos=["udp"])) == keys(probes, "udp")


def test_declared_ports_tcp_and_udp_from_everyone_else():
    pods = [dict(p) for p in DEMO["pods"]]
    pods[1]["containers"] = [{"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                      {"containerPort": 53, "protocol": "TCP"}]},
                             {"name": "sleeper", "command": ["sleep", "infinity"]}]
    probes = build_matrix(lab(pods=pods))
    to_f2 = {(p.source.name, p.proto, p.port) for p in probes if p.destination.name == "fedora-2" and p.proto != "icmp"}
    sources = {"fedora-1", "fedora-3", "fedora-4", "minikube", "minikube-m02"}
    assert to_f2 == {(s, proto, 53) for s in sources for proto in ("tcp", "udp")}
    # A sleeper container declares nothing and is not an echo server: no 8080 on fedora-2.
    assert not any(p.destination.name == "fedora-2" and p.port == 8080 for p in probes)


def test_expect_overrides_a_pair_and_adds_new_ones():
    expect = [{"from": "fedora-1", "to": "fedora-2", "proto": "icmp", "reach": True},
              {"from": "fedora-1", "to": "fedora-3", "proto": "tcp", "port": 8080, "reach": False},
              {"from": "fedora-1", "to": "minikube", "proto": "icmp"},
              {"from": "fedora-1", "to": "fedora-3", "proto": "tcp", "port": 9999, "reach": False}]
    probes = {p.key: p for p in build_matrix(lab(expect=expect))}
    assert probes[("fedora-1", "fedora-2", "icmp", None)].expected is True
    assert probes[("fedora-1", "fedora-2", "icmp", None)].reason == "expect[0]"
    assert probes[("fedora-1", "fedora-3", "tcp", 8080)].expected is False
    assert probes[("fedora-1", "minikube", "icmp", None)].destination.ip == IPv4Address("192.168.122.215")
    assert probes[("fedora-1", "fedora-3", "tcp", 9999)].expected is False
    # Everything else stays at the default.
    assert probes[("fedora-3", "fedora-1", "tcp", 8080)].expected is True


def test_protocol_filter():
    probes = build_matrix(lab(), protos=["icmp"])
    assert {p.proto for p in probes} == {"icmp"}


def test_same_bridge_pairs_are_pods_on_one_node():
    probes = {p.key: p for p in build_matrix(lab())}
    assert probes[("fedora-1", "fedora-3", "icmp", None)].same_bridge
    assert not probes[("fedora-1", "fedora-2", "icmp", None)].same_bridge
    assert not probes[("minikube", "fedora-1", "icmp", None)].same_bridge


def test_endpoints_know_nodes_pods_and_their_namespaces():
    eps = endpoints(lab())
    assert eps["fedora-2"].netns == "demo-fedora-2" and eps["fedora-2"].node == "minikube-m02"
    assert eps["minikube"].kind == "node" and eps["minikube"].ip == IPv4Address("192.168.122.215")


def _probe(src, dst, proto="tcp", port=8080, expected=None):
    probes = {p.key: p for p in build_matrix(lab())}
    p = probes[(src, dst, proto, port)]
    if expected is not None:
        from dataclasses import replace

        p = replace(p, expected=expected)
    return p


def test_judge_reachable_as_expected():
    p = _probe("fedora-1", "fedora-2")
    obs = Observation(outcome="reply", rtt=0.0004, local="10.244.0.2:40000", seen_client="10.244.0.2:40000",
                      server="10.244.1.3:8080", answered_by="fedora-2")
    assert judge(p, obs, 1.0, "10.244.0.2") == []


def test_judge_miss_in_words():
    p = _probe("fedora-1", "fedora-2", "icmp", None)
    assert judge(p, Observation(outcome="timeout"), 1.0, "10.244.0.2") == [
        "expected reachable, no reply in 1 s"]
    refused = Observation(outcome="refused", detail="connection refused")
    assert judge(_probe("fedora-1", "fedora-2"), refused, 1.0, "10.244.0.2") == [
        "expected reachable, connection refused"]


def test_judge_unexpected_reply():
    p = _probe("fedora-1", "fedora-3", expected=False)
    obs = Observation(outcome="reply", rtt=0.0012, answered_by="fedora-3", seen_client="10.244.0.2:1",
                      server="10.244.0.3:8080", local="10.244.0.2:1")
    assert judge(p, obs, 1.0, "10.244.0.2") == ["expected unreachable, got a reply in 1.2 ms"]
    assert judge(p, Observation(outcome="timeout"), 1.0, "10.244.0.2") == []


def test_judge_detects_nat_pod_to_pod_and_node_to_pod():
    p = _probe("fedora-1", "fedora-2")
    obs = Observation(outcome="reply", local="10.244.0.2:40000", seen_client="192.168.122.215:40000",
                      server="10.244.1.3:8080", answered_by="fedora-2")
    (problem,) = judge(p, obs, 1.0, "10.244.0.2")
    assert problem.startswith("NAT: fedora-2 saw the client as 192.168.122.215, but fedora-1 sent from 10.244.0.2")
    assert "rule 1" in problem
    node = _probe("minikube", "fedora-2")
    obs = Observation(outcome="reply", local="10.244.0.0:1234", seen_client="192.168.122.215:1234",
                      server="10.244.1.3:8080", answered_by="fedora-2")
    assert "rule 2" in judge(node, obs, 1.0, "10.244.0.0")[0]
    # Port translation alone is NAT too.
    obs = Observation(outcome="reply", local="10.244.0.2:40000", seen_client="10.244.0.2:50000",
                      server="10.244.1.3:8080", answered_by="fedora-2")
    assert "source port translated" in judge(p, obs, 1.0, "10.244.0.2")[0]


def test_host_gw_lets_a_nodes_connection_to_another_nodes_pod_get_a_new_port_and_nothing_else():
    """host-gw: a node reaches another node's pod from its eth0 address, outside the pod network, and Flannel's
    ``! -s <pod network> -d <pod network> MASQUERADE --random-fully`` gives it a new port (the address stays).
    Its own pods, pods' flows and every flow of a VXLAN lab (from flannel.1's address, in the pod network) keep
    the exact port check."""
    gw = {(p.source.name, p.destination.name): p for p in build_matrix(lab(network={"mode": "host-gw"}))
          if p.proto == "tcp"}
    vx = {(p.source.name, p.destination.name): p for p in build_matrix(lab()) if p.proto == "tcp"}
    assert {k for k, p in gw.items() if not p.port_kept} == {(n, d) for n, d in gw if n.startswith("minikube")
                                                              and gw[(n, d)].destination.node != n}
    assert all(p.port_kept for p in vx.values())
    obs = Observation(outcome="reply", local="192.168.122.215:40000", seen_client="192.168.122.215:5123",
                      server="10.244.1.3:8080", answered_by="fedora-2")
    assert judge(gw[("minikube", "fedora-2")], obs, 1.0, "192.168.122.215") == []
    moved = Observation(outcome="reply", local="192.168.122.215:40000", seen_client="10.244.1.1:5123",
                        server="10.244.1.3:8080", answered_by="fedora-2")
    assert "rule 2" in judge(gw[("minikube", "fedora-2")], moved, 1.0, "192.168.122.215")[0]  # the address stays
    own = Observation(outcome="reply", local="192.168.122.215:40000", seen_client="192.168.122.215:5123",
                      server="10.244.0.2:8080", answered_by="fedora-1")
    assert "source port translated" in judge(gw[("minikube", "fedora-1")], own, 1.0, "192.168.122.215")[0]


def test_judge_rule_3_and_wrong_pod():
    p = _probe("fedora-1", "fedora-2")
    obs = Observation(outcome="reply", local="10.244.0.2:1", seen_client="10.244.0.2:1",
                      server="10.244.1.99:8080", answered_by="fedora-4")
    problems = judge(p, obs, 1.0, "10.244.0.2")
    assert "answered by fedora-4, not fedora-2" in problems
    assert any("rule 3" in x and "10.244.1.99" in x for x in problems)


def test_judge_icmp_reply_from_another_address():
    p = _probe("fedora-1", "fedora-2", "icmp", None)
    obs = Observation(outcome="reply", reply_from="10.244.1.1", ttl=62)
    assert "not 10.244.1.3" in judge(p, obs, 1.0, "10.244.0.2")[0]


def test_judge_non_echo_server_is_reachability_only():
    p = _probe("fedora-1", "fedora-2")
    obs = Observation(outcome="reply", local="10.244.0.2:1", detail="connected; the server sent no echo reply")
    assert judge(p, obs, 1.0, "10.244.0.2") == []


# --- UDP only where the echo server listens; expectations stay consistent ------------------------

DNS_LIKE = [{"name": "dnsmasq", "command": ["dnsmasq", "-k"],
             "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]},
            {"name": "echo", "ports": [{"containerPort": 5353, "protocol": "UDP"}]}]


def dns_lab(expect=()):
    pods = [dict(p) for p in DEMO["pods"]]
    pods[1]["containers"] = DNS_LIKE
    return lab(pods=pods, expect=list(expect))


def test_udp_only_to_echo_ports_tcp_to_every_declared_port():
    probes = build_matrix(dns_lab())
    to_f2 = {(p.proto, p.port) for p in probes if p.destination.name == "fedora-2" and p.proto != "icmp"}
    # dnsmasq's 53/UDP is not probed (silence would prove nothing); its 53/TCP is (a connect is proof);
    # the echo container's 5353/UDP is.
    assert to_f2 == {("tcp", 53), ("udp", 5353)}
    echo = {(p.proto, p.port): p.echo for p in probes if p.destination.name == "fedora-2" and p.proto != "icmp"}
    assert echo == {("tcp", 53): False, ("udp", 5353): True}


def test_echo_ports_and_probe_ports():
    from netlab.probe.matrix import echo_ports, probe_ports

    f2 = dns_lab().pod("fedora-2")
    assert echo_ports(f2) == {(5353, "UDP")}
    assert probe_ports(f2) == [(53, "tcp", False), (5353, "udp", True)]
    f1 = dns_lab().pod("fedora-1")
    # The default echo server also answers UDP on 8080 (its TCP port's twin), and is probed there.
    assert echo_ports(f1) == {(8080, "TCP"), (8080, "UDP")}
    assert probe_ports(f1) == [(8080, "tcp", True), (8080, "udp", True)]


def test_declared_tcp_ports_of_an_echo_container_are_probed_over_udp_too():
    """services.yaml's web pods declare 8080/TCP: their echo server listens on 8080/UDP as well (`ss -lun`
    there lists it), so UDP is probed there; a port another container declares UDP-only is left to it, and
    a command container's TCP port gets no twin (its own server need not listen on UDP)."""
    from netlab.probe.matrix import probe_ports

    pods = [dict(p) for p in DEMO["pods"]]
    pods[0]["containers"] = [{"name": "http", "ports": [{"containerPort": 8080, "protocol": "TCP"},
                                                       {"containerPort": 9000, "protocol": "TCP"}]},
                             {"name": "own", "command": ["sleep", "infinity"],
                              "ports": [{"containerPort": 9000, "protocol": "UDP"},
                                        {"containerPort": 7000, "protocol": "TCP"}]}]
    f1 = lab(pods=pods).pod("fedora-1")
    assert probe_ports(f1) == [(8080, "tcp", True), (9000, "tcp", True), (7000, "tcp", False),
                               (8080, "udp", True)]


def test_expect_udp_to_a_port_without_echo_server():
    exp = [{"from": "fedora-1", "to": "fedora-2", "proto": "udp", "port": 53, "reach": True},
           {"from": "fedora-3", "to": "fedora-2", "proto": "udp", "port": 53, "reach": False}]
    probes = {p.key: p for p in build_matrix(dns_lab(exp))}
    yes, no = probes[("fedora-1", "fedora-2", "udp", 53)], probes[("fedora-3", "fedora-2", "udp", 53)]
    assert yes.reason == "expect[0]" and yes.echo is False and no.expected is False
    # reach: true needs evidence: silence fails, and says why it proves nothing.
    (problem,) = judge(yes, Observation(outcome="timeout"), 1.0, "10.244.0.2")
    assert problem.startswith("expected reachable, no reply in 1 s (not netlab's echo server")
    assert judge(yes, Observation(outcome="reply", local="10.244.0.2:4000"), 1.0, "10.244.0.2") == []
    # reach: false holds on silence and on a refusal, fails on an answer.
    assert judge(no, Observation(outcome="timeout"), 1.0, "10.244.0.3") == []
    assert judge(no, Observation(outcome="refused"), 1.0, "10.244.0.3") == []
    assert judge(no, Observation(outcome="reply", rtt=0.001), 1.0, "10.244.0.3")[0].startswith(
        "expected unreachable, got a reply")
    # An echo port keeps the plain message.
    echo = probes[("fedora-1", "fedora-2", "udp", 5353)]
    assert judge(echo, Observation(outcome="timeout"), 1.0, "10.244.0.2") == ["expected reachable, no reply in 1 s"]


def test_the_cluster_dns_is_asked_a_dns_question_on_port_53_and_its_answer_judged():
    svc = [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}]
    probes = [p for p in build_matrix(lab(services=svc)) if p.destination.name == "kube-dns" and p.proto != "icmp"]
    assert {(p.proto, p.port) for p in probes} == {("tcp", 53), ("udp", 53)}
    want = Question("kube-dns.kube-system.svc.cluster.local", "10.96.0.10")
    assert {p.question for p in probes} == {want}  # UDP and TCP: over TCP a connect proved only a listener
    udp = next(p for p in probes if p.proto == "udp")
    assert make_job(lab(services=svc), [udp], 1.0).tasks[0].question == want.name
    tcp = next(p for p in probes if p.proto == "tcp")
    task = make_job(lab(services=svc), [tcp], 1.0).tasks[0]
    assert (task.question, task.wait_reply) == (want.name, True)  # it waits for the answer, not the connect alone
    # Its answer must hold the Service's ClusterIP; anything else, or silence, is a failure in words.
    assert judge(udp, Observation(outcome="reply", dns={"rcode": "NOERROR", "a": ["10.96.0.10"]}), 1.0, None) == []
    (wrong,) = judge(udp, Observation(outcome="reply", dns={"rcode": "NXDOMAIN", "a": []}), 1.0, None)
    assert wrong == ("asked A kube-dns.kube-system.svc.cluster.local, the cluster DNS answered NXDOMAIN, "
                     "not A 10.96.0.10")
    (other,) = judge(udp, Observation(outcome="reply", dns={"rcode": "NOERROR", "a": ["10.96.0.11"]}), 1.0, None)
    assert other.endswith("answered NOERROR, A 10.96.0.11, not A 10.96.0.10")
    # a question that should be answered: silence is no reply, without the "proves nothing" of a deaf port
    assert judge(udp, Observation(outcome="timeout"), 1.0, None) == ["expected reachable, no reply in 1 s"]


def test_a_users_own_dnsmasq_is_not_asked_and_its_udp_left_out():
    """Only the add-on's dnsmasq answers the cluster's names; a pod's own DNS server on 53/UDP stays unprobed."""
    probes = build_matrix(dns_lab())
    assert all(p.question is None for p in probes)
    assert not [p for p in probes if (p.destination.name, p.proto, p.port) == ("fedora-2", "udp", 53)]


# --- egress to internet hosts -------------------------------------------------------------------

INTERNET = {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"},
            "hosts": [{"name": "example", "ip": "203.0.113.10"}]}


def test_egress_from_every_pod_to_every_internet_host():
    probes = build_matrix(lab(internet=INTERNET))
    eg = [p for p in probes if p.destination.name == "example"]
    pods = {p["name"] for p in DEMO["pods"]}
    want = {(s, proto, 8080) for s in pods for proto in ("tcp", "udp")}
    assert {(p.source.name, p.proto, p.port) for p in eg} == want
    assert all(p.section.startswith("egress ") and p.echo and p.rules[0].allowed == ("203.0.113.1",) for p in eg)
    assert not [p for p in build_matrix(lab(internet=INTERNET), egress=False) if p.destination.name == "example"]
    assert not [p for p in build_matrix(lab(internet=INTERNET), protos=["icmp", "tcp"]) if p.proto == "udp"]


def test_egress_judged_by_the_gateway_rule():
    probes = {p.key: p for p in build_matrix(lab(internet=INTERNET))}
    p = probes[("fedora-1", "example", "tcp", 8080)]
    ok = Observation(outcome="reply", local="10.244.0.2:40000", seen_client="203.0.113.1:1234",
                     server="203.0.113.10:8080", answered_by="example")
    assert judge(p, ok, 1.0, "10.244.0.2") == []
    leak = Observation(outcome="reply", local="10.244.0.2:40000", seen_client="10.244.0.2:40000",
                       server="203.0.113.10:8080", answered_by="example")
    (problem,) = judge(p, leak, 1.0, "10.244.0.2")
    assert problem.startswith("NAT: example saw the client as 10.244.0.2, expected 203.0.113.1 (egress is masqueraded")
    other = Observation(outcome="reply", seen_client="203.0.113.1:1", server="203.0.113.10:8080", answered_by="x")
    assert "answered by x, not example" in judge(p, other, 1.0, "10.244.0.2")


def test_expect_overrides_an_egress_probe_and_keeps_its_rules():
    exp = [{"from": "fedora-1", "to": "example", "proto": "tcp", "port": 8080, "reach": False},
           {"from": "minikube", "to": "example", "proto": "tcp", "port": 8080, "reach": True}]
    probes = {p.key: p for p in build_matrix(lab(internet=INTERNET, expect=exp))}
    blocked = probes[("fedora-1", "example", "tcp", 8080)]
    assert blocked.expected is False and blocked.reason == "expect[0]" and blocked.section.startswith("egress")
    # A node's connection to the internet is masqueraded by the gateway too.
    node = probes[("minikube", "example", "tcp", 8080)]
    assert node.rules and node.rules[0].allowed == ("203.0.113.1",) and node.echo is True


def test_a_udp_port_a_command_serves_is_left_out_and_said_so():
    """A declared UDP port that a pod's own command serves (not the echo server, not the cluster DNS) is not
    probed, since its silence proves nothing; the run says so, for exactly those ports."""
    from netlab.probe.runner import unprobed_notes

    pods = [dict(p) for p in DEMO["pods"]]
    pods[2]["containers"] = [{"name": "syslog", "command": ["sleep", "infinity"],
                              "ports": [{"containerPort": 514, "protocol": "UDP"},
                                        {"containerPort": 601, "protocol": "TCP"}]}]
    mine = lab(pods=pods)
    probes = build_matrix(mine)
    assert {(p.proto, p.port) for p in probes if p.destination.name == "fedora-3" and p.proto != "icmp"} == \
        {("tcp", 601)}
    assert unprobed_notes(mine, ["udp"]) == [
        "fedora-3 udp/514: not probed: its own command serves it, not netlab's echo server, and a silent UDP server "
        "cannot be told from a lost packet (TCP is probed on every declared port: a connect is proof)"]
    assert unprobed_notes(mine, ["tcp", "icmp"]) == []
