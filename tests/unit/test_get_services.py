"""``netlab get services``: each Service port's endpoints, structured in -o json/yaml, "ip:port" in the table."""

from __future__ import annotations

from netlab.api import views
from netlab.api.jsonio import from_json, to_json
from netlab.api.results import EndpointInfo, PodInfo, ServiceInfo
from netlab.cli.get import _services
from netlab.model.addressing import allocate
from netlab.model.lab import Lab
from netlab.model.topology import Topology

TOPOLOGY = {
    "name": "g",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "web-2", "node": "n2", "labels": {"app": "web"}},
             {"name": "web-1", "node": "n1", "labels": {"app": "web"}},
             {"name": "client", "node": "n1"}],
    "services": [{"name": "web", "selector": {"app": "web"}, "type": "NodePort",
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                            {"name": "dns", "port": 53, "protocol": "UDP"}]},
                 {"name": "none", "selector": {"app": "nothing"}, "ports": [{"port": 80}]}],
}


def lab() -> Lab:
    topo = Topology.model_validate(TOPOLOGY)
    addressing, problems = allocate(topo)
    assert not problems, problems
    return Lab(topo, addressing)


def test_endpoints_are_objects_in_json_and_ip_port_in_the_table():
    model = lab()
    ip = {p.name: str(p.ip) for p in model.pods}
    web, empty = views.services(model)
    http, dns = web.ports
    # Each endpoint says which pod, on which node, at which address and (target) port, sorted by pod IP,
    # as an EndpointSlice's targetRef, nodeName and addresses with its port.
    assert to_json(http)["endpoints"] == [
        {"pod": "web-1", "node": "n1", "ip": ip["web-1"], "port": 8080},
        {"pod": "web-2", "node": "n2", "ip": ip["web-2"], "port": 8080},
    ]
    assert [(e.pod, e.port) for e in dns.endpoints] == [("web-1", 53), ("web-2", 53)]
    assert all(isinstance(e, EndpointInfo) for e in dns.endpoints)
    assert to_json(empty)["ports"][0]["endpoints"] == []
    # What `get services -o json` prints reads back as the same Service (the API builds results from it).
    assert from_json(ServiceInfo, to_json(web)) == web
    # The table is unchanged: each distinct ip:port once, of every port of the Service.
    headers, rows = _services((web, empty), wide=False)
    column = headers.index("endpoints")
    assert rows[0][column] == ",".join(sorted(f"{ip[p]}:{n}" for p in ("web-1", "web-2") for n in (53, 8080)))
    assert rows[1][column] == "<none>"


# --- Services of two namespaces with one name -------------------------------------------------------

TWINS = {
    "name": "g",
    "nodes": [{"name": "n1"}],
    "pods": [{"name": "a", "node": "n1", "namespace": "x", "labels": {"app": "web"}},
             {"name": "b", "node": "n1", "namespace": "y", "labels": {"app": "web"}}],
    "services": [{"name": "web", "namespace": ns, "selector": {"app": "web"}, "ports": [{"port": 80}]} for ns in "xy"]
               + [{"name": "db", "namespace": "x", "ports": [{"port": 5432}]}],
}


def twins() -> Lab:
    from netlab.model.lab import resolve

    return resolve(Topology.model_validate(TWINS))


def pod_infos() -> tuple[PodInfo, ...]:
    """``get pods``' rows of the lab, as views.pods makes them from a running lab's state (containers aside)."""
    return tuple(PodInfo(name=p.name, node=p.node, ip=str(p.ip), netns=p.netns, mac=p.mac, labels=p.labels,
                         containers=(), namespace=p.spec.namespace) for p in twins().pods)


def test_get_services_namespace_slash_name_picks_one_and_a_bare_name_every_namespaces():
    """`get services x/web` failed ("no service 'x/web' (services: web, web, kube-dns)") where trace takes
    svc/x/web; NAMESPACE/NAME picks the one of that namespace, NAME every Service of that name."""
    import pytest

    from netlab.cli.get import select
    from netlab.errors import UsageError

    svcs = views.services(twins())
    assert [(s.namespace, s.name) for s in select(svcs, ("x/web",), "services", "g")] == [("x", "web")]
    assert [(s.namespace, s.name) for s in select(svcs, ("web",), "services", "g")] == [("x", "web"), ("y", "web")]
    assert [s.name for s in select(svcs, ("kube-system/kube-dns", "db", "x/db"), "services", "g")] == ["db", "kube-dns"]
    with pytest.raises(UsageError) as err:
        select(svcs, ("z/web", "web"), "services", "g")
    assert str(err.value) == "lab g has no service 'z/web' (services: x/web, y/web, db, kube-dns)"
    # pods: NAMESPACE/NAME is the pod only in that namespace
    pods = pod_infos()
    assert [p.name for p in select(pods, ("x/a",), "pods", "g")] == ["a"]
    with pytest.raises(UsageError, match=r"^lab g has no pod 'y/a' \(pods: a, b, kube-dns\)$"):
        select(pods, ("y/a",), "pods", "g")


def test_the_table_begins_with_a_namespace_column_when_names_repeat():
    """Two rows `web` could not be told apart (only -o wide had NAMESPACE): kubectl -A's column comes first."""
    from netlab.cli.get import rows_of

    svcs = views.services(twins())
    headers, rows = rows_of("services", svcs, wide=False)
    assert headers[:3] == ["namespace", "name", "type"]
    assert [row[:2] for row in rows] == [["x", "web"], ["y", "web"], ["x", "db"], ["kube-system", "kube-dns"]]
    # one of them alone, or names that do not repeat: the table as it was; -o wide has its own NAMESPACE column
    assert rows_of("services", svcs[:1], wide=False)[0][0] == "name"
    wide_headers, wide_rows = rows_of("services", svcs, wide=True)
    assert wide_headers[0] == "name" and wide_headers.count("namespace") == 1
    assert rows_of("pods", pod_infos(), wide=False)[0][0] == "name"  # pod names are unique in a lab


def test_get_help_says_how_namespaces_are_named_and_shown():
    from click.testing import CliRunner

    from netlab.cli import cli

    out = " ".join(CliRunner().invoke(cli, ["get", "--help"]).output.split())
    assert "each NAME or NAMESPACE/NAME" in out and "x/web only the one of namespace x" in out
    assert "when two rows share a name the table begins with kubectl -A's NAMESPACE column" in out
    assert "-o wide adds the Kubernetes namespace, the selector and the DNS name, then the external traffic policy" in out
