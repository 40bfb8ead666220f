"""Services that share a selector share the work of finding their endpoints, with the same answers as asking
every pod: several labels, empty selectors, namespaces, named and numeric targetPorts, protocols, terminal pods."""

from __future__ import annotations

from netlab.model.dnsrecords import cluster_records
from netlab.model.endpoints import service_notes
from netlab.model.lab import endpoint_order, resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.model.topology import Service

TOPO = """\
name: shr
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: a1, node: n1, labels: {app: web, tier: fe}, containers: [{name: c, ports: [{containerPort: 81, name: h}]}]}
  - {name: a2, node: n2, labels: {app: web, tier: fe}, containers: [{name: c, ports: [{containerPort: 80}]}]}
  - {name: a3, node: n1, labels: {app: web, tier: be}}
  - {name: a4, node: n2, labels: {app: web}, containers: [{name: c, ports: [{containerPort: 82, name: h}]}]}
  - {name: b1, node: n1, namespace: other, labels: {app: web, tier: fe}, hostname: h1, subdomain: s2}
  - {name: b2, node: n2, namespace: other, labels: {app: web, tier: fe}, hostname: h2, subdomain: s1}
services:
  - {name: s1, selector: {app: web, tier: fe}, ports: [{port: 80}]}
  - {name: s2, selector: {tier: fe, app: web}, ports: [{name: t, port: 80}, {name: u, port: 80, protocol: UDP}]}
  - {name: s3, selector: {app: web, tier: fe}, ports: [{port: 90, targetPort: h}]}
  - {name: s4, selector: {app: web}, ports: [{port: 80, targetPort: h}]}
  - {name: s5, selector: {}, ports: [{port: 80}]}
  - {name: s6, selector: {app: web, tier: fe}, clusterIP: None, ports: [{port: 80, targetPort: h}]}
  - {name: s1, namespace: other, selector: {app: web, tier: fe}, ports: [{port: 80}]}
  - {name: s2, namespace: other, selector: {app: web, tier: fe}, clusterIP: None, ports: [{port: 80}]}
  - {name: s7, namespace: other, selector: {app: nope, tier: fe}, ports: [{port: 80}]}
"""


def lab_of(text: str):
    return resolve(validate_source(parse_yaml(text, "shr.yaml")))


def naive_endpoints(lab, svc, port):
    """Lab.endpoints as its docstring says it: every pod asked, no index, no sharing."""
    out = [(p, t) for p in lab.pods if p.spec.namespace == svc.namespace and svc.selects(p.spec.labels)
           and p.name not in lab.terminal and (t := port.target(p.spec)) is not None]
    return sorted(out, key=endpoint_order)


def test_every_service_port_has_the_endpoints_asking_every_pod_gives_terminal_pods_too():
    lab = lab_of(TOPO)
    for terminal in (frozenset(), frozenset({"a2", "b1"})):
        lab = lab.with_terminal(terminal)
        for svc in lab.services:
            for port in svc.ports:
                for _ in range(2):  # the second answer is the kept one, and a copy of it
                    got = lab.endpoints(svc, port)
                    assert got == naive_endpoints(lab, svc, port), (svc.namespace, svc.name, port)
                    got.clear()
        by_name = {(s.namespace, s.name): s for s in lab.services}
        assert [p.name for p, _ in lab.endpoints(by_name["default", "s3"], by_name["default", "s3"].ports[0])] \
            == ["a1"]
        assert [(p.name, t) for p, t in lab.endpoints(by_name["default", "s4"], by_name["default", "s4"].ports[0])] \
            == [("a1", 81), ("a4", 82)]
        assert lab.endpoints(by_name["default", "s5"], by_name["default", "s5"].ports[0]) == []
        assert lab.endpoints(by_name["other", "s7"], by_name["other", "s7"].ports[0]) == []


