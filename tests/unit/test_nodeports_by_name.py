"""A running Service's port keeps its nodePort by the port's *name*, as the API server carries an allocated nodePort
over an update (pkg/registry/core/service/storage, patchAllocatedValues): a port of the new Service that declares no
nodePort takes the one the old Service's port of the same name had ("" for the one unnamed port of a single-port
Service), unless the new Service declares that number for a port of its own. So a port renumbered, or switched to
UDP, keeps its nodePort, and a port renamed (or an unnamed one that gets a name) gets a new one. A held nodePort the
lab drops for another reason than another Service declaring it (the VXLAN port now, a Service no longer of type
NodePort/LoadBalancer, no longer Local, a port name gone) is said in a line too. An older netlab's state, held by
port number and protocol, keeps its ports. tests/integration/test_held_node_ports.py does it on a real lab."""

from __future__ import annotations

import json

from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.topology import Topology

INTERNET = {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"}}


def svc(name, *ports, type_="NodePort", **extra):
    return {"name": name, "type": type_, "selector": {"app": "web"},
            "ports": list(ports) or [{"port": 80, "targetPort": 8080}], **extra}


def port(number, name=None, protocol="TCP", node_port=None):
    return {"port": number, "protocol": protocol, **({"name": name} if name else {}),
            **({"nodePort": node_port} if node_port else {})}


def topo(services, **extra):
    return Topology.model_validate({"name": "x", "nodes": [{"name": "n1"}], "internet": INTERNET,
                                    "pods": [{"name": "p", "node": "n1", "labels": {"app": "web"}}],
                                    "services": services, **extra})


def lab_of(services, held=None, **extra):
    return resolve(topo(services, **extra), held)


def ports(lab) -> dict[tuple[str, int, str], int]:
    return {(name, number, proto): np for (_, name, number, proto), np in lab.addressing.node_port.items()}


def test_a_port_renumbered_or_switched_to_udp_keeps_its_node_port_named_or_the_single_unnamed_one():
    running = lab_of([svc("new0"), svc("a"), svc("b", port(80, "http"), port(443, "https"))])
    assert ports(running) == {("new0", 80, "TCP"): 30000, ("a", 80, "TCP"): 30001, ("b", 80, "TCP"): 30002,
                              ("b", 443, "TCP"): 30003}
    held = running.held()
    assert held.node_ports[("default", "a", "")] == 30001 and held.node_ports[("default", "b", "https")] == 30003
    moved = lab_of([svc("new0"), svc("a", port(8080, protocol="UDP")),
                    svc("b", port(8443, "https"), port(81, "http"))], held=held)
    assert ports(moved) == {("new0", 80, "TCP"): 30000, ("a", 8080, "UDP"): 30001, ("b", 8443, "TCP"): 30003,
                            ("b", 81, "TCP"): 30002}
    assert moved.displaced() == []
    # two ports that swap their numbers swap nothing: each name keeps its own
    swapped = lab_of([svc("new0"), svc("a"), svc("b", port(443, "http"), port(80, "https"))], held=held)
    assert ports(swapped)[("b", 443, "TCP")] == 30002 and ports(swapped)[("b", 80, "TCP")] == 30003


def test_a_renamed_port_gets_a_new_node_port_and_up_says_the_old_one_is_freed():
    running = lab_of([svc("b", port(80, "http"), port(443, "https"))])
    renamed = lab_of([svc("b", port(80, "web"), port(443, "https"))], held=running.held())
    assert ports(renamed) == {("b", 80, "TCP"): 30002, ("b", 443, "TCP"): 30001}
    assert renamed.displaced() == [
        "service default/b's port http held nodePort 30000, which it gives up as no port of it is named http now "
        "(a nodePort stays with its port's name): the port is freed"]
    # the single unnamed port, once the Service has two ports (each then needs a name), is such a port too
    single = lab_of([svc("a")])
    named = lab_of([svc("a", port(80, "http"), port(81, "admin"))], held=single.held())
    assert ports(named) == {("a", 80, "TCP"): 30001, ("a", 81, "TCP"): 30002}
    assert named.displaced() == [
        "service default/a's unnamed port held nodePort 30000, which it gives up as no port of it is unnamed now "
        "(a nodePort stays with its port's name): the port is freed"]
    assert lab_of([svc("a", port(80, "http"), port(81, "admin"))], held=named.held()).displaced() == []  # once


def test_a_held_node_port_the_service_now_declares_for_another_port_is_not_carried_over():
    """The API server patches a held value in only where the new Service does not declare it for a port."""
    running = lab_of([svc("b", port(80, "http"), port(443, "https"))])
    taken = lab_of([svc("b", port(80, "http"), port(443, "https", node_port=30000))], held=running.held())
    assert ports(taken) == {("b", 80, "TCP"): 30002, ("b", 443, "TCP"): 30000}
    assert taken.displaced() == ["service default/b's port http (80/TCP) held nodePort 30000, which service "
                                 "default/b asks for (nodePort:): it gets 30002, a new port"]


def test_a_held_node_port_wins_over_sharing_the_one_declared_for_its_port_number():
    dns = [port(53, "dns-udp", "UDP"), port(53, "dns-tcp")]
    running = lab_of([svc("dns", *dns)])
    assert ports(running) == {("dns", 53, "UDP"): 30000, ("dns", 53, "TCP"): 30000}
    declared = lab_of([svc("dns", port(53, "dns-udp", "UDP"), port(53, "dns-tcp", node_port=30500))],
                      held=running.held())
    assert ports(declared) == {("dns", 53, "UDP"): 30000, ("dns", 53, "TCP"): 30500}
    # a TCP and a UDP port that shared one keep it on two numbers; one that turns TCP too cannot have it twice
    apart = lab_of([svc("dns", port(5353, "dns-udp", "UDP"), port(53, "dns-tcp"))], held=running.held())
    assert ports(apart) == {("dns", 5353, "UDP"): 30000, ("dns", 53, "TCP"): 30000} and apart.displaced() == []
    both_tcp = lab_of([svc("dns", port(5353, "dns-udp"), port(53, "dns-tcp"))], held=running.held())
    assert ports(both_tcp) == {("dns", 5353, "TCP"): 30000, ("dns", 53, "TCP"): 30001}
    assert both_tcp.displaced() == ["service default/dns's port dns-tcp (53/TCP) held nodePort 30000, which its "
                                    "port dns-udp (5353/TCP) keeps for TCP: it gets 30001, a new port"]


def test_held_node_ports_dropped_for_the_vxlan_port_the_type_or_the_traffic_policy_are_said():
    running = lab_of([svc("lb", type_="LoadBalancer", externalTrafficPolicy="Local"), svc("a")])
    assert ports(running) == {("lb", 80, "TCP"): 30000, ("a", 80, "TCP"): 30002}
    assert running.addressing.health_check_port == {("default", "lb"): 30001}
    vxlan = lab_of([svc("lb", type_="LoadBalancer", externalTrafficPolicy="Local"), svc("a")],
                   held=running.held(), network={"mode": "vxlan", "vxlan": {"port": 30002}})
    assert ports(vxlan)[("a", 80, "TCP")] == 30003
    assert vxlan.displaced() == ["service default/a's port 80/TCP held nodePort 30002, which is now the lab's VXLAN "
                                 "port (network.vxlan.port): it gets 30003, a new port"]
    cluster = lab_of([svc("lb", type_="LoadBalancer"), svc("a", type_="ClusterIP")], held=running.held())
    assert ports(cluster) == {("lb", 80, "TCP"): 30000} and cluster.addressing.health_check_port == {}
    assert cluster.displaced() == [
        "service default/a's port 80/TCP held nodePort 30002, which it gives up as its type is now ClusterIP: "
        "the port is freed",
        "service default/lb held healthCheckNodePort 30001, which it gives up as it is no longer a LoadBalancer "
        "with externalTrafficPolicy Local: the port is freed"]
    # NodePort and LoadBalancer both keep their nodePorts, as the API server does; a Service removed says nothing
    node_port = lab_of([svc("lb")], held=running.held())
    assert ports(node_port) == {("lb", 80, "TCP"): 30000}
    assert node_port.displaced() == [
        "service default/lb held healthCheckNodePort 30001, which it gives up as it is no longer a LoadBalancer "
        "with externalTrafficPolicy Local: the port is freed"]


def test_an_older_netlabs_state_held_by_port_and_protocol_keeps_its_node_ports():
    """A record with [namespace, name, port, protocol, nodePort] rows: its saved topology names each port (the
    running lab's), so a port renumbered by the next up keeps its nodePort; without it, the new file's port of that
    number and protocol does (what the older netlab kept)."""
    saved = topo([svc("new0"), svc("b", port(80, "http"), port(443, "https"))])
    running = resolve(saved)
    record = running.held().to_json()
    assert record["node_ports"] == [["default", "new0", "", 30000], ["default", "b", "http", 30001],
                                    ["default", "b", "https", 30002]]
    record["node_ports"] = [[*key, np] for key, np in running.addressing.node_port.items()]  # the older rows
    older = Held.from_json(json.loads(json.dumps(record)))
    assert older.node_ports == {} and older.older_node_ports == running.addressing.node_port
    migrated = older.migrated(saved)
    assert dict(migrated.node_ports) == dict(running.held().node_ports) and migrated.older_node_ports == {}
    renumbered = [svc("new0"), svc("b", port(8443, "https"), port(81, "http"))]
    assert ports(lab_of(renumbered, held=migrated)) == {("new0", 80, "TCP"): 30000, ("b", 8443, "TCP"): 30002,
                                                        ("b", 81, "TCP"): 30001}
    # unmigrated (no saved topology to name them): the new file's port of that number and protocol keeps it
    same = lab_of([svc("x"), svc("new0"), svc("b", port(80, "http"), port(443, "https"))], held=older)
    assert ports(same) == {("x", 80, "TCP"): 30003, ("new0", 80, "TCP"): 30000, ("b", 80, "TCP"): 30001,
                           ("b", 443, "TCP"): 30002}


def test_a_port_added_to_a_running_service_gets_a_node_port_of_its_own():
    """The API server shares one nodePort among a Service's ports of one number only as it creates the Service
    (initNodePorts' svcPortToNodePort, findRequestedNodePort); an update (updateNodePorts) gives each port that has
    none after patchAllocatedValues the next free one. So a UDP port added beside a running TCP port of its number
    gets a nodePort of its own, where a Service made with both shares one."""
    both = [port(53, "dns-tcp"), port(53, "dns-udp", "UDP")]
    assert ports(lab_of([svc("dns", *both)])) == {("dns", 53, "TCP"): 30000, ("dns", 53, "UDP"): 30000}
    running = lab_of([svc("dns", port(53, "dns-tcp"))])
    added = lab_of([svc("dns", *both)], held=running.held())
    assert ports(added) == {("dns", 53, "TCP"): 30000, ("dns", 53, "UDP"): 30001} and added.displaced() == []
    # nor the one declared for its number: only a Service's creation looks for it
    declared = [port(53, "dns-tcp", node_port=30500), port(53, "dns-udp", "UDP")]
    assert ports(lab_of([svc("dns", *declared)])) == {("dns", 53, "TCP"): 30500, ("dns", 53, "UDP"): 30500}
    added = lab_of([svc("dns", *declared)], held=lab_of([svc("dns", declared[0])]).held())
    assert ports(added) == {("dns", 53, "TCP"): 30500, ("dns", 53, "UDP"): 30000}
    assert lab_of([svc("dns", *both)], held=added.held()).displaced() == []  # then each keeps its own by name


def test_a_running_cluster_ip_service_turned_node_port_is_updated_not_created():
    """A Service whose type changes from ClusterIP to NodePort in an update goes through the API server's update path
    (txnUpdateNodePorts -> updateNodePorts), not its create path: each port that declares no nodePort takes the next
    free one of its own (AllocateNext), none shared by port number, and a declared one is allocated as asked. A
    Service made NodePort at once shares one among its ports of one number (svcPortToNodePort)."""
    both = [port(53, "dns-tcp"), port(53, "dns-udp", "UDP")]
    running = lab_of([svc("dns", *both, type_="ClusterIP")])
    assert ports(running) == {}
    turned = lab_of([svc("dns", *both)], held=running.held())
    assert ports(turned) == {("dns", 53, "TCP"): 30000, ("dns", 53, "UDP"): 30001} and turned.displaced() == []
    # a declared one is the port's alone: its port number's other port gets the next free one
    declared = [port(53, "dns-tcp", node_port=30500), port(53, "dns-udp", "UDP")]
    turned = lab_of([svc("dns", *declared)], held=running.held())
    assert ports(turned) == {("dns", 53, "TCP"): 30500, ("dns", 53, "UDP"): 30000}
    # then each keeps its own by name, in every later update
    assert ports(lab_of([svc("dns", *both)], held=turned.held())) == ports(turned)
    # a Service the running lab did not have is created: it shares
    other = svc("other", type_="ClusterIP")
    fresh = lab_of([other, svc("dns", *both)], held=lab_of([other]).held())
    assert ports(fresh) == {("dns", 53, "TCP"): 30000, ("dns", 53, "UDP"): 30000}


def test_a_running_cluster_ip_service_turned_local_load_balancer_gets_its_check_after_its_ports():
    """updateHealthCheckNodePort runs after updateNodePorts: the check takes the next free one after the ports."""
    both = [port(53, "dns-tcp"), port(53, "dns-udp", "UDP")]
    running = lab_of([svc("dns", *both, type_="ClusterIP")])
    turned = lab_of([svc("dns", *both, type_="LoadBalancer", externalTrafficPolicy="Local")], held=running.held())
    assert ports(turned) == {("dns", 53, "TCP"): 30000, ("dns", 53, "UDP"): 30001}
    assert turned.addressing.health_check_port == {("default", "dns"): 30002} and turned.displaced() == []
