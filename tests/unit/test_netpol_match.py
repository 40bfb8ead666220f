"""Policy mistakes that match nothing, which the API server takes: a podSelector that selects no pod of its
namespace, and a named port no pod declares, are notes of validate and up (netlab.model.netpol_match), as an
IPv6 ipBlock's are. A policy in a namespace that does not exist is refused: test_netpol_namespace.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_inprocess import run_cli

from netlab.api.topology import load
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.model.netpol_match import match_notes

ROOT = Path(__file__).resolve().parents[2]
HEAD = """name: pnm
nodes: [{name: n1}, {name: n2}]
pods:
  - name: web
    node: n1
    namespace: x
    labels: {app: web}
    containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]
  - {name: cli, node: n2, namespace: y, labels: {app: cli}}
"""


def notes(policies: str, extra: str = "") -> list[str]:
    return match_notes(load(_data(policies, extra)).lab)


def _data(policies: str, extra: str = "") -> dict:
    return yaml.safe_load(HEAD + extra + "networkPolicies:\n" + policies)


# --- notes: valid, and matching nothing ----------------------------------------------------------------------


def test_a_podselector_that_selects_no_pod_of_its_namespace_names_the_pods_it_matches_elsewhere():
    assert notes("  - {name: web-in, namespace: y, spec: {podSelector: {matchLabels: {app: web}}}}\n") == [
        "network policy y/web-in: podSelector app=web selects no pod of namespace y (x/web matches, in another "
        "namespace: a policy selects pods of its own namespace only): the policy applies to no pod, so it isolates "
        "nothing and its rules allow nothing"]
    assert notes("  - {name: p, namespace: x, spec: {podSelector: {matchLabels: {app: nobody}}}}\n") == [
        "network policy x/p: podSelector app=nobody selects no pod of namespace x: the policy applies to no pod, so "
        "it isolates nothing and its rules allow nothing"]


def test_a_policy_in_a_declared_namespace_without_pods_selects_none():
    assert notes("  - {name: p, namespace: empty, spec: {podSelector: {}}}\n", "namespaces: [{name: empty}]\n") == [
        "network policy empty/p: podSelector {} (all) selects no pod: namespace empty has no pods; the policy "
        "applies to no pod, so it isolates nothing and its rules allow nothing"]


def test_a_policy_that_selects_a_pod_has_no_note():
    assert notes("  - {name: p, namespace: x, spec: {podSelector: {matchLabels: {app: web}}}}\n"
                 "  - {name: q, namespace: y, spec: {podSelector: {}}}\n") == []


def test_an_ingress_named_port_no_selected_pod_declares():
    got = notes("  - name: web-in\n    namespace: x\n    spec:\n      podSelector: {}\n"
                "      ingress: [{ports: [{port: htp}, {port: dns}, {port: http}, {port: dns, protocol: UDP}]}]\n")
    assert got == [
        "network policy x/web-in ingress rule 1 port 1: named port 'htp'/TCP: no pod it selects (x/web) declares a "
        "TCP port of that name, so it matches no traffic; did you mean 'http'?",
        "network policy x/web-in ingress rule 1 port 2: named port 'dns'/TCP: no pod it selects (x/web) declares a "
        "TCP port of that name, so it matches no traffic; it is declared for UDP: write protocol: UDP"]


def test_an_ingress_named_port_is_looked_up_in_the_pods_the_policy_selects_only():
    """cli declares no port: a policy of y that selects it may not allow x/web's port name."""
    got = notes("  - name: cli-in\n    namespace: y\n    spec:\n      podSelector: {}\n"
                "      ingress: [{ports: [{port: http}]}]\n")
    assert got == ["network policy y/cli-in ingress rule 1 port 1: named port 'http'/TCP: no pod it selects (y/cli) "
                   "declares a TCP port of that name, so it matches no traffic"]


def test_an_egress_named_port_no_pod_the_rules_peers_reach_declares():
    policy = ("  - name: cli-out\n    namespace: y\n    spec:\n      podSelector: {}\n"
              "      egress: [{to: [%s], ports: [{port: nosuch}, {port: http}]}]\n")
    assert notes(policy % "{namespaceSelector: {}}") == [
        "network policy y/cli-out egress rule 1 port 1: named port 'nosuch'/TCP: no pod this rule's peers reach "
        "(x/web, y/cli) declares a TCP port of that name, so it matches no traffic"]
    # only y's pods: http is x/web's, so the rule's peers reach no pod that declares it
    assert [n.split(": ", 1)[0] for n in notes(policy % "{podSelector: {}}")] == [
        "network policy y/cli-out egress rule 1 port 1", "network policy y/cli-out egress rule 1 port 2"]
    # an ipBlock reaches the pods whose addresses it holds
    assert len(notes(policy % "{ipBlock: {cidr: 10.244.0.0/16}}")) == 1


def test_the_cluster_dns_add_ons_named_ports_are_declared():
    """kube-dns declares dns/UDP and dns-tcp/TCP, as CoreDNS's Deployment does: allow-dns by name is no mistake."""
    svc = "services: [{name: web, namespace: x, selector: {app: web}, ports: [{port: 80, targetPort: http}]}]\n"
    policy = ("  - name: allow-dns\n    namespace: y\n    spec:\n      podSelector: {}\n      policyTypes: [Egress]\n"
              "      egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}],"
              " ports: [{port: dns, protocol: UDP}, {port: dns-tcp}, {port: dns}]}]\n")
    assert notes(policy, svc) == [
        "network policy y/allow-dns egress rule 1 port 3: named port 'dns'/TCP: no pod this rule's peers reach "
        "(kube-system/kube-dns) declares a TCP port of that name, so it matches no traffic; it is declared for UDP: "
        "write protocol: UDP, or did you mean 'dns-tcp'?"]


