"""The break catalogue is complete, well-formed data; the quiz's pick depends only on its seed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from netlab.breaks import catalogue, quiz, symptoms
from netlab.api.topology import load
from netlab.plan.build import build_plan
from netlab.plan.resources import Address
from netlab.trace.targets import resolve_source, resolve_target

FIELDS = ("name", "breaks", "target", "change", "symptom", "hop", "fact", "fix", "lesson")


def _lab(path: str | dict | None):
    return load(path).lab


def test_every_scenario_is_complete():
    assert len(catalogue.SCENARIOS) >= 13
    for s in catalogue.SCENARIOS:
        for f in FIELDS:
            assert isinstance(getattr(s, f), str) and getattr(s, f).strip(), f"{s.name}: {f} is empty"
        assert s.target in ("node", "pod"), s.name
        assert set(s.needs) <= set(catalogue.NEEDS), s.name
        assert s.example in ("", catalogue.SERVICES_EXAMPLE, f"{catalogue.SERVICES_EXAMPLE} or "
                                                           f"{catalogue.NETPOL_EXAMPLE}"), s.name
        json.dumps(s.to_json())


def test_names_unique_and_well_formed():
    names = [s.name for s in catalogue.SCENARIOS]
    assert len(names) == len(set(names))
    for n in names:
        assert catalogue.NAME.match(n), n
    assert catalogue.scenario("vxlan-arp-missing") is catalogue.SCENARIOS[0]
    assert catalogue.scenario("no-such-thing") is None


def test_every_scenario_has_a_change_a_symptom_and_a_trace():
    from netlab.breaks.changes import CHANGES, command_of

    assert set(CHANGES) == {s.name for s in catalogue.SCENARIOS}
    default, services = _lab(None), _lab("topologies/services.yaml")
    for s in catalogue.SCENARIOS:
        lab = services if s.example else default
        assert catalogue.why_not(s, lab) is None, s.name
        target = catalogue.resolve_target(s, lab, None)
        steps = CHANGES[s.name](lab, __import__("netlab.plan.build", fromlist=["x"]).build_plan(lab), target)
        assert steps, s.name
        for step in steps:  # what `netlab break` prints: the command a person would type
            text = command_of(step)
            assert text.startswith(("ip ", "bridge ", "stop the containers of pod ", "conntrack entry in ")), \
                (s.name, text)
        check = symptoms.trace_check(s, lab, target)
        assert check.src and check.dst
        rule = symptoms.expect(s, lab, target)
        assert rule({"source": "x", "destination": "y", "protocol": "icmp", "port": None, "service": None}) \
            in ("pass", "fail", "any")


WEB = {"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
WEB_POD = {"name": "w", "node": "n1", "labels": {"app": "web"},
           "containers": [{"name": "http", "ports": [{"containerPort": 8080}]}]}
SHAPES = {
    "default": None, "services": "topologies/services.yaml", "host-gw-3node": "topologies/host-gw-3node.yaml",
    "vxlan-3node": "topologies/vxlan-3node.yaml",
    "one node, two pods": {"name": "s1", "network": {"mode": "host-gw"}, "nodes": [{"name": "n1"}],
                           "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]},
    "one node, one pod": {"name": "s2", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]},
    "two nodes, pods on one": {"name": "s3", "nodes": [{"name": "n1"}, {"name": "n2"}],
                               "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]},
    "a Service, one node, its endpoint alone": {"name": "v1", "nodes": [{"name": "n1"}], "pods": [WEB_POD],
                                                "services": [WEB]},
    "a Service, all pods on the second node": {"name": "v2", "nodes": [{"name": "n1"}, {"name": "n2"}],
                                               "pods": [{**WEB_POD, "node": "n2"}, {"name": "c", "node": "n2"}],
                                               "services": [WEB]},
    "a Service without a selector": {"name": "v3", "nodes": [{"name": "n1"}, {"name": "n2"}],
                                     "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n2"}],
                                     "services": [{"name": "ext", "ports": [{"port": 80}]}]},
    "NetworkPolicies": "topologies/netpol-3x3.yaml",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_scenario_that_applies_has_a_trace_for_every_target(shape):
    """What `quiz answer` traces, for each scenario the quiz may pick on a lab of this shape and each target
    `break --target` takes: two ends the lab has, not the same (bridge-port-down on a lab of one node looked for a
    pod on another node: a StopIteration traceback); a node's fault is traced across the pod network, to a pod or
    a podless node's address in its pod CIDR, never node to node (the underlay, which no scenario breaks): its cni0's
    once a pod ran there, flannel.1's before (a node has no cni0 before its first pod)."""
    lab = _lab(SHAPES[shape])
    names = {p.name for p in lab.pods} | {n.name for n in lab.nodes} | {f"svc/{s.name}" for s in lab.services}
    names |= {f"svc/{s.namespace}/{s.name}" for s in lab.services}
    names |= {str(n.gateway.ip) if n.name in lab.bridge_nodes() else str(n.vtep_ip)
              for n in lab.nodes if not lab.pods_on(n.name) and (n.name in lab.bridge_nodes() or lab.mode == "vxlan")}
    nodes = {n.name for n in lab.nodes}
    held = {str(r.address.ip) for r in build_plan(lab).resources if isinstance(r, Address)}
    for s in quiz.candidates(lab):
        for item in lab.nodes if s.target == "node" else lab.pods:
            try:
                target = catalogue.resolve_target(s, lab, item.name)
            except ValueError:
                continue  # not a target of this scenario (an endpoint pod, the DNS pod ...)
            check = symptoms.trace_check(s, lab, target)
            assert {check.src, check.dst} <= names and check.src != check.dst, (s.name, item.name, check)
            assert not {check.src, check.dst} <= nodes, (s.name, item.name, check)
            if check.dst[0].isdigit():  # an address the lab's plan holds (a node has no cni0 before its first pod)
                assert check.dst in held, (s.name, item.name, check)
            if check.dst.startswith("svc/"):  # a Service the client names as trace takes it (its own namespace's)
                resolve_target(lab, check.dst, check.proto, check.port, resolve_source(lab, check.src))


