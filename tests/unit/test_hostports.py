"""A container port's hostPort (and hostIP): the topology takes them, refuses them where no CNI plugin would get
them, and the runtime hands them to the plugins that declare portMappings, as containerd's CRI plugin does
(``toCNIPortMappings``: one entry per port with a hostPort, the protocol in lower case, the hostIP as written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import located_problems
from netlab.cni import conf as C
from netlab.model.cniconf import read_conflist
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.cniadd import add_steps

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "topology.schema.json").read_text("utf-8"))
BRIDGE = {"type": "bridge", "bridge": "cni0", "isGateway": True, "capabilities": {"ipRanges": True},
          "ipam": {"type": "host-local"}}
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}}


def topo(tmp_path: Path, pods: str, plugins: list | None = (BRIDGE, PORTMAP), cni: str | None = None) -> str:
    if plugins is not None:
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "hp",
                                                           "plugins": list(plugins)}))
        (tmp_path / "bin").mkdir(exist_ok=True)
    cni = cni or "{conflist: net.conflist, binDir: bin}"
    return (f"name: hpt\nnetwork: {{mode: host-gw, cni: {cni}}}\n"
            "nodes: [{name: n1, ip: 192.168.122.10}, {name: n2}]\npods:\n" + pods)


WEB = ("  - name: web\n    node: n1\n    containers:\n      - name: c\n        ports:\n"
       "          - {containerPort: 8080, hostPort: 18080}\n"
       "          - {containerPort: 53, protocol: UDP, hostPort: 1053, hostIP: 192.168.122.10}\n"
       "          - {containerPort: 9000}\n")


def lab_of(tmp_path: Path, text: str):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return resolve(load_topology(str(path)))


def test_the_runtime_hands_portmap_the_pods_host_ports_as_containerd_does(tmp_path):
    lab = lab_of(tmp_path, topo(tmp_path, WEB + "  - {name: other, node: n2}\n"))
    web, other = lab.pod("web"), lab.pod("other")
    mappings = [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp", "hostIP": ""},
                {"hostPort": 1053, "containerPort": 53, "protocol": "udp", "hostIP": "192.168.122.10"}]
    caps = C.capability_args(lab, web, web.ip)
    assert caps["portMappings"] == mappings
    assert C.capability_args(lab, other, other.ip)["portMappings"] == []  # containerd: none when no hostPort
    # The JSON each plugin gets on stdin: portmap declares the capability, bridge does not.
    net = read_conflist(str(tmp_path / "net.conflist"))
    stdin = [json.loads(json.dumps(C.build_one_config(net, p, None, caps))) for p in net.plugins]
    assert "runtimeConfig" not in stdin[0] or "portMappings" not in stdin[0]["runtimeConfig"]
    assert stdin[1]["runtimeConfig"] == {"portMappings": mappings}
    # netlab plan says it too, and what portmap is to make.
    step = next(s for s in add_steps(lab, str(tmp_path / "bin")) if s.pod == "web")
    assert step.to_json()["runtimeConfig"]["portmap"] == {"portMappings": mappings}
    assert ("portmap: host ports of hpt-n1 to the pod (runtimeConfig.portMappings): 192.168.122.10:18080/tcp to "
            "8080, 192.168.122.10:1053/udp to 53") in step.expected


@pytest.mark.parametrize("pods, cni, plugins, want", [
    (WEB, "reference", None, (10, "pods[0].containers[0].ports[0].hostPort",
                              "hostPort needs a CNI plugin with the portMappings capability (portmap), and "
                              "network.cni reference runs Debian's bridge alone; use network.cni builtin (which "
                              "writes portmap's rules) or {conflist: FILE} with portmap")),
    (WEB, None, [BRIDGE], (10, "pods[0].containers[0].ports[0].hostPort", "hostPort needs a CNI plugin with the "
                           "portMappings capability, and no plugin of {dir}/net.conflist declares it; add portmap "
                           "with \"capabilities\": {\"portMappings\": true}")),
    ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostIP: 192.168.122.10}]}]}\n",
     None, [BRIDGE, PORTMAP], (5, "pods[0].containers[0].ports[0].hostIP",
                               "hostIP names the node address of a hostPort; give hostPort too, or remove hostIP")),
    ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 80}]}]}\n"
     "  - {name: b, node: n1, containers: [{name: c, ports: [{containerPort: 81, hostPort: 80, "
     "hostIP: 192.168.122.10}]}]}\n",
     None, [BRIDGE, PORTMAP], (6, "pods[1].containers[0].ports[0].hostPort",
                               "hostPort 80/TCP on node 'n1' is already taken by pod 'a'; one node's pods cannot "
                               "share a host port")),
    ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 0}]}]}\n",
     None, [BRIDGE, PORTMAP], (5, "pods[0].containers[0].ports[0].hostPort", None)),
])
def test_a_host_port_no_plugin_would_get_is_refused_in_one_located_line(tmp_path, pods, cni, plugins, want):
    problems = located_problems(topo(tmp_path, pods, plugins, cni), tmp_path)
    assert len(problems) == (2 if pods == WEB and plugins is None else 1), problems
    line, field, message = problems[0]
    assert (line, field) == want[:2], problems
    if want[2] is not None:
        assert message == want[2].replace("{dir}", str(tmp_path)), problems
    else:
        assert "1" in message and "65535" in message, problems


def test_a_builtin_lab_takes_host_ports_and_refuses_what_the_scheduler_and_portmap_would(tmp_path):
    """The builtin network plays the portmap of its nodes' 10-flannel.conflist (it refused every hostPort: "network.cni
    builtin runs none"): hostPorts are taken, and two pods of one node on one hostPort, or a hostIP that is not the
    node's, are refused as under a conflist with portmap, in one located line."""
    assert located_problems(topo(tmp_path, WEB, None, "builtin"), tmp_path) == []
    pods = ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 80}]}]}\n"
            "  - {name: b, node: n1, containers: [{name: c, ports: [{containerPort: 81, hostPort: 80}]}]}\n"
            "  - {name: c, node: n1, containers: [{name: c, ports: [{containerPort: 81, hostPort: 81, "
            "hostIP: 192.168.122.11}]}]}\n")
    assert located_problems(topo(tmp_path, pods, None, "builtin"), tmp_path) == [
        (6, "pods[1].containers[0].ports[0].hostPort", "hostPort 80/TCP on node 'n1' is already taken by pod 'a'; "
                                                       "one node's pods cannot share a host port"),
        (7, "pods[2].containers[0].ports[0].hostIP", "hostIP 192.168.122.11 is not an address of node 'n1' "
         "(192.168.122.10, loopback); portmap would DNAT packets that never come: use 192.168.122.10, 0.0.0.0 "
         "(every address of the node) or remove hostIP")]