def test_cluster_dns_records_are_those_of_asking_every_pod():
    lab = lab_of(TOPO)
    records = cluster_records(lab.topo, lab.addressing, frozenset({"a2"}))
    ip = lab.addressing.pod_ip
    for rec in records.services:
        svc = next((s for s in lab.topo.services if (s.namespace, s.name) == (rec.namespace, rec.name)), None)
        if svc is None:
            continue  # default/kubernetes
        pods = [p for p in lab.topo.pods if p.namespace == svc.namespace and svc.selects(p.labels)
                and p.name != "a2" and (not svc.ports or any(port.target(p) is not None for port in svc.ports))]
        assert rec.endpoints == tuple(sorted({ip[p.name] for p in pods})), rec.name
        assert rec.hostnames == tuple((ip[p.name], p.hostname) for p in sorted(pods, key=lambda p: ip[p.name])
                                      if p.hostname and p.subdomain == svc.name), rec.name
    other = {r.name: r for r in records.services if r.namespace == "other"}
    assert other["s1"].hostnames == ((ip["b2"], "h2"),) and other["s2"].hostnames == ((ip["b1"], "h1"),)


def test_notes_of_services_sharing_a_selector_name_each_its_own_deaf_endpoints():
    notes = service_notes(lab_of(TOPO))
    s1 = [n for n in notes if n.startswith("service default/s1 ")]
    s2 = [n for n in notes if n.startswith("service default/s2 ")]
    assert s1 == ["service default/s1 port 80/TCP: endpoint a1 declares no 80/TCP: kube-proxy sends it its share "
                  "of the connections anyway, and nothing listens there (declare the port, or serve it with a "
                  "command)"]
    assert len(s2) == 2 and "80/UDP" in s2[1] and "endpoint a1 declares no 80/UDP" in s2[1]
    assert any(n.startswith("service default/s5 port 80/TCP: no selector") for n in notes)
    assert any(n.startswith("service default/s3 port 90/TCP: targetPort h: selected pod a2 declares") for n in notes)


def test_many_services_with_one_selector_match_its_pods_once(monkeypatch):
    """validate of 60 NodePort Services all selecting the same 40 pods: each pod is matched against the selector
    a few times in all, not once per Service (2,000 Services over 4,000 pods did not validate in 60 s)."""
    lines = ["name: one", "nodes: [{name: n1}, {name: n2}]", "pods:"]
    lines += [f"  - {{name: p{i}, node: n{1 + i % 2}, labels: {{app: a{i}, tier: web}}}}" for i in range(40)]
    lines += ["services:"] + [f"  - {{name: s{k}, type: NodePort, selector: {{tier: web}}, ports: [{{port: 80}}]}}"
                              for k in range(60)]
    calls = []
    real = Service.selects
    monkeypatch.setattr(Service, "selects", lambda self, labels: calls.append(1) or real(self, labels))
    lab = lab_of("\n".join(lines) + "\n")
    notes = service_notes(lab)
    assert all(len(lab.endpoints(s, s.ports[0])) == 40 for s in lab.services if s.name.startswith("s"))
    assert len(notes) == 60
    assert 0 < len(calls) <= 10 * 41, len(calls)


def test_validating_a_file_without_include_adds_the_cluster_dns_once(monkeypatch, tmp_path):
    """validate checks that the cluster DNS fits, then resolves the lab: with no ``include:`` the topology is
    the same object both times, so the add-on (addresses, records of every Service's endpoints) is made once."""
    import netlab.model.clusterdns as clusterdns
    from netlab.api.topology import load

    calls = []
    real = clusterdns._add_cluster_dns
    monkeypatch.setattr(clusterdns, "_add_cluster_dns", lambda *a: calls.append(1) or real(*a))
    path = tmp_path / "t.yaml"
    path.write_text(TOPO.replace("name: shr", "name: shr1"))
    loaded = load(str(path), running=False)
    assert len(calls) == 1
    assert [s.name for s in loaded.lab.services][-1] == "kube-dns" and loaded.topology.include == []
