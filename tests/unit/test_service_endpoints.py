"""A Service's endpoints are the pods its selector matches, declared port or not, as the EndpointSlice controller
makes them for a numeric targetPort; validate and up say when one will not answer (no root)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from netlab.cli import cli
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.plan import services
from netlab.model.endpoints import service_notes

TOPO = {"name": "ep", "nodes": [{"name": "n1"}],
        "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}},  # netlab's echo server: 8080/TCP and UDP
                 {"name": "b", "node": "n1", "labels": {"app": "a"},
                  "containers": [{"name": "c", "command": ["sleep", "infinity"], "ports": [{"containerPort": 9090}]}]}],
        "services": [{"name": "s", "selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}]},
                     {"name": "u", "selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080,
                                                                        "protocol": "UDP"}]},
                     {"name": "none", "selector": {"app": "zz"}, "ports": [{"port": 80}]}]}


def lab_of(data: dict):
    return resolve(Topology.model_validate(data))


def test_every_selected_pod_is_an_endpoint_whatever_it_declares():
    lab = lab_of(TOPO)
    idx = services.endpoint_index(lab)
    for svc in lab.services:
        for port in svc.ports:
            assert idx[(svc.namespace, svc.name, port.port, port.protocol)] == lab.endpoints(svc, port)
    s = next(svc for svc in lab.services if svc.name == "s")
    assert [(p.name, target) for p, target in lab.endpoints(s, s.ports[0])] == [("a", 8080), ("b", 8080)]


def test_notes_name_the_endpoint_that_will_not_answer_and_the_service_without_any():
    notes = service_notes(lab_of(TOPO))
    assert notes == [
        "service default/s port 80/TCP: endpoint b declares no 8080/TCP: kube-proxy sends it its share of the "
        "connections anyway, and nothing listens there (declare the port, or serve it with a command)",
        # a's echo server answers UDP on its TCP port (the UDP twin): only b is said
        "service default/u port 80/UDP: endpoint b declares no 8080/UDP: kube-proxy sends it its share of the "
        "connections anyway, and nothing listens there (declare the port, or serve it with a command)",
        "service default/none port 80/TCP: no pod of namespace default has the labels app=zz: no endpoints, so "
        "kube-proxy rejects its connections"]
    served = dict(TOPO, services=TOPO["services"][:1], pods=TOPO["pods"][:1])
    assert service_notes(lab_of(served)) == []
    nobody = dict(TOPO, services=[{"name": "manual", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}])
    assert service_notes(lab_of(nobody)) == [
        "service default/manual port 80/TCP, 53/UDP: no selector, so no endpoints (netlab writes no EndpointSlice "
        "for it): kube-proxy rejects its connections"]


def test_validate_says_the_notes_and_still_passes(tmp_path):
    path = tmp_path / "ep.yaml"
    path.write_text(yaml.safe_dump(TOPO))
    text = CliRunner().invoke(cli, ["validate", "-t", str(path)])
    assert text.exit_code == 0, text.output
    # at its selector's line (safe_dump sorts the keys: services come last, none's selector after its ports)
    lines = path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip() == "app: zz") - 1
    assert f"netlab: note: {path}:{line}: services[2].selector: service default/none port 80/TCP: no pod" \
        in text.output, text.output
    data = json.loads(CliRunner().invoke(cli, ["validate", "-t", str(path), "-o", "json"]).stdout)
    assert data["valid"] and len(data["notes"]) == 3



def test_the_probe_names_the_endpoint_that_leaves_a_udp_service_unprobed():
    from netlab.probe import services as svcs

    plan = svcs.build(lab_of(TOPO))
    assert [n for n in plan.notes if n.startswith("svc/u udp/80: not probed")] == [
        "svc/u udp/80: not probed: endpoint b answers it with no echo server of netlab's (a command of their own "
        "may, or nothing), and a silent UDP server cannot be told from a lost packet"]
