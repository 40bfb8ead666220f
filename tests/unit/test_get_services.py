"""``netlab get services``: each Service port's endpoints, structured in -o json/yaml, "ip:port" in the table."""

from __future__ import annotations

from netlab.api import views
from netlab.api.jsonio import from_json, to_json
from netlab.api.results import EndpointInfo, ServiceInfo
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