def test_rules_of_a_type_the_policy_does_not_have_are_not_judged():
    """policyTypes [Egress]: the API server keeps the ingress rules, and they do nothing."""
    assert notes("  - name: p\n    namespace: x\n    spec:\n      podSelector: {}\n      policyTypes: [Egress]\n"
                 "      ingress: [{ports: [{port: nosuch}]}]\n      egress: [{ports: [{port: http}]}]\n") == []


def test_a_policy_that_selects_no_pod_is_one_note_not_one_per_ingress_port():
    got = notes("  - name: p\n    namespace: x\n    spec:\n      podSelector: {matchLabels: {app: nobody}}\n"
                "      ingress: [{ports: [{port: nosuch}]}]\n")
    assert len(got) == 1 and "selects no pod of namespace x" in got[0]


SHIPPED = sorted([ROOT / "netlab" / "data" / "default.yaml", *(ROOT / "topologies").glob("*.yaml"),
                  *(ROOT / "examples").rglob("topology.yaml"), *(ROOT / "examples").rglob("lab.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_topology_gets_a_note_of_these(path):
    assert match_notes(load(str(path)).lab) == []


# --- said by validate and up --------------------------------------------------------------------------------

MISTAKE = "  - {name: web-in, namespace: y, spec: {podSelector: {matchLabels: {app: web}}}}\n"
SAID = "network policy y/web-in: podSelector app=web selects no pod of namespace y"


def test_validate_notes_them(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "networkPolicies:\n" + MISTAKE)
    proc = run_cli("validate", "-t", str(path))
    assert proc.returncode == 0, proc
    said = f"{path}:11: networkPolicies[0].spec.podSelector: {SAID}"  # the line of the selector that matches none
    assert f"netlab: note: {said} (x/web matches" in proc.stderr
    as_json = run_cli("validate", "-t", str(path), "-o", "json")
    got = json.loads(as_json.stdout)
    assert got["valid"] and [n for n in got["notes"] if n.startswith(said)]
    assert as_json.stderr == proc.stderr  # on stderr whatever -o is, as up's warnings (test_json_warnings.py)


def test_up_notes_them_as_validate_does(tmp_path, monkeypatch):
    """`up` on the fake kernel: the library's UpResult and the CLI's stderr carry the note, in validate's word (and
    the README's): it said `netlab: warning:`, and a script grepping for one word missed the other."""
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "networkPolicies:\n" + MISTAKE)

    def fake_up(lab, source=None, progress=None, wait=60.0, features=None, reconfigure=False, running=None):
        return lab_up.up(lab, FakeKernel(), (), source, progress, wait, reconfigure=reconfigure, running=running)

    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.lifecycle.up", fake_up)
    proc = run_cli("up", "-t", str(path))
    assert proc.returncode == 0 and "lab pnm is up" in proc.stdout, proc
    said = f"{path}:11: networkPolicies[0].spec.podSelector: {SAID}"  # where validate says it
    assert f"netlab: note: {said} (x/web matches" in proc.stderr and "warning" not in proc.stderr, proc.stderr
    as_json = run_cli("up", "-t", str(path), "-o", "json")
    assert as_json.stderr == proc.stderr and [n for n in json.loads(as_json.stdout)["notes"] if n.startswith(said)]
    from netlab import api

    again = api.Lab.up_loaded(load(str(path)))
    assert again.last_up is not None and [n for n in again.last_up.notes if n.startswith(said)]
    assert not [w for w in again.last_up.warnings if w.startswith(SAID)]


def test_an_egress_ipblock_inside_the_service_cidr_is_a_note_naming_the_service():
    """QA q57 #5: 10.96.0.10/32 for the cluster DNS matches nothing, egress being judged after the DNAT."""
    svc = "services: [{name: web, namespace: x, selector: {app: web}, ports: [{port: 80, targetPort: http}]}]\n"
    egress = ("  - name: dns\n    namespace: y\n    spec:\n      podSelector: {}\n      policyTypes: [Egress]\n"
              "      egress: [{to: [{ipBlock: {cidr: %s}}]}]\n")
    (note,) = notes(egress % "10.96.0.10/32", svc)
    assert note.startswith("network policy y/dns egress rule 1 peer 1: ipBlock 10.96.0.10/32 is inside "
                           "cluster.serviceCIDR 10.96.0.0/12, the ClusterIP of kube-system/kube-dns: egress is judged "
                           "after kube-proxy's DNAT"), note
    assert "matches nothing" in note and "podSelector" in note
    (note,) = notes(egress % "10.96.0.0/12", svc)  # every Service's
    assert ", the ClusterIP of x/web, kube-system/kube-dns: " in note or \
        ", the ClusterIP of kube-system/kube-dns, x/web: " in note, note
    assert notes(egress % "10.0.0.0/8", svc) == []  # pods' addresses too: it matches them
    assert notes(egress % "10.244.0.0/16", svc) == []


def test_a_named_sctp_port_is_an_sctp_port():
    """The article goes with how the protocol is said: a TCP, a UDP, an SCTP ("ess-see-tee-pee")."""
    got = notes("  - name: web-in\n    namespace: x\n    spec:\n      podSelector: {}\n"
                "      ingress: [{ports: [{port: http, protocol: SCTP}]}]\n")
    assert got == [
        "network policy x/web-in ingress rule 1 port 1: named port 'http'/SCTP: no pod it selects (x/web) declares an "
        "SCTP port of that name, so it matches no traffic; it is declared for TCP: write protocol: TCP"]