def test_host_ports_that_do_not_clash_are_taken(tmp_path):
    pods = ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 80}, "
            "{containerPort: 80, protocol: UDP, hostPort: 80}]}]}\n"  # another protocol
            "  - {name: b, node: n2, containers: [{name: c, ports: [{containerPort: 80, hostPort: 80}]}]}\n"  # node
            "  - {name: c, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 81, "
            "hostIP: 192.168.122.10}]}]}\n"
            "  - {name: d, node: n1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 81, "
            "hostIP: 127.0.0.1}]}]}\n")  # another address
    assert located_problems(topo(tmp_path, pods), tmp_path) == []


@pytest.mark.parametrize("node, host_ip, message", [
    ("n1", "192.168.122.11", "hostIP 192.168.122.11 is not an address of node 'n1' (192.168.122.10, loopback); "
                             "portmap would DNAT packets that never come: use 192.168.122.10, 0.0.0.0 (every "
                             "address of the node) or remove hostIP"),
    ("n1", "192.168.122.1", "hostIP 192.168.122.1 is not an address of node 'n1' (192.168.122.10, loopback); "
                            "portmap would DNAT packets that never come: use 192.168.122.10, 0.0.0.0 (every "
                            "address of the node) or remove hostIP"),  # the underlay's router
    ("n2", "192.168.122.10", "hostIP 192.168.122.10 is not an address of node 'n2' (its ip is allocated, so no "
                             "address is sure to be its own but loopback); pin the node's ip: to the address, "
                             "or use 0.0.0.0 (every address of the node) or remove hostIP"),
])
def test_a_host_ip_that_is_not_the_nodes_is_refused_in_one_located_line(tmp_path, node, host_ip, message):
    """kubelet and portmap take any hostIP and DNAT <hostIP>:hostPort in the node's nat table: an address the node
    does not have (another node's, the router's, or one of a node whose address is allocated) is a rule no packet
    meets, so validate refuses it. The node's own ip, loopback and 0.0.0.0 stay (test_host_ports_that_do_not_clash...)."""
    pods = (f"  - {{name: a, node: {node}, containers: [{{name: c, ports: [{{containerPort: 80, hostPort: 80, "
            f"hostIP: {host_ip}}}]}}]}}\n")
    assert located_problems(topo(tmp_path, pods), tmp_path) == [
        (5, "pods[0].containers[0].ports[0].hostIP", message)]


