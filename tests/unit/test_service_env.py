"""The Service variables a container starts with, as the kubelet names them (model/service_env.py, QA q51 5)."""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab.model.service_env import env_name, linked, pod_service_env, service_variables
from netlab.model.topology import Service


def svc(name: str, namespace: str = "default", ports: list | None = None, cluster_ip: str | None = None) -> Service:
    data: dict = {"name": name, "namespace": namespace, "selector": {"app": name},
                  "ports": ports if ports is not None else [{"port": 80}]}
    if cluster_ip is not None:
        data["clusterIP"] = cluster_ip
    return Service.model_validate(data)


def test_names_are_capitals_with_underscores():
    assert env_name("redis-master") == "REDIS_MASTER"
    assert env_name("web") == "WEB"


def test_one_port_gives_the_kubelets_seven_variables():
    # Kubernetes' own example (Services docs, "Environment variables"): redis-master, 6379/TCP at 10.0.0.11
    assert service_variables("redis-master", IPv4Address("10.0.0.11"), [(None, 6379, "TCP")]) == [
        ("REDIS_MASTER_SERVICE_HOST", "10.0.0.11"),
        ("REDIS_MASTER_SERVICE_PORT", "6379"),
        ("REDIS_MASTER_PORT", "tcp://10.0.0.11:6379"),
        ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.0.0.11:6379"),
        ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
        ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
        ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.0.0.11"),
    ]


def test_named_ports_and_udp():
    env = dict(service_variables("kube-dns", "10.96.0.10", [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]))
    assert env["KUBE_DNS_SERVICE_PORT"] == "53"  # the first port
    assert env["KUBE_DNS_SERVICE_PORT_DNS"] == "53" and env["KUBE_DNS_SERVICE_PORT_DNS_TCP"] == "53"
    assert env["KUBE_DNS_PORT"] == "udp://10.96.0.10:53"  # Docker's first port, in its own protocol
    assert env["KUBE_DNS_PORT_53_UDP"] == "udp://10.96.0.10:53" and env["KUBE_DNS_PORT_53_UDP_PROTO"] == "udp"
    assert env["KUBE_DNS_PORT_53_TCP"] == "tcp://10.96.0.10:53" and env["KUBE_DNS_PORT_53_TCP_ADDR"] == "10.96.0.10"
    assert len(env) == 2 + 2 + 1 + 2 * 4


def test_a_pod_gets_its_namespaces_services_with_a_cluster_ip_and_the_api_servers():
    services = [svc("web"), svc("db", "shop"), svc("kubernetes", ports=[{"name": "https", "port": 443}]),
                svc("peers", cluster_ip="None")]
    ips = {("default", "web"): IPv4Address("10.96.0.20"), ("shop", "db"): IPv4Address("10.96.0.21"),
           ("default", "kubernetes"): IPv4Address("10.96.0.1")}
    assert [s.name for s in linked(services, "default", True)] == ["web", "kubernetes"]  # headless: none
    assert [s.name for s in linked(services, "shop", True)] == ["db", "kubernetes"]  # the API server's: every pod
    assert [s.name for s in linked(services, "shop", False)] == ["kubernetes"]  # enableServiceLinks: false
    env = pod_service_env(services, ips, "shop")
    assert env["DB_SERVICE_HOST"] == "10.96.0.21" and "WEB_SERVICE_HOST" not in env
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("10.96.0.1", "443")
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert not any(k.startswith("PEERS_") for k in pod_service_env(services, ips, "default"))
    assert pod_service_env([svc("web")], {}, "default") == {}  # no ClusterIP yet: none
    assert pod_service_env([svc("web")], ips, "default", enable_links=False) == {}


def test_a_service_of_the_pods_namespace_named_kubernetes_wins_over_the_api_servers():
    services = [svc("kubernetes"), svc("kubernetes", "shop", ports=[{"port": 8443}])]
    assert [s.namespace for s in linked(services, "shop", True)] == ["shop"]
    assert [s.namespace for s in linked(list(reversed(services)), "shop", True)] == ["shop"]
