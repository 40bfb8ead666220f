"""A headless Service (``clusterIP: None``) may have no ports, as in Kubernetes (ValidateService requires ports only
of a Service that is neither headless nor ExternalName): every pod it selects is an endpoint, its DNS name answers
their addresses (no SRV), and kube-proxy has no rule for it. Any other Service still needs at least one port."""

from __future__ import annotations

import pytest

from netlab.api import views
from netlab.cli.get import _services
from netlab.errors import TopologyError
from netlab.graph import build as build_graph
from netlab.model import dnsrecords
from netlab.model.endpoints import service_notes
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan

HEAD = """name: qfhl
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: db-0, node: n1, ip: 10.244.0.2, labels: {app: db}}
  - {name: db-1, node: n2, ip: 10.244.1.2, labels: {app: db}}
  - {name: client, node: n1, ip: 10.244.0.3}
services:
"""


def load(tmp_path, service: str):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + service)
    return load_topology(str(path))


@pytest.mark.parametrize("ports", ["", ", ports: []"])
def test_a_headless_service_without_ports_is_accepted_and_its_name_answers_its_pods(tmp_path, ports):
    lab = resolve(load(tmp_path, f"  - {{name: db, selector: {{app: db}}, clusterIP: None{ports}}}\n"))
    records = dnsrecords.cluster_records(lab.topo, lab.addressing)
    fqdn = "db.default.svc.cluster.local"
    assert [(str(ip), name) for ip, name in dnsrecords.host_records(records) if name == fqdn] == [
        ("10.244.0.2", fqdn), ("10.244.1.2", fqdn)]
    assert not [a for a in dnsrecords.dnsmasq_argv(records) if a.startswith("--srv-host=") and fqdn in a]
    build_plan(lab)  # the whole plan builds, kube-proxy with no rule for it
    assert service_notes(lab) == []
    (db,) = [s for s in views.services(lab) if s.name == "db"]
    assert db.ports == () and db.addresses == ("10.244.0.2", "10.244.1.2")
    # as kubectl get shows it: PORT(S) <none>, the endpoints' addresses without a port
    assert _services((db,), wide=False)[1] == [["db", "ClusterIP", "None", "<none>", "<none>",
                                                 "10.244.0.2,10.244.1.2"]]
    graph = build_graph(lab)
    assert any(link.label == "DNS A" for link in graph.links)


def test_a_headless_service_without_ports_selecting_no_pod_is_noted(tmp_path):
    lab = resolve(load(tmp_path, "  - {name: db, selector: {app: none}, clusterIP: None}\n"))
    assert service_notes(lab) == ["service default/db (no ports): no pod of namespace default has the labels "
                                  "app=none: no endpoints, so its name answers no address"]


@pytest.mark.parametrize("service, line", [
    ("  - {name: web, selector: {app: db}}\n", 8),
    ("  - name: web\n    selector: {app: db}\n    ports: []\n", 10),
    ("  - {name: web, type: NodePort, selector: {app: db}, ports: []}\n", 8),
])
def test_any_other_service_still_needs_a_port_in_one_located_line(tmp_path, service, line):
    with pytest.raises(TopologyError) as exc:
        load(tmp_path, service)
    assert str(exc.value).endswith(
        f"t.yaml:{line}: services[0].ports: needs at least 1 entry; add ports: (only a headless Service, clusterIP: "
        "None, may have none: its DNS name answers its endpoints' pod IPs)"), str(exc.value)
