"""A headless Service (``clusterIP: None``): no ClusterIP, no kube-proxy rule in either mode; the cluster DNS
answers its name with its endpoints' pod IPs (and SRV with each endpoint's name and port); get shows None as
kubectl does; svc/NAME is refused by trace and reach in one line (no root)."""

from __future__ import annotations

import pytest
import yaml

from netlab.api import views
from netlab.cli.get import _services
from netlab.errors import TopologyError, UsageError
from netlab.model import dnsrecords
from netlab.model.endpoints import service_notes
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology
from netlab.plan import kubeproxy, services
from netlab.plan.build import build_plan

TOPO = """
name: hl
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: db-0, node: n1, ip: 10.244.0.2, labels: {app: db},
     containers: [{name: c, ports: [{containerPort: 5432, name: pg}]}]}
  - {name: db-1, node: n2, ip: 10.244.1.2, labels: {app: db},
     containers: [{name: c, ports: [{containerPort: 5433, name: pg}]}]}
  - {name: client, node: n1, ip: 10.244.0.3}
services:
  - {name: db, selector: {app: db}, clusterIP: None, ports: [{name: pg, port: 5432, targetPort: pg}]}
  - {name: web, selector: {app: db}, ports: [{port: 80, targetPort: 5432}]}
"""


def lab_of(text: str = TOPO, mode: str = "iptables"):
    data = yaml.safe_load(text)
    return resolve(Topology.model_validate({**data, "cluster": {"kubeProxyMode": mode}}))


def test_no_cluster_ip_is_allocated_and_the_next_service_gets_the_first_free_one():
    lab = lab_of()
    db, web = lab.services[:2]
    assert db.headless and db.cluster_ip == "None" and lab.cluster_ip(db) is None
    assert str(lab.cluster_ip(web)) == "10.96.0.11"  # 10.96.0.10 is the cluster DNS's


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_kube_proxy_has_no_rule_for_it_in_either_mode(mode):
    lab = lab_of(mode=mode)
    assert [sp.svc.name for sp in services.service_ports(lab)] == ["web", "kube-dns", "kube-dns"]
    text = "\n".join(getattr(r, "payload", "") for r in kubeproxy.resources(lab))
    assert "default/web" in text and "default/db" not in text and "5433" not in text
    build_plan(lab)  # the whole plan builds


def test_dns_answers_its_name_with_the_endpoints_pod_ips_after_their_ptr_names():
    lab = lab_of()
    records = dnsrecords.cluster_records(lab.topo, lab.addressing)
    argv = dnsrecords.dnsmasq_argv(records)
    hosts = [f"{name},{ip}" for ip, name in dnsrecords.host_records(records)]  # the hosts file's A records, in order
    fqdn = "db.default.svc.cluster.local"
    assert not [h for h in hosts if h.startswith(fqdn + ",10.96.")]  # no ClusterIP record
    mine = [h for h in hosts if h.startswith(fqdn + ",")]
    assert mine == [f"{fqdn},10.244.0.2", f"{fqdn},10.244.1.2"]
    # an address's PTR is its first record's: the endpoint's dashed name, as CoreDNS answers it
    assert hosts.index(f"10-244-0-2.{fqdn},10.244.0.2") < hosts.index(mine[0])
    srv = [a.split("=", 1)[1] for a in argv if a.startswith("--srv-host=") and fqdn in a]
    # one record per endpoint, aimed at its name and its own port (the named targetPort's number per pod)
    assert srv == [f"_pg._tcp.{fqdn},10-244-0-2.{fqdn},5432,0,50", f"_pg._tcp.{fqdn},10-244-1-2.{fqdn},5433,0,50",
                   f"{fqdn},10-244-0-2.{fqdn},5432,0,50", f"{fqdn},10-244-1-2.{fqdn},5433,0,50",
                   # each endpoint's name answers SRV too, with its own port (CoreDNS's findServices)
                   f"10-244-0-2.{fqdn},10-244-0-2.{fqdn},5432,0,100", f"10-244-1-2.{fqdn},10-244-1-2.{fqdn},5433,0,100"]


def test_get_shows_none_as_kubectl_does_with_the_endpoints():
    (db,) = [s for s in views.services(lab_of()) if s.name == "db"]
    assert db.cluster_ip == "None"
    assert [(e.pod, e.port) for e in db.ports[0].endpoints] == [("db-0", 5432), ("db-1", 5433)]
    headers, rows = _services((db,), wide=False)
    assert rows[0][:3] == ["db", "ClusterIP", "None"]


def test_trace_and_reach_refuse_svc_name_in_one_line():
    from netlab.api.reach import _service_probe
    from netlab.trace.targets import resolve_source, resolve_target

    lab = lab_of()
    want = ("svc/db is headless (clusterIP: None): it has no ClusterIP and kube-proxy has no rule for it; probe "
            "or trace its pods (db-0, db-1), or look up db.default.svc.cluster.local, which answers their IPs")
    with pytest.raises(UsageError) as exc:
        resolve_target(lab, "svc/db", None, None, resolve_source(lab, "client"))
    assert str(exc.value) == want
    with pytest.raises(UsageError) as exc:
        _service_probe(lab, "client", "db", None, None)
    assert str(exc.value) == want
    with pytest.raises(UsageError):  # "None" is no address of the lab
        resolve_target(lab, "None", None, None, resolve_source(lab, "client"))


def test_probe_notes_it_and_validate_says_when_its_name_answers_nothing():
    from netlab.probe import services as svcs

    assert "svc/db: not probed: headless (clusterIP: None), so no ClusterIP and no kube-proxy rule; its pods are " \
           "probed as pods" in svcs.build(lab_of()).notes
    empty = TOPO.replace("selector: {app: db}, clusterIP", "selector: {app: none}, clusterIP")
    assert service_notes(lab_of(empty))[0] == (
        "service default/db port 5432/TCP: no pod of namespace default has the labels app=none: no endpoints, so "
        "its name answers no address")


@pytest.mark.parametrize("text, message", [
    ("{name: s, type: NodePort, clusterIP: None, ports: [{port: 80}]}", "clusterIP None (headless) is for type "
                                                                       "ClusterIP only"),
    ("{name: kube-dns, namespace: kube-system, clusterIP: None, ports: [{port: 53}]}",
     "the cluster DNS Service cannot be headless"),
    ("{name: s, clusterIP: none, ports: [{port: 80}]}", "'none' is not an IPv4 address like 10.244.0.2, or None "
                                                        "for a headless Service"),
])
def test_what_the_api_server_refuses_is_refused_in_one_located_line(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(f"name: x\nnodes: [{{name: a}}]\nservices: [{text}]\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(str(path))
    assert message in str(exc.value) and "t.yaml:3: services[0].clusterIP: " in str(exc.value), str(exc.value)
