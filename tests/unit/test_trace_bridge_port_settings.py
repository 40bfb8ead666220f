"""A bridge port's settings that keep frames from it, as the trace says them (no root; the fake kernel of
test_trace_walk): two isolated ports forward nothing to each other, a port with bcast_flood off gets no ARP
request from another port, one with flood off no frame for a MAC the bridge has not learned. Before, the trace
showed the frame going out of the port, or blamed the ARP target ("nothing on that link answers")."""

from __future__ import annotations

from dataclasses import replace

from netlab.trace.walk import walk  # noqa: F401
from test_trace_walk import ping, world  # noqa: F401  (the fixture)


def set_port(k, netns: str, port: str, *words: str) -> None:
    k._links[netns][port] = replace(k._links[netns][port], port_settings=words)


def test_an_arp_request_to_a_port_with_bcast_flood_off_says_so(world):  # noqa: F811
    lab, m, k = world
    port3 = lab.pod("fedora-3").host_veth
    set_port(k, "demo-minikube", port3, "bcast_flood off")
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    last = ping(k, m, dst="10.244.0.3").hops[-1]
    assert (last.netns, last.kind) == ("demo-fedora-1", "neigh")
    assert last.problem == (f"no ARP answer for 10.244.0.3 on eth0 (INCOMPLETE): the bridge port {port3} of cni0 in "
                            "demo-minikube (veth peer of fedora-3's eth0) has bcast_flood off: the bridge floods no "
                            "broadcast (an ARP request) from another port to it")
    assert last.fix == f"bridge -n demo-minikube link set dev {port3} bcast_flood on"


def test_two_isolated_ports_forward_nothing_to_each_other(world):  # noqa: F811
    lab, m, k = world
    port1, port3 = lab.pod("fedora-1").host_veth, lab.pod("fedora-3").host_veth
    set_port(k, "demo-minikube", port3, "isolated on")
    assert ping(k, m, dst="10.244.0.3").outcome != "stopped"  # one isolated port: it still talks to the others
    set_port(k, "demo-minikube", port1, "isolated on")
    w = ping(k, m, dst="10.244.0.3")
    last = w.hops[-1]
    assert w.outcome == "stopped" and (last.netns, last.device, last.kind) == ("demo-minikube", port3, "bridge")
    assert last.problem == (f"the bridge port {port3} of cni0 in demo-minikube (veth peer: eth0 in demo-fedora-3) is "
                            f"isolated, and so is {port1}, the port the frame came in by: the bridge forwards nothing "
                            "between two isolated ports")
    assert last.fix == f"bridge -n demo-minikube link set dev {port3} isolated off"
