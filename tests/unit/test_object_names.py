"""Names as the API server validates them, where they differ from the DNS label of most netlab names:
a Service's is a DNS-1035 label (ValidateServiceName = NameIsDNS1035Label: it starts with a letter), a
NetworkPolicy's a DNS subdomain (ValidateNetworkPolicyName = NameIsDNSSubdomain: dots, up to 253), inline or
included. A policy's name reaches the kernel only hashed (chain names) and in rule comments, which iptables
holds to 255 bytes."""

from __future__ import annotations

import pytest

from netlab.api.topology import load as load_model
from netlab.errors import TopologyError
from netlab.model.load import load_topology
from netlab.plan.build import build_plan

COMMENT_MAX = 255  # bytes a rule's comment holds (XT_MAX_COMMENT_LEN 256, with its NUL)
BASE = "name: qfn\nnodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: web}}]\n"


def load(tmp_path, text: str, files: dict[str, str] | None = None):
    for name, body in (files or {}).items():
        (tmp_path / name).write_text(body)
    path = tmp_path / "t.yaml"
    path.write_text(BASE + text)
    return load_topology(str(path))


@pytest.mark.parametrize("name", ["1web", "80-web", "0"])
def test_a_service_name_must_start_with_a_letter(tmp_path, name):
    with pytest.raises(TopologyError) as exc:
        load(tmp_path, f"services: [{{name: '{name}', selector: {{app: web}}, ports: [{{port: 80}}]}}]\n")
    assert str(exc.value).splitlines()[0].endswith(
        f"t.yaml:4: services[0].name: '{name}' is not a DNS-1035 label, as a Service's name must be; start it with "
        "a lower-case letter (then letters, digits and '-', ending with a letter or digit)"), str(exc.value)


def test_a_service_name_that_starts_with_a_letter_is_taken(tmp_path):
    assert [s.name for s in load(tmp_path, "services: [{name: web-80, ports: [{port: 80}]}]\n").services][:1] == [
        "web-80"]


LONG = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253


@pytest.mark.parametrize("name", ["allow.web-from.frontend", "p.x", "a" * 70, LONG])
def test_a_policy_name_is_a_dns_subdomain_inline_and_included(tmp_path, name):
    inline = load(tmp_path, f"networkPolicies: [{{name: {name}, spec: {{podSelector: {{}}}}}}]\n")
    assert [p.name for p in inline.network_policies] == [name]
    manifest = (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n"
                "spec: {podSelector: {}}\n")
    included = load(tmp_path, "include: [p1.yaml]\n", {"p1.yaml": manifest})
    assert [p.name for p in included.network_policies] == [name]


@pytest.mark.parametrize("name, problem", [
    (LONG + "x", f"'{LONG[:29]}...' is 254 characters; names are at most 253, shorten it"),
    ("bad..x", "'bad..x' is not a DNS subdomain; use lower-case letters, digits, '-' and '.', each part between "
               "dots starting and ending with a letter or digit"),
    ("Web", "'Web' is not a DNS subdomain; use lower-case letters"),
    ("web.", "'web.' is not a DNS subdomain;"),
])
def test_what_is_no_dns_subdomain_is_refused_in_one_located_line(tmp_path, name, problem):
    with pytest.raises(TopologyError) as exc:
        load(tmp_path, f"networkPolicies: [{{name: '{name}', spec: {{podSelector: {{}}}}}}]\n")
    assert f"t.yaml:4: networkPolicies[0].name: {problem}" in str(exc.value), str(exc.value)
    with pytest.raises(TopologyError) as exc:
        load(tmp_path, "include: [p1.yaml]\n", {"p1.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                                          f"metadata:\n  name: '{name}'\nspec: {{podSelector: {{}}}}\n"})
    assert f"p1.yaml:4: metadata.name: {problem}" in str(exc.value), str(exc.value)


def test_a_namespace_name_stays_a_dns_label_in_an_included_manifest(tmp_path):
    with pytest.raises(TopologyError) as exc:
        load(tmp_path, "include: [ns.yaml]\n", {"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n"})
    assert "ns.yaml:3: metadata.name: 'team.a' is not a DNS label" in str(exc.value), str(exc.value)


def test_a_long_policy_name_keeps_every_kernel_name_and_comment_in_bounds():
    """Chain names are hashed (28 characters at most); every rule comment fits iptables' 255 bytes, and two
    policies whose names differ only at the end keep comments of their own."""
    pols = [{"name": LONG, "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}},
            {"name": LONG[:-1] + "e", "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}}]
    topo = {"name": "qfn", "nodes": [{"name": "n1"}], "namespaces": [{"name": "n" * 63}],
            "pods": [{"name": "a", "node": "n1", "namespace": "n" * 63}, {"name": "b", "node": "n1"}],
            "networkPolicies": [{**p, "namespace": "n" * 63} for p in pols]}
    plan = build_plan(load_model(topo).lab)
    payload = "\n".join(r.payload for r in plan.of_kind("nat") if r.table == "filter")
    comments = [line.split('--comment "', 1)[1].split('"', 1)[0] for line in payload.splitlines() if "--comment" in line]
    assert comments and max(len(c.encode()) for c in comments) <= COMMENT_MAX
    long_ones = {c for c in comments if " rule 1 peer 1" in c or c.startswith("n" * 63 + "/a ingress policy")}
    assert len({c for c in long_ones if c.endswith(tuple("0123456789abcdef"))}) >= 2
    chains = {line.split()[0][1:] for line in payload.splitlines() if line.startswith(":NETPOL")}
    assert chains and max(map(len, chains)) <= 28
