"""A named targetPort, resolved per pod as the EndpointSlice controller resolves it (FindPort), and kube-proxy's
rules for it in both modes: each endpoint DNATed to its own pod's number (no root)."""

from __future__ import annotations

import pytest
import yaml

from netlab.api import views
from netlab.model.endpoints import service_notes
from netlab.model.topology import Topology
from netlab.plan import nftables, services
from test_services_plan import GOLDEN, check_golden, lab_of

TOPO = yaml.safe_load((GOLDEN / "named_target_port.yaml").read_text())


def lab(mode: str = "iptables"):
    return lab_of({**TOPO, "cluster": {"kubeProxyMode": mode}})


def eps(lab, port_name: str) -> list[tuple[str, int]]:
    svc = lab.services[0]
    port = next(p for p in svc.ports if p.name == port_name)
    return [(p.name, target) for p, target in lab.endpoints(svc, port)]


def test_each_pod_is_an_endpoint_at_its_own_number_for_the_name():
    lb = lab()
    assert eps(lb, "http") == [("web-a", 8080), ("web-b", 9090)]  # web-b's second container declares it
    assert eps(lb, "metrics") == [("web-a", 9100), ("web-b", 9100), ("web-c", 9100)]  # web-c: for this port only
    assert eps(lb, "grpc") == []  # a name no pod declares: no endpoints
    idx = services.endpoint_index(lb)
    for port in lb.services[0].ports:
        assert idx[("default", "web", port.port, port.protocol)] == lb.endpoints(lb.services[0], port)


def test_the_name_matches_only_a_port_of_the_service_ports_protocol():
    pods = [{"name": "d", "node": "n1", "labels": {"app": "dns"},
             "containers": [{"name": "c", "ports": [{"containerPort": 5353, "name": "dns", "protocol": "UDP"},
                                                    {"containerPort": 5354, "name": "dns-tcp"}]}]}]
    svc = {"name": "dns", "selector": {"app": "dns"},
           "ports": [{"name": "u", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                     {"name": "t", "port": 53, "targetPort": "dns"},  # TCP: "dns" is a UDP port of the pod
                     {"name": "t2", "port": 54, "targetPort": "dns-tcp", "protocol": "UDP"}]}
    lb = lab_of({**TOPO, "pods": pods, "services": [svc]})
    got = {p.name: [(pod.name, t) for pod, t in lb.endpoints(lb.services[0], p)] for p in lb.services[0].ports}
    assert got == {"u": [("d", 5353)], "t": [], "t2": []}


def test_a_numeric_target_port_is_every_selected_pods_declared_or_not():
    port = Topology.model_validate({**TOPO, "services": [{"name": "s", "ports": [{"port": 80, "targetPort": 7}]}]})
    assert port.services[0].ports[0].target(port.pods[2]) == 7
    assert Topology.model_validate(TOPO).services[0].ports[0].target_port == "http"


def test_validate_notes_the_pods_left_out_and_the_name_nobody_declares():
    assert service_notes(lab()) == [
        "service default/web port 80/TCP: targetPort http: selected pod web-c declares no TCP port of that name: "
        "it is not an endpoint of this port",
        "service default/web port 81/TCP: targetPort grpc: selected pods web-a, web-b, web-c declare no TCP port "
        "of that name: no endpoints, so kube-proxy rejects its connections"]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_golden_each_endpoint_dnats_to_its_own_pods_port(mode):
    lb = lab(mode)
    sps = services.service_ports(lb)
    if mode == "iptables":
        nat = next(r for r in services.resources(lb) if r.kind == "nat" and r.table == "nat")
        filt = next(r for r in services.resources(lb) if r.kind == "nat" and r.table == "filter")
        text = "\n".join(nat.rules + filt.rules) + "\n"
        # kube-proxy's filter table rejects the port without endpoints
        assert any("default/web:grpc has no endpoints" in r and "REJECT" in r for r in filt.rules)
    else:
        text = nftables.replace_payload(nftables.kube_proxy_table(lb, lb.nodes[0], sps))
        assert "no-endpoint-services { 10.96.0.30 . tcp . 81 comment \"default/web:grpc\" : goto reject-chain }" in text
    for dnat in ("10.244.0.2:8080", "10.244.1.2:9090", "10.244.1.3:9100"):
        assert f"--to-destination {dnat}" in text or f"dnat to {dnat}" in text
    assert "10.244.1.3:8080" not in text and "10.244.1.3:9090" not in text
    check_golden(f"named_target_port_{mode}.txt", text)


def test_get_services_says_the_name_and_each_endpoints_number():
    (web,) = [s for s in views.services(lab()) if s.name == "web"]
    http = web.ports[0]
    assert http.target_port == "http"
    assert [(e.pod, e.port) for e in http.endpoints] == [("web-a", 8080), ("web-b", 9090)]


def test_cluster_dns_names_only_the_pods_that_are_endpoints_of_some_port():
    from netlab.model import dnsrecords
    from netlab.model.lab import resolve

    def dashed_names(services: list) -> set[str]:
        lb = resolve(Topology.model_validate({**TOPO, "services": services}))  # with the cluster DNS add-on
        records = dnsrecords.cluster_records(lb.topo, lb.addressing)
        return {str(ip) for s in records.services if s.name == "web" for ip in s.endpoints}

    web = TOPO["services"][0]
    assert dashed_names([web]) == {"10.244.0.2", "10.244.1.2", "10.244.1.3"}  # web-c: through "metrics"
    http_only = {**web, "ports": [web["ports"][0]]}
    assert dashed_names([http_only]) == {"10.244.0.2", "10.244.1.2"}