def test_a_node_that_cannot_show_a_service_scenario_is_refused_in_one_line():
    """kube-services-jump-missing breaks the Service path of a node's pods: on a node with none (the DNS pod
    aside) it would show nothing, and the quiz's trace found no client (a StopIteration traceback). Such a target
    is refused, naming the nodes that fit; a lab where none fits is refused by why_not, so the quiz skips it."""
    lab = _lab(SHAPES["a Service, all pods on the second node"])
    s = catalogue.scenario("kube-services-jump-missing")
    assert catalogue.default_target(s, lab) == "n2"
    with pytest.raises(ValueError) as err:
        catalogue.resolve_target(s, lab, "n1")
    assert str(err.value).endswith("node n1 is not one (nodes that are: n2)") and "\n" not in str(err.value)
    alone = _lab(SHAPES["a Service, one node, its endpoint alone"])
    why = catalogue.why_not(catalogue.scenario("conntrack-stale-entry"), alone)
    assert why is not None and "needs a client pod that is no Service's endpoint" in why
    assert "conntrack-stale-entry" not in {c.name for c in quiz.candidates(alone)}


def _svc_row(src: str, via: str, node: str | None = None, name: str = "web", proto: str = "tcp") -> dict:
    eps = [{"pod": "kube-dns", "ip": "10.244.0.4", "port": 53}] if name == "kube-dns" else \
        [{"pod": "web-1", "ip": "10.244.0.2", "port": 8080}, {"pod": "web-2", "ip": "10.244.1.2", "port": 8080}]
    return {"source": src, "destination": name if via != "NodePort" else node, "protocol": proto,
            "service": {"name": name, "via": via, "node": node, "endpoints": eps}}