def test_host_ip_zero_and_loopback_are_every_node_s_own(tmp_path):
    pods = ("  - {name: a, node: n2, containers: [{name: c, ports: [{containerPort: 80, hostPort: 80, "
            "hostIP: 0.0.0.0}, {containerPort: 81, hostPort: 81, hostIP: 127.0.0.2}]}]}\n")
    assert located_problems(topo(tmp_path, pods), tmp_path) == []


def test_the_schema_has_host_port_and_host_ip():
    props = SCHEMA["$defs"]["ContainerPort"]["properties"]
    port = next(s for s in props["hostPort"]["anyOf"] if s.get("type") == "integer")
    assert (port["minimum"], port["maximum"]) == (1, 65535)
    assert {"type": "string", "format": "ipv4"} in props["hostIP"]["anyOf"]
    assert SCHEMA["$defs"]["ContainerPort"].get("additionalProperties") is False


def test_a_changed_host_port_re_attaches_the_pod_and_an_unchanged_one_does_not(tmp_path):
    """A pod whose hostPorts changed in the file is a new pod in Kubernetes: up DELs it with what its plugins were
    given and ADDs it again (it used to keep the old mapping, "nothing to change"). A record from before hostPort
    (portMappings [] and no bandwidth) is unchanged for a pod with neither."""
    from netlab.cni import changed

    lab = lab_of(tmp_path, topo(tmp_path, WEB + "  - {name: other, node: n2}\n"))
    web, other = lab.pod("web"), lab.pod("other")
    now = C.capability_args(lab, web, web.ip)
    assert changed.respecified(lab, web, {"capabilityArgs": now}) is None
    old = {**now, "portMappings": [{**now["portMappings"][0], "hostPort": 18000}] + now["portMappings"][1:]}
    found = changed.respecified(lab, web, {"capabilityArgs": old})
    assert found is not None and found.reattach_reason() == (
        "the topology changed its hostPorts (runtimeConfig.portMappings) since its plugins were given them")
    assert found.drift_line("web").startswith("cni: pod web: the topology changed its hostPorts")
    before = {"ips": ["x"], "mac": "m", "portMappings": [], "ipRanges": []}
    assert changed.respecified(lab, other, {"capabilityArgs": before}) is None


def test_ip6tables_tables_are_the_plugins_in_a_node_where_they_run():
    """portmap's DEL runs ip6tables, which makes table ip6 nat (the lab plans no IPv6 rule): the plugins' where
    they run, an extra table elsewhere; any other family's table stays extra."""
    from netlab.realize.diff import diff_nft
    from netlab.realize.observe import Observed

    obs = Observed(netns="hpt-n1", nft={("ip6", "nat"): {}, ("inet", "mine"): {}})
    assert [(d.state, d.resource.family, d.resource.table) for d in diff_nft(obs, [], plugins=True)] == [
        ("extra", "inet", "mine")]
    assert [(d.resource.family, d.resource.table) for d in diff_nft(obs, [])] == [("inet", "mine"), ("ip6", "nat")]


def test_a_udp_host_port_on_the_vxlan_port_is_refused_in_one_located_line(tmp_path):
    """portmap's DNAT of a UDP hostPort matches every packet to the node's own addresses on that port
    (``--dst-type LOCAL``): on the VXLAN port (8472, Flannel's) it would hand the overlay's own packets to the pod,
    cutting every node from the others' pods. Refused, as a nodePort there is; TCP 8472, or any port in host-gw
    mode (no overlay), is free."""
    udp = ("  - {name: a, node: n1, containers: [{name: c, ports: [{containerPort: 53, hostPort: 8472, "
           "protocol: UDP}]}]}\n")
    def vxlan(pods: str) -> str:
        return topo(tmp_path, pods, None, "builtin").replace("mode: host-gw", "mode: vxlan")

    assert located_problems(vxlan(udp), tmp_path) == [
        (5, "pods[0].containers[0].ports[0].hostPort", "hostPort 8472/UDP is the VXLAN port (network.vxlan.port) "
         "of node 'n1': portmap would DNAT the overlay's own packets to the pod; pick another")]
    assert located_problems(vxlan(udp.replace("protocol: UDP", "protocol: TCP")), tmp_path) == []
    assert located_problems(topo(tmp_path, udp, None, "builtin"), tmp_path) == []  # host-gw: no overlay
