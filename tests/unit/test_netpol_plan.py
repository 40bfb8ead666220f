"""The policy chains in each node's filter table (plan/policy.py), the probe's expectations,
the trace's words, and the CLI's table, all without root."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cli_inprocess import run_cli
from netpol_cases import CASES, model

from netlab.api.topology import load
from netlab.errors import netlab_command
from netlab.model.netpol import policy_set
from netlab.plan.build import build_plan
from netlab.plan.policy import FORWARD_CHAIN, pod_chain, policy_chain
from netlab.probe.matrix import build_matrix
from netlab.probe import bypass
from netlab.probe.policytable import evaluate
from netlab.probe.services import build as build_services
from netlab.trace import policy as tpolicy
from netlab.trace.targets import Endpoint

BY_NAME = {c["name"]: c for c in CASES}


def filters(policies: list[dict], services: list[dict] | None = None, name: str = "npp"):
    lab = load(model(name, policies, services)).lab
    return lab, {r.netns.split("-", 1)[1]: r for r in build_plan(lab).of_kind("nat") if r.table == "filter"}


def test_no_policy_no_chain_and_the_payload_is_unchanged():
    _, f = filters([])
    for res in f.values():
        assert not [c for c in res.chains if c.startswith("NETPOL-")]
        assert "NETPOL" not in res.payload


def test_policy_chains_only_on_nodes_of_selected_pods_and_first_in_forward():
    lab, f = filters(BY_NAME["pods-or-namespace-OR"]["policies"])
    ps = policy_set(lab)
    xa = ps.pod("x-a")  # on n1
    assert pod_chain("ingress", xa) in f["n1"].chains and FORWARD_CHAIN in f["n1"].chains
    assert not [c for c in f["n2"].chains if c.startswith("NETPOL-")]
    forward = [r for r in f["n1"].rules if r.startswith("-A FORWARD ")]
    assert forward[0] == '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'
    chain = policy_chain("ingress", lab.topo.network_policies[0])
    mine = [r for r in f["n1"].rules if r.startswith(f"-A {chain} ")]
    # Peer 1: the three pods of namespace y; peer 2: x-b (podSelector alone: the policy's namespace).
    assert [r.split()[3] for r in mine] == ["10.244.0.21/32", "10.244.1.22/32", "10.244.0.23/32", "10.244.1.12/32"]
    assert all(r.endswith("-j MARK --set-xmark 0x10000/0x10000") for r in mine)
    pod = [r for r in f["n1"].rules if r.startswith(f"-A {pod_chain('ingress', xa)} ")]
    assert pod[-2].endswith("-j REJECT --reject-with icmp-port-unreachable") and "! --mark 0x10000/0x10000" in pod[-2]
    assert pod[-1] == f"-A {pod_chain('ingress', xa)} -j MARK --set-xmark 0x0/0x10000"
    stateful = [r for r in f["n1"].rules if r.startswith(f"-A {FORWARD_CHAIN} ")][0]
    assert stateful == f"-A {FORWARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"


def test_named_port_resolved_per_pod_and_except_chain():
    _, f = filters(BY_NAME["named-port-udp"]["policies"] + BY_NAME["ipBlock-except-ingress"]["policies"])
    rules = "\n".join(f["n1"].rules)
    assert ("-d 10.244.0.11/32 -p udp -m udp --dport 80 -m comment --comment \"x/serve-80-udp-only ingress rule 1 "
            "any peer\" -j MARK --set-xmark 0x10000/0x10000") in rules
    assert "-s 10.244.1.0/24 -m comment --comment \"x/from-n1-block ingress rule 1 peer 1 except\" -j RETURN" in rules


def test_editing_one_policy_changes_only_its_chain():
    allow = BY_NAME["allow-from-namespace"]["policies"][0]
    other = BY_NAME["default-deny-egress"]["policies"][0]
    _, before = filters([allow, other])
    edited = {**allow, "spec": {**allow["spec"], "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"ns": "z"}}}]}]}}
    lab, after = filters([edited, other])

    def by_chain(res):
        out: dict[str, list[str]] = {}
        for r in res.rules:
            out.setdefault(r.split()[1], []).append(r)
        return out

    b, a = by_chain(before["n1"]), by_chain(after["n1"])
    changed = {c for c in set(a) | set(b) if a.get(c) != b.get(c)}
    assert changed == {policy_chain("ingress", lab.topo.network_policies[0])}


def test_probe_matrix_expects_the_evaluator_and_expect_overrides():
    topo = model("npp", BY_NAME["default-deny-ingress"]["policies"])
    topo["expect"] = [{"from": "y-a", "to": "x-a", "proto": "tcp", "port": 80, "reach": True}]
    lab = load(topo).lab
    probes = {p.key: p for p in build_matrix(lab)}
    assert probes[("y-b", "x-a", "tcp", 80)].expected is False
    assert "x/deny-all-ingress" in probes[("y-b", "x-a", "tcp", 80)].reason
    assert probes[("y-a", "x-a", "tcp", 80)].expected is True  # expect: still wins
    assert probes[("n1", "x-a", "icmp", None)].expected is True  # its own node
    assert probes[("n2", "x-a", "icmp", None)].expected is False  # another node is an address


SERVICE = [{"name": "web", "namespace": "x", "selector": {"pod": "a"}, "ports": [{"port": 80}]},
           {"name": "all", "namespace": "y", "selector": {}, "ports": [{"port": 81}]}]


def test_service_probes_are_judged_at_the_endpoints():
    topo = model("npp", BY_NAME["allow-from-namespace"]["policies"], SERVICE)
    lab = load(topo).lab
    plan = build_services(lab)
    web = {p.source.name: p.expected for p in plan.probes if p.svc and p.svc.service == "web"
           and p.svc.kind == "ClusterIP"}
    assert web["y-b"] is True and web["z-a"] is False
    assert web["x-a"] is True  # hairpin to itself: never judged, although x-a is not in namespace y
    # One endpoint and no LoadBalancer: the isolation kept nothing from being probed, and nothing is said of it
    assert not [n for n in plan.notes if n.startswith("svc/web ")]


def test_service_with_some_endpoints_allowed_is_not_probed():
    svc = [{"name": "web", "namespace": "y", "selector": {"app": "web"}, "ports": [{"port": 80}]}]
    pol = [{"name": "only-a", "namespace": "y", "spec": {"podSelector": {"matchLabels": {"pod": "b"}},
                                                          "ingress": []}}]
    topo = model("npp", pol, svc)
    for pod in topo["pods"]:
        if pod["namespace"] == "y":
            pod["labels"]["app"] = "web"
    lab = load(topo).lab
    plan = build_services(lab)
    assert not [p for p in plan.probes if p.svc and p.svc.service == "web" and p.source.name == "z-a"]
    assert any(n.startswith("z-a -> svc/web tcp/80: not probed: policies allow y-a, y-c") for n in plan.notes)


@pytest.mark.parametrize("case", ["default-deny-ingress", "default-deny-egress", "default-deny-both"])
def test_hairpin_through_service_is_expected_to_reach_and_the_kernel_lets_it_pass(case):
    """A pod's connection to its own Service, DNATed back to it, was expected refused under its own default-deny
    (and the kernel refused it); a pod is not judged reaching itself: probe expects it, FORWARD returns it."""
    lab = load(model("npp", BY_NAME[case]["policies"], SERVICE[:1])).lab
    plan = build_services(lab)
    hairpin = next(p for p in plan.probes if p.svc and p.svc.service == "web" and p.source.name == "x-a")
    assert hairpin.expected is True
    assert hairpin.reason == "service; policy: x/x-a reaches itself through a Service (hairpin): never judged"
    other = next(p for p in plan.probes if p.svc and p.svc.service == "web" and p.source.name == "x-b")
    assert other.expected is False  # x-b to x-a through the Service: judged as ever
    xa = lab.pod("x-a")
    forward = [r for r in build_plan(lab).of_kind("nat") if r.table == "filter" and r.netns.endswith("-n1")][0]
    rules = [r for r in forward.rules if r.startswith(f"-A {FORWARD_CHAIN} ")]
    hairpin_rule = (f'-A {FORWARD_CHAIN} -s {xa.ip}/32 -d {xa.ip}/32 -m comment --comment "x/x-a reaches itself '
                    'through a Service" -j RETURN')
    # after the established flows, before any pod's chain
    assert rules[0].endswith("--ctstate RELATED,ESTABLISHED -j RETURN") and hairpin_rule in rules
    assert rules.index(hairpin_rule) < min(i for i, r in enumerate(rules) if "-j NETPOL-" in r)


def test_trace_words_name_the_node_chain_and_policy():
    lab = load(model("npp", BY_NAME["default-deny-ingress"]["policies"])).lab
    xa = lab.pod("x-a")
    src = Endpoint("y-b", "pod", str(lab.pod("y-b").ip), lab.pod("y-b").netns)
    dst = Endpoint("x-a", "pod", str(xa.ip), xa.netns, port=80)
    chain = pod_chain("ingress", policy_set(lab).pod("x-a"))
    entries = tpolicy.story(lab, src, dst, "tcp", 80, None, {}, {(lab.node("n1").netns, chain): 1})
    assert entries[0]["text"] == (f"dropped in node n1, chain {chain}, by policy x/deny-all-ingress (no ingress "
                                  "rule allows it for pod x/x-a); the kernel's REJECT rule there counted it")
    assert entries[0]["counted"] is True
    ok = tpolicy.story(lab, Endpoint("x-b", "pod", "", ""), Endpoint("y-a", "pod", "", "", port=80), "tcp", 80,
                       None, {}, {})
    assert ok[0]["allowed"] and ok[0]["text"] == "no policy selects y/y-a for ingress: allowed"


def test_a_service_whose_selector_matches_pods_of_other_namespaces_only_has_no_endpoints(tmp_path):
    """Kubernetes accepts Service x/web selecting app=a when the a pods are in default: it has no endpoints, and
    kube-proxy rejects it. validate refused it (exit 2); it is a note now, as a selector that matches nothing, with
    the REJECT rule, and probe expects it refused."""
    from netlab.plan.services import node_filter, service_ports

    path = tmp_path / "t.yaml"
    path.write_text("name: npp\nnodes: [{name: n1}]\npods:\n  - {name: a, node: n1, labels: {app: a}}\n"
                    "  - {name: b, node: n1, namespace: x}\n"
                    "services:\n  - name: web\n    namespace: x\n    selector: {app: a}\n    ports: [{port: 8080}]\n")
    proc = run_cli("validate", "-t", str(path))
    assert proc.returncode == 0, proc.stderr
    assert (f"netlab: note: {path}:9: services[0].selector: service x/web port 8080/TCP: no pod of namespace x "
            "has the labels app=a (default/a "
            "matches, in other namespaces: a Service selects pods of its own namespace only): no endpoints, so "
            "kube-proxy rejects its connections") in proc.stderr
    lab = load(str(path)).lab
    web = lab.find_service("x/web")
    sps = [sp for sp in service_ports(lab) if sp.svc is web]
    assert [sp.endpoints for sp in sps] == [()]
    reject = (f'-A KUBE-SERVICES -m comment --comment "x/web has no endpoints" -m tcp -p tcp '
              f"-d {lab.cluster_ip(web)} --dport 8080 -j REJECT")
    assert reject in node_filter(lab, sps).body
    probes = [p for p in build_services(lab).probes if p.svc and p.svc.namespace == "x"]
    assert probes and all(p.expected is False and p.reason == "service without endpoints" for p in probes)


def test_cli_policy_table_no_probe_json_and_text(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(model("npp", BY_NAME["default-deny-ingress"]["policies"])))
    proc = run_cli("policy", "table", "-t", str(path), "--no-probe", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["probed"] is False and len(data["flows"]) == 324 and data["mismatches"] == 0
    assert data["lab"] == "npp"  # the lab's name, as every command's JSON gives it
    denied = {(f["from"], f["to"]) for f in data["flows"] if not f["allowed"] and f["proto"] == "tcp" and f["port"] == 80}
    assert ("y-a", "x-a") in denied and ("x-a", "x-a") not in denied and len(denied) == 24
    proc = run_cli("policy", "table", "-t", str(path), "--no-probe")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["tcp/80", "x-a", "x-b", "x-c", "y-a", "y-b", "y-c", "z-a", "z-b", "z-c"]
    assert lines[4].split() == ["y-a", "X", "X", "X", ".", ".", ".", ".", ".", "."]


def test_evaluated_table_counts():
    table = evaluate(load(model("npp", [])).lab)
    assert len(table.flows) == 324 and all(f.allowed for f in table.flows)


def test_graph_policy_draws_an_arrow_per_allowed_pair(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(model("npp", BY_NAME["allow-from-namespace"]["policies"])))
    proc = run_cli("graph", "-t", str(path), "--policy")
    assert proc.returncode == 0, proc.stderr
    arrows = [line.split() for line in proc.stdout.splitlines() if "==>" in line]
    pairs = {(a[0], a[-1]) for a in arrows}
    assert len(pairs) == 72 - 5  # into x-a only from y's three pods (and x-a itself, never drawn)
    assert ("pod_y_b", "pod_x_a") in pairs and ("pod_z_b", "pod_x_a") not in pairs
    assert 'subgraph ns_x ["namespace x"]' in proc.stdout


EGRESS_TOPO = {
    "name": "npi", "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}}, {"name": "b", "node": "n2", "labels": {"app": "b"}}],
    "internet": {"hosts": [{"name": "example", "ip": "203.0.113.10"}]},
    "networkPolicies": [{"name": "a-out", "spec": {
        "podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]}}],
}


def test_egress_to_internet_hosts_is_judged_by_the_pods_egress_rules():
    probes = {p.key: p for p in build_matrix(load(EGRESS_TOPO).lab)}
    assert probes[("a", "example", "tcp", 8080)].expected is True
    assert probes[("a", "example", "udp", 8080)].expected is False  # the rule names TCP only
    assert probes[("a", "b", "tcp", 8080)].expected is False
    assert probes[("b", "example", "udp", 8080)].expected is True
    assert probes[("b", "a", "tcp", 8080)].expected is True


TWINS = [{"name": "web", "namespace": "x", "selector": {"pod": "a"}, "ports": [{"port": 80}]},
         {"name": "web", "namespace": "y", "selector": {"pod": "a"}, "ports": [{"port": 80}]}]


def test_two_services_of_one_name_in_two_namespaces():
    from netlab.errors import UsageError
    from netlab.model.clusterdns import fqdn
    from netlab.plan.services import service_ports
    from netlab.trace.targets import resolve_source, resolve_target

    lab = load(model("npp", [], TWINS)).lab
    wx, wy = lab.services[0], lab.services[1]
    assert lab.cluster_ip(wx) != lab.cluster_ip(wy)
    assert (fqdn(wx), fqdn(wy)) == ("web.x.svc.cluster.local", "web.y.svc.cluster.local")
    sps = [sp for sp in service_ports(lab) if sp.svc.name == "web"]
    assert [sp.name for sp in sps] == ["x/web", "y/web"] and sps[0].svc_chain != sps[1].svc_chain
    assert [[str(ip) for ip, _ in sp.endpoints] for sp in sps] == [["10.244.0.11"], ["10.244.0.21"]]
    assert (lab.service_ref(wx), lab.service_ref(lab.services[-1])) == ("x/web", "kube-dns")
    from_x = resolve_source(lab, "x-b")
    assert resolve_target(lab, "svc/web", None, None, from_x).ip == str(lab.cluster_ip(wx))  # its own namespace
    assert resolve_target(lab, "svc/y/web", None, None, from_x).ip == str(lab.cluster_ip(wy))
    with pytest.raises(UsageError, match="^namespace z has no Service web; name it svc/x/web or svc/y/web$"):
        resolve_target(lab, "svc/web", None, None, resolve_source(lab, "z-a"))
    with pytest.raises(UsageError, match="2 namespaces have a Service .web.; name one: svc/NAMESPACE/web"):
        resolve_target(lab, "svc/web", None, None, resolve_source(lab, "n1"))  # a node: no search path
    labels = {p.svc.label for p in build_services(lab).probes if p.svc and p.source.name == "z-a"}
    assert {lbl.split()[0] for lbl in labels} >= {"svc/x/web", "svc/y/web"}


def test_trace_words_a_denied_flow_the_bridge_switched_past_iptables():
    """With bridge-nf-call-iptables = 0 a node's bridge switches pod-to-pod frames without iptables, so the policy
    chains in FORWARD never see them and a denied flow connects: trace says so, and how to mend it, rather than
    "the REJECT rule counted nothing: look at the filter table". A flow from another node is routed through FORWARD,
    where the REJECT counted nothing: not stopped either (trace exits 1), the node's table to look at."""
    lab = load(model("npp", BY_NAME["default-deny-ingress"]["policies"])).lab
    n1 = lab.node("n1").netns
    xa = lab.pod("x-a")
    dst = Endpoint("x-a", "pod", str(xa.ip), xa.netns, port=80)
    chain = pod_chain("ingress", policy_set(lab).pod("x-a"))
    for src, bypassed in (("z-a", True), ("z-b", False)):
        e = tpolicy.story(lab, Endpoint(src, "pod", str(lab.pod(src).ip), lab.pod(src).netns), dst, "tcp", 80, None,
                          {(n1, chain): 3}, {(n1, chain): 3}, {n1})[0]
        assert not e["allowed"] and not e["counted"]
        if bypassed:
            assert e["text"] == (f"denied by policy x/deny-all-ingress (no ingress rule allows it for pod x/x-a), but "
                                 f"NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0 in {n1}, so its bridge switches "
                                 "the frame from pod to pod without handing it to iptables, and the rules in node "
                                 f"n1's chain {chain} never see it")
            assert e["fix"] == f"ip netns exec {n1} sysctl -w net.bridge.bridge-nf-call-iptables=1"
        else:
            # Routed through FORWARD, and the REJECT counted nothing: not stopped either (trace fails), with no cause
            # to name (no table read here).
            assert e["text"].endswith(f"but NOT STOPPED: the kernel's REJECT in node n1's chain {chain} counted "
                                      f"nothing: look at the node's filter table (ip netns exec {n1} iptables-save "
                                      "-c)") and "fix" not in e, e["text"]
        assert e["stopped"] is False