@pytest.mark.parametrize("scenario, target, row, want", [
    # A ClusterIP connection is routed by the client's node even to a pod of its own bridge.
    ("ip-forward-off", "node-1", _svc_row("client", "ClusterIP"), "fail"),
    ("ip-forward-off", "node-1", _svc_row("web-2", "ClusterIP"), "any"),  # only web-1's pick crosses node-1
    # A pod's connection DNATed back to itself (hairpin) and what reached a NodePort are marked for masquerade:
    # kube-proxy's KUBE-FORWARD accepts them whatever the FORWARD chain's policy; a pod's other flows are dropped.
    ("forward-policy-drop", "node-1", _svc_row("kube-dns", "ClusterIP", name="kube-dns"), "pass"),
    ("ip-forward-off", "node-1", _svc_row("kube-dns", "ClusterIP", name="kube-dns"), "fail"),
    ("forward-policy-drop", "node-1", _svc_row("web-1", "ClusterIP"), "any"),
    ("forward-policy-drop", "node-1", _svc_row("client", "ClusterIP"), "fail"),
    ("forward-policy-drop", "node-1", _svc_row("example", "NodePort", "node-1"), "pass"),
    ("ip-forward-off", "node-1", _svc_row("example", "NodePort", "node-1"), "fail"),
    # A node's own connection to another node's NodePort comes back to it when the endpoint is its pod.
    ("ip-forward-off", "node-1", _svc_row("node-1", "NodePort", "node-2"), "any"),
    ("ip-forward-off", "node-1", _svc_row("node-1", "NodePort", "node-1"), "pass"),
    # The overlay between the two nodes: every endpoint on the other side of it.
    ("vxlan-arp-missing", "node-1", _svc_row("node-1", "NodePort", "node-1"), "any"),
    ("vxlan-arp-missing", "node-2", _svc_row("web-2", "ClusterIP", name="kube-dns"), "fail"),
    ("vxlan-arp-missing", "node-1", _svc_row("example", "LoadBalancer"), "any"),
    ("bridge-port-down", "web-2", _svc_row("client", "ClusterIP"), "any"),
    ("bridge-port-down", "web-2", _svc_row("web-2", "ClusterIP", name="kube-dns"), "fail"),
    # Out to the internet: the pod's node routes it.
    ("ip-forward-off", "node-1", {"source": "client", "destination": "example", "protocol": "tcp"}, "fail"),
    ("ip-forward-off", "node-2", {"source": "client", "destination": "example", "protocol": "tcp"}, "pass"),
])
def test_node_faults_meet_service_and_internet_flows_where_their_packets_go(scenario, target, row, want):
    """What probe shows of Service and internet flows after a node's fault, on the Services example: each
    endpoint kube-proxy may pick is a path of its own ("any": some fail). Checked for real, every flow, by
    test_break_services.py::test_break_services_lab_by_a_node_fault."""
    lab = _lab(catalogue.SERVICES_EXAMPLE)
    s = catalogue.scenario(scenario)
    assert symptoms.expect(s, lab, catalogue.resolve_target(s, lab, target))(row) == want


def test_services_scenarios_refused_on_the_default_lab():
    default = _lab(None)
    for s in catalogue.SCENARIOS:
        reason = catalogue.why_not(s, default)
        if s.example:
            assert reason and s.example in reason, s.name
        else:
            assert reason is None, s.name


def test_bad_target_is_one_line():
    default = _lab(None)
    s = catalogue.scenario("ip-forward-off")
    with pytest.raises(ValueError, match="no node 'fedora-1'"):
        catalogue.resolve_target(s, default, "fedora-1")
    assert catalogue.resolve_target(s, default, "minikube-m02").name == "minikube-m02"


def test_quiz_pick_is_seeded():
    default = _lab(None)
    picks = [quiz.pick(default, seed).name for seed in range(40)]
    assert picks == [quiz.pick(default, seed).name for seed in range(40)]  # the same seed, the same fault
    assert len(set(picks)) > 3  # and seeds spread over the catalogue
    assert all(catalogue.why_not(catalogue.scenario(p), default) is None for p in picks)
    services = _lab("topologies/services.yaml")
    assert len(quiz.candidates(services)) == len(catalogue.SCENARIOS)


