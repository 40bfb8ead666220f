"""nodePorts of a running lab: a Service keeps the nodePorts and the healthCheckNodePort it was given for its life,
as the API server keeps an allocated port; a Service added anywhere in the file takes the lowest free one, and a
nodePort the file now declares for another Service goes to that one, the holder getting a new one (said in a line,
as displaced addresses are). A fresh lab is allocated in file order, as before. tests/integration/
test_held_node_ports.py does it on a real lab."""

from __future__ import annotations

import json

import pytest

from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.topology import Topology

INTERNET = {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"}}


def svc(name, type_="NodePort", node_port=None, **extra):
    port = {"port": 80, "targetPort": 8080, **({"nodePort": node_port} if node_port else {})}
    return {"name": name, "type": type_, "selector": {"app": "web"}, "ports": [port], **extra}


def lb_local(name="lb", **extra):
    return svc(name, "LoadBalancer", externalTrafficPolicy="Local", **extra)


def lab_of(services, held=None):
    data = {"name": "x", "nodes": [{"name": "n1"}], "internet": INTERNET,
            "pods": [{"name": "p", "node": "n1", "labels": {"app": "web"}}], "services": services}
    return resolve(Topology.model_validate(data), held)


def ports(lab) -> dict[str, int]:
    return {name: np for (_, name, _, _), np in lab.addressing.node_port.items()}


def checks(lab) -> dict[str, int]:
    return {name: hc for (_, name), hc in lab.addressing.health_check_port.items()}


def test_a_node_port_service_added_above_a_running_one_moves_not_its_node_port():
    running = lab_of([svc("a")])
    assert ports(running) == {"a": 30000}
    added = lab_of([svc("new"), svc("a")], held=running.held())
    assert ports(added) == {"new": 30001, "a": 30000} and added.displaced() == []
    assert ports(lab_of([svc("new"), svc("a")])) == {"new": 30000, "a": 30001}  # a fresh lab: file order
    removed = lab_of([svc("a")], held=added.held())  # one removed frees its own: the next new one takes it
    assert ports(lab_of([svc("b"), svc("a")], held=removed.held())) == {"b": 30001, "a": 30000}


def test_a_running_health_check_keeps_its_port_and_one_the_file_declares_for_another_displaces_it():
    running = lab_of([lb_local()])
    assert ports(running) == {"lb": 30000} and checks(running) == {"lb": 30001}
    both = lab_of([lb_local(), svc("np", node_port=30001)], held=running.held())
    assert ports(both) == {"lb": 30000, "np": 30001} and checks(both) == {"lb": 30002}
    assert both.displaced() == ["service default/lb held healthCheckNodePort 30001, which service default/np "
                                "asks for (nodePort:): it gets 30002, a new port"]
    assert lab_of([lb_local(), svc("np", node_port=30001)], held=both.held()).displaced() == []  # said once
    took = lab_of([lb_local(), svc("np", node_port=30000)], held=running.held())
    assert ports(took) == {"lb": 30002, "np": 30000} and checks(took) == {"lb": 30001}
    assert took.displaced() == ["service default/lb's port 80/TCP held nodePort 30000, which service default/np "
                                "asks for (nodePort:): it gets 30002, a new port"]
    # the Service's own declared port is no one's loss, nor a new declared healthCheckNodePort
    own = lab_of([lb_local(healthCheckNodePort=30100)], held=running.held())
    assert ports(own) == {"lb": 30000} and checks(own) == {"lb": 30100} and own.displaced() == []


def test_ports_of_one_number_share_the_held_node_port_and_a_new_health_check_takes_a_free_one():
    two = svc("dns", ports=[{"name": "u", "port": 53, "protocol": "UDP"}, {"name": "t", "port": 53}])
    running = lab_of([svc("a"), two])
    assert ports(running) == {"a": 30000, "dns": 30001}
    again = lab_of([svc("new"), two, svc("a")], held=running.held())
    assert sorted(again.addressing.node_port.values()) == [30000, 30001, 30001, 30002]
    assert ports(again) == {"new": 30002, "dns": 30001, "a": 30000}
    local = lab_of([lb_local("a"), two], held=running.held())  # turned Local: its check takes the lowest free
    assert ports(local) == {"a": 30000, "dns": 30001} and checks(local) == {"a": 30002}


def test_a_held_node_port_the_file_no_longer_allows_is_not_kept_and_up_says_so():
    running = lab_of([svc("a")])
    data = {"name": "x", "nodes": [{"name": "n1"}], "network": {"mode": "vxlan", "vxlan": {"port": 30000}},
            "pods": [], "services": [svc("a")]}
    moved = resolve(Topology.model_validate(data), running.held())
    assert ports(moved) == {"a": 30001} and moved.displaced() == [
        "service default/a's port 80/TCP held nodePort 30000, which is now the lab's VXLAN port "
        "(network.vxlan.port): it gets 30001, a new port"]


def test_held_node_ports_survive_the_state_file_and_an_older_record_holds_none():
    running = lab_of([lb_local(), svc("a")])
    moved = lab_of([svc("b"), lb_local(), svc("a")], held=running.held())
    saved = Held.from_json(json.loads(json.dumps(moved.held().to_json())))
    assert saved == moved.held()
    assert dict(saved.node_ports) == {("default", "b", ""): 30003, ("default", "lb", ""): 30000,
                                      ("default", "a", ""): 30002}
    assert dict(saved.health_checks) == {("default", "lb"): 30001}
    again = resolve(moved.topo, saved)
    assert again.addressing.node_port == moved.addressing.node_port and checks(again) == checks(moved)
    older = {k: v for k, v in moved.held().to_json().items() if k not in ("node_ports", "health_checks")}
    assert Held.from_json(older).node_ports == {} and Held.from_json(older).health_checks == {}
    for bad in ([["default", "a", "80", "TCP", "x"]], [["default", "a", 80, "TCP"]], 7):
        with pytest.raises((ValueError, TypeError, KeyError)):
            Held.from_json({**older, "node_ports": bad})