def test_kube_proxy_nftables_mode_keeps_the_policy_chains():
    """The nftables mode's plan wrote Flannel's filter rules alone: no policy was enforced in such a lab."""
    policies = BY_NAME["default-deny-ingress"]["policies"]
    for mode in ("iptables", "nftables"):
        lab = load({**model("npp", policies, SERVICE[:1]), "cluster": {"kubeProxyMode": mode}}).lab
        filt = {r.netns.split("-", 1)[1]: r for r in build_plan(lab).of_kind("nat") if r.table == "filter"}
        for node in ("n1", "n2"):
            assert f"-A FORWARD -m comment --comment \"netlab network policies\" -j {FORWARD_CHAIN}" in \
                filt[node].payload, (mode, node)
            assert pod_chain("ingress", policy_set(lab).pod("x-b" if node == "n2" else "x-a")) in filt[node].payload


def test_policy_table_names_the_node_whose_bridge_skips_iptables():
    """Denied flows that got through between two pods of a node whose bridge-nf-call-iptables is 0: one hint for
    that node, with the fix and a trace to run; none for a node whose bridge passes frames to iptables, nor for
    flows between nodes (something else let those through)."""
    lab = load(model("npp", BY_NAME["default-deny-ingress"]["policies"])).lab
    table = evaluate(lab)
    for f in table.flows:
        f.reached = f.allowed or f.dst in ("x-a", "x-b")  # x-a (on n1) and x-b (on n2) reached by everyone
    n1, n2 = lab.node("n1").netns, lab.node("n2").netns
    same = [f for f in table.flows if f.dst == "x-a" and not f.allowed and lab.pod(f.src).node == "n1"]
    opened = [(f.src, f.dst, f.proto, f.port) for f in table.flows if f.reached and not f.allowed]
    hints = bypass.hints(lab, opened, {n1})
    assert len(hints) == 1 and hints[0].startswith(f"{len(same)} denied flows between pods of node n1 got through: "
                                                   "its net.bridge.bridge-nf-call-iptables is 0")
    assert f"fix: ip netns exec {n1} sysctl -w net.bridge.bridge-nf-call-iptables=1" in hints[0]
    trace = netlab_command(f"trace --lab {lab.name} {same[0].src} x-a --proto {same[0].proto} --port {same[0].port}")
    assert f"see: {trace})" in hints[0]
    assert bypass.hints(lab, opened, set()) == []
    assert [h.split(":")[0] for h in bypass.hints(lab, opened, {n2})] == [
        f"{len([f for f in table.flows if f.dst == 'x-b' and not f.allowed and lab.pod(f.src).node == 'n2'])} "
        "denied flows between pods of node n2 got through"]
    assert "hint: " + hints[0] in dataclasses.replace(table, hints=hints).render()


@pytest.mark.parametrize("output", ["text", "json"])
def test_cli_policy_table_of_a_lab_without_pods_says_so_in_one_line(tmp_path, output):
    """A lab with no pods has no table: one line naming the lab, exit 2, as `probe` says (it was a traceback,
    `max() arg is an empty sequence`, exit 1, in text); -o json: that line in the error document on stdout."""
    path = tmp_path / "nopods.yaml"
    path.write_text("name: qf06\nnodes: [{name: n1}]\n")
    proc = run_cli("policy", "table", "--no-probe", "-t", str(path), "-o", output)
    said = "nothing to tabulate in lab qf06: lab qf06 has no pods (the table's rows and columns are pods)"
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" if output == "text" else json.loads(proc.stdout)["error"] == said
    assert proc.stderr.splitlines() == [f"netlab: {said}"]


def test_table_of_no_pods_renders_without_a_crash():
    assert evaluate(load({"name": "qf07", "nodes": [{"name": "n1"}]}).lab).render().startswith(". allowed")