def test_catalogue_is_plain_data():
    """Importing the catalogue loads no kernel, probe or trace code (a controller may import it)."""
    code = ("import sys; from netlab.breaks import catalogue; "
            "bad = [m for m in sys.modules if m.startswith(('netlab.kernel', 'netlab.trace', 'netlab.probe', "
            "'pyroute2', 'scapy'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_list_cli():
    out = subprocess.run([sys.executable, "-m", "netlab", "break", "--list"], capture_output=True, text=True)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert len(lines) == len(catalogue.SCENARIOS)
    for line, s in zip(lines, catalogue.SCENARIOS):
        assert line.split()[0] == s.name
    data = json.loads(subprocess.run([sys.executable, "-m", "netlab", "break", "--list", "-o", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    assert [d["name"] for d in data] == [s.name for s in catalogue.SCENARIOS]
    bad = subprocess.run([sys.executable, "-m", "netlab", "break", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "break --list" in bad.stderr and "Traceback" not in bad.stderr
    # A scenario beside --list was ignored, silently: said
    both = subprocess.run([sys.executable, "-m", "netlab", "break", "vxlan-arp-missing", "--list"],
                          capture_output=True, text=True)
    assert (both.returncode, both.stderr) == (2, "netlab: --list lists every scenario: give it no SCENARIO nor "
                                                 "--target\n")



@pytest.mark.parametrize("shape", SHAPES)
def test_what_a_scenario_needs_is_one_fact_for_the_list_its_json_and_the_refusal(shape):
    """bridge-nf-call-off was `"needs": []` in -o json but `[needs topologies/services.yaml ...]` in the text and
    refused on the default lab; the VXLAN scenarios were marked in JSON only and refused on a host-gw lab. Both
    come from the catalogue's needs now: a scenario refused on some lab says what it needs, in both."""
    from cli_inprocess import run_cli

    text = run_cli("break", "--list").stdout.splitlines()
    data = json.loads(run_cli("break", "--list", "-o", "json").stdout)
    lab = _lab(SHAPES[shape])
    for line, d, s in zip(text, data, catalogue.SCENARIOS):
        said = line.partition("  [needs ")[2].removesuffix("]").partition(": topologies/")[0]
        assert said == d["needs_words"] == ", ".join(catalogue.NEEDS[n] for n in d["needs"]), s.name
        why = catalogue.why_not(s, lab)
        assert why is None or d["needs"], f"{s.name} is refused on {shape} but needs nothing: {why}"

def test_scenario_names_complete():
    env = {"COMP_WORDS": "netlab break vxlan-f", "COMP_CWORD": "2", "_NETLAB_COMPLETE": "bash_complete"}
    import os

    out = subprocess.run([sys.executable, "-m", "netlab"], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert out.stdout.split() == ["plain,vxlan-fdb-wrong-vtep"], out.stdout + out.stderr


def test_forward_policy_drop_in_nftables_mode_drops_what_kube_forward_accepts_in_iptables_mode(tmp_path):
    """kube-proxy's nftables table has no KUBE-FORWARD in iptables' filter table to accept what is marked for
    masquerade: under FORWARD's policy DROP a pod's hairpin and a NodePort's flows fail there too."""
    path = tmp_path / "svc-nft.yaml"
    path.write_text(open(catalogue.SERVICES_EXAMPLE, encoding="utf-8").read() + "cluster: {kubeProxyMode: nftables}\n")
    s = catalogue.scenario("forward-policy-drop")
    for lab, want in ((_lab(catalogue.SERVICES_EXAMPLE), "pass"), (_lab(str(path)), "fail")):
        verdict = symptoms.expect(s, lab, catalogue.resolve_target(s, lab, "node-1"))
        assert verdict(_svc_row("kube-dns", "ClusterIP", name="kube-dns")) == want
        assert verdict(_svc_row("example", "NodePort", "node-1")) == want
        assert verdict(_svc_row("client", "ClusterIP")) == "fail"  # not marked: dropped in both modes


@pytest.mark.parametrize("path, scenario, target, src, dst, want", [
    # host-gw: the peer node's own packets leave from its eth0 address, which needs no pod-CIDR route back.
    ("topologies/host-gw-3node.yaml", "pod-cidr-route-missing", "node-a", "node-b", "web-1", "pass"),
    ("topologies/host-gw-3node.yaml", "pod-cidr-route-missing", "node-a", "web-2", "web-1", "fail"),
    ("topologies/host-gw-3node.yaml", "pod-cidr-route-missing", "node-a", "node-a", "web-2", "fail"),
    ("topologies/vxlan-3node.yaml", "pod-cidr-route-missing", "n1", "n2", "a1", "fail"),  # from flannel.1's address
    # A VNI of its own cuts a node off from every other node; an FDB entry only from its peer.
    ("topologies/vxlan-3node.yaml", "vxlan-wrong-vni", "n1", "c1", "a1", "fail"),
    ("topologies/vxlan-3node.yaml", "vxlan-fdb-wrong-vtep", "n1", "c1", "a1", "pass"),
    ("topologies/vxlan-3node.yaml", "vxlan-fdb-wrong-vtep", "n1", "b1", "a1", "fail"),
])
def test_node_faults_on_other_shapes(path, scenario, target, src, dst, want):
    """What every probe row of these shapes showed after the fault, for real (the suite's shapes run fewer)."""
    lab = _lab(path)
    s = catalogue.scenario(scenario)
    row = {"source": src, "destination": dst, "protocol": "icmp"}
    assert symptoms.expect(s, lab, catalogue.resolve_target(s, lab, target))(row) == want


def test_a_service_without_endpoints_stays_as_it_was_after_a_node_fault():
    lab = _lab(catalogue.SERVICES_EXAMPLE)
    s = catalogue.scenario("ip-forward-off")
    row = {"source": "client", "destination": "web", "protocol": "tcp",
           "service": {"name": "web", "via": "ClusterIP", "node": None, "endpoints": []}}
    assert symptoms.expect(s, lab, catalogue.resolve_target(s, lab, "node-1"))(row) == "pass"


def _policy_lab(case: str):
    """The NetworkPolicy e2e model (x, y, z × a, b, c; b on n2) under one of its policy cases, with a Service (so
    the DNS pod too, on n1)."""
    from netpol_cases import CASES, model
    policies = next(c["policies"] for c in CASES if c["name"] == case)
    return _lab(model("npb", policies, [{"name": "svc-b", "namespace": "y", "selector": {"pod": "b"},
                                         "ports": [{"port": 80}]}]))


def _row(src: str, dst: str, reachable: bool, proto: str = "tcp") -> dict:
    return {"source": src, "destination": dst, "protocol": proto, "port": None if proto == "icmp" else 80,
            "expected": "reachable" if reachable else "unreachable"}


def test_a_flow_a_policy_denies_stays_denied_after_a_fault_unless_the_bridge_skips_iptables():
    """A fault stops flows and opens none, so a denied flow stays as expected (the oracle had it "fail": 60 rows of
    the netpol example wrong). One fault opens them: with bridge-nf-call-iptables = 0, the flows a policy denies
    between two pods of the node connect, since the policies' rules are in FORWARD (seen for real: 64 rows)."""
    lab = _policy_lab("default-deny-ingress")
    arp = catalogue.scenario("vxlan-arp-missing")
    verdict = symptoms.expect(arp, lab, catalogue.resolve_target(arp, lab, "n1"))
    assert verdict(_row("z-a", "x-b", False)) == "pass"
    assert verdict(_row("z-a", "y-b", True)) == "fail"
    brnf = catalogue.scenario("bridge-nf-call-off")
    verdict = symptoms.expect(brnf, lab, catalogue.resolve_target(brnf, lab, "n1"))
    assert verdict(_row("z-a", "x-a", False)) == "fail"  # both on n1: bridged past the policy
    assert verdict(_row("kube-dns", "x-c", False, "icmp")) == "fail"
    assert verdict(_row("z-b", "x-a", False)) == "pass"  # from n2: routed, through FORWARD
    assert verdict(_row("z-a", "y-a", True)) == "pass"


@pytest.mark.parametrize("case", ["default-deny-ingress", "default-deny-both"])
def test_the_proving_trace_takes_a_flow_the_policies_allow(case):
    """`quiz answer`'s trace on a lab with NetworkPolicies showed the policy's REJECT, not the fault: after
    rp-filter-strict on n1 it traced x-a to x-b, which x's default deny stops before any reply; after
    bridge-port-down of x-b, every pod of the lab is denied it (only its own node, kubelet's, may reach it)."""
    from netlab.model.netpol import Peer, lab_peer, policy_set
    lab = _policy_lab(case)
    ps = policy_set(lab)
    seen = set()
    for s in quiz.candidates(lab):
        for item in lab.nodes if s.target == "node" else lab.pods:
            try:
                target = catalogue.resolve_target(s, lab, item.name)
            except ValueError:
                continue
            check = symptoms.trace_check(s, lab, target)
            if s.name == "kube-services-jump-missing":
                continue  # the Service is not DNATed: no policy judges that packet
            dst = lab.pod("kube-dns" if check.dst == "svc/kube-system/kube-dns" else check.dst) if not check.dst[0].isdigit() \
                else None
            src = lab_peer(lab, ps, check.src)
            assert src is not None
            to = lab_peer(lab, ps, dst.name) if dst else Peer(__import__("ipaddress").IPv4Address(check.dst))
            allowed = ps.flow(src, to, (check.proto or "icmp").upper(), check.port).allowed
            if check.policy:  # bridge-nf-call-off where no client meets DNS: a denied flow it lets through
                assert not allowed and {lab.pod(check.src).node, dst.node} == {item.name}, (s.name, item.name, check)
                continue
            assert allowed, (s.name, item.name, check)
            seen.add((s.name, item.name, check.src, check.dst))
    assert ("bridge-port-down", "x-b", "n2", "x-b") in seen
    assert not any(s == "rp-filter-strict" and src.startswith("x-") and dst.startswith("x-")
                   for s, _, src, dst in seen)


def test_a_client_whose_dns_queries_a_policy_denies_cannot_show_a_stale_entry():
    """x's pods may send nothing (default deny of both directions): a stale entry for x-a's DNS flow would change
    nothing, so conntrack-stale-entry is refused there in one line, and takes a pod of y by default."""
    lab = _policy_lab("default-deny-both")
    s = catalogue.scenario("conntrack-stale-entry")
    assert catalogue.default_target(s, lab) == "y-a"
    with pytest.raises(ValueError) as err:
        catalogue.resolve_target(s, lab, "x-a")
    assert str(err.value).startswith("conntrack-stale-entry: the NetworkPolicies deny pod x-a's DNS queries")
    assert "\n" not in str(err.value)
    assert catalogue.default_target(s, _policy_lab("default-deny-ingress")) == "x-a"


def test_bridge_nf_call_off_breaks_a_policy_lab_without_services():
    """The NetworkPolicy example has no Service: bridge-nf-call-off was refused there ("needs a Service"), though
    it is where its second lesson shows: the flows a policy denies between two pods of the node connect. The
    proving trace is such a flow, its policy verdict "NOT STOPPED"."""
    lab = _lab("topologies/netpol-3x3.yaml")
    s = catalogue.scenario("bridge-nf-call-off")
    assert catalogue.why_not(s, lab) is None and s in quiz.candidates(lab)
    target = catalogue.resolve_target(s, lab, None)
    assert target.name == "n1"
    check = symptoms.trace_check(s, lab, target)
    assert check.policy and not check.blamed_netns and {lab.pod(check.src).node, lab.pod(check.dst).node} == {"n1"}
    assert symptoms.matches(check, f"... but NOT STOPPED: net.bridge.bridge-nf-call-iptables = 0 in {target.netns}, "
                                   "so its bridge switches the frame ...")
    verdict = symptoms.expect(s, lab, target)
    assert verdict(_row(check.src, check.dst, False, check.proto or "icmp")) == "fail"
    assert verdict(_row("z-a", "y-a", True)) == "pass"
    why = catalogue.why_not(s, _lab(None))  # the default lab: no Service, no policy
    assert why is not None and "two pods there that a policy keeps apart" in why and "\n" not in why


def test_the_kube_services_trace_takes_a_service_with_endpoints():
    """A lab whose own Service has no selector (its endpoints managed elsewhere: none here) still has the cluster
    DNS, so kube-services-jump-missing applies; its proving trace looked for a Service with a selector and
    raised StopIteration (a traceback in `quiz answer`). It takes the DNS Service's TCP port instead."""
    lab = _lab({"name": "ks", "nodes": [{"name": "n1"}, {"name": "n2"}],
                "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n2"}],
                "services": [{"name": "ext", "ports": [{"port": 80}]}]})
    s = catalogue.scenario("kube-services-jump-missing")
    assert catalogue.why_not(s, lab) is None
    check = symptoms.trace_check(s, lab, catalogue.resolve_target(s, lab, None))
    assert (check.dst, check.proto, check.port) == ("svc/kube-system/kube-dns", "tcp", 53)
    web = _lab(catalogue.SERVICES_EXAMPLE)  # an application's Service first, on its TCP port
    check = symptoms.trace_check(s, web, catalogue.resolve_target(s, web, None))
    assert (check.dst, check.proto, check.port) == ("svc/web", "tcp", 80)


def _impostor_lab():
    """topologies/services.yaml plus a user's pod labelled k8s-app: kube-dns in default, listed before the add-on's
    kube-system/kube-dns (which is appended to the pods), and a user's Service of its own that serves 53 from it."""
    import yaml

    topo = yaml.safe_load(open("topologies/services.yaml"))
    topo["pods"].insert(0, {"name": "impostor", "node": "node-2", "labels": {"k8s-app": "kube-dns"}})
    topo["services"].insert(0, {"name": "resolver", "selector": {"k8s-app": "kube-dns"},
                                "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 8080},
                                          {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 8080}]})
    return _lab(topo)


def test_the_dns_pod_is_the_cluster_dns_add_on_not_a_pod_with_its_label():
    from netlab.breaks.changes import dns_udp

    lab = _impostor_lab()
    assert [p.name for p in lab.pods][0] == "impostor" and lab.pod("kube-dns").spec.namespace == "kube-system"
    assert catalogue.dns_pod(lab).name == "kube-dns"
    s = catalogue.scenario("dns-pod-stopped")
    assert catalogue.why_not(s, lab) is None
    assert catalogue.default_target(s, lab) == "kube-dns"
    assert catalogue.resolve_target(s, lab, None).name == "kube-dns"
    with pytest.raises(ValueError, match="pod impostor is not the DNS pod .it is kube-dns."):
        catalogue.resolve_target(s, lab, "impostor")
    # the user's pod is a client like any other, and the stale entry sends the DNS ClusterIP's flow to kube-dns's
    # node, not the user's resolver's
    assert "impostor" in [p.name for p in catalogue.clients(lab, "node-2")]
    cluster_dns = next(sv for sv in lab.services if sv.namespace == "kube-system" and sv.name == "kube-dns")
    assert dns_udp(lab) == (str(lab.cluster_ip(cluster_dns)), 53, str(lab.pod("kube-dns").ip))
    check = symptoms.trace_check(s, lab, lab.pod("kube-dns"))
    assert check.dst == "svc/kube-system/kube-dns" and check.src != "kube-dns"


def test_a_lab_with_its_own_dns_service_stops_its_endpoint():
    """A lab that declares kube-system/kube-dns itself gets no add-on: its DNS pod is that Service's endpoint (in
    kube-system), whatever other pods carry the label."""
    lab = _lab({"name": "own", "nodes": [{"name": "n1"}],
                "pods": [{"name": "lookalike", "node": "n1", "labels": {"k8s-app": "kube-dns"}},
                         {"name": "coredns", "node": "n1", "namespace": "kube-system",
                          "labels": {"k8s-app": "kube-dns"}}],
                "services": [{"name": "kube-dns", "namespace": "kube-system", "selector": {"k8s-app": "kube-dns"},
                              "ports": [{"port": 53, "protocol": "UDP", "targetPort": 8080}]}]})
    assert "kube-dns" not in [p.name for p in lab.pods]
    assert catalogue.default_target(catalogue.scenario("dns-pod-stopped"), lab) == "coredns"
    assert [p.name for p in catalogue.dns_pods(lab)] == ["coredns"]


def test_exactly_the_scenarios_that_stop_a_pods_containers_read_other_processes():
    """`break` asks for CAP_SYS_PTRACE per scenario (Scenario.processes; it refused every one without it): those
    whose change stops a pod's containers, which reads which of the lab's processes run there; the others change
    the kernel's objects alone."""
    from netlab.breaks import changes

    stopping = [name for name, change in changes.CHANGES.items() if change is changes.stop_pod]
    assert [s.name for s in catalogue.SCENARIOS if s.processes] == stopping == ["endpoint-pod-down",
                                                                                  "dns-pod-stopped"]
