"""Who a trace is from and to, where it captures, and the commands' surface (no root)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from helpers import two_node_topology
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology
from netlab.trace.targets import capture_namespaces, lab_map, resolve_source, resolve_target

SVC = """
services:
  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
  - {name: dns, selector: {app: dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
internet:
  cidr: 203.0.113.0/24
  gateway: {ip: 203.0.113.1}
  hosts:
    - {name: example, ip: 203.0.113.10}
"""


def lab_from(text: str):
    return resolve(Topology.model_validate(parse_yaml(text, "t.yaml").data))


@pytest.fixture(scope="module")
def lab():
    text = two_node_topology("tt").replace("ip: 10.244.1.3}", "ip: 10.244.1.3, labels: {app: web}}")
    return lab_from(text + SVC)


def test_sources(lab):
    assert resolve_source(lab, "fedora-1").netns == "tt-fedora-1"
    node = resolve_source(lab, "minikube")
    assert (node.kind, node.ip, node.netns) == ("node", "192.168.122.215", "tt-minikube")
    assert resolve_source(lab, "example").ip == "203.0.113.10"
    with pytest.raises(UsageError, match="no pod, node or internet host 'nope'"):
        resolve_source(lab, "nope")


def test_targets(lab):
    src = resolve_source(lab, "fedora-1")
    pod = resolve_target(lab, "fedora-2", "tcp", None, src)
    assert (pod.ip, pod.port) == ("10.244.1.3", 8080)  # the echo server's port
    assert resolve_target(lab, "10.244.1.3", None, None, src).name == "fedora-2"
    assert resolve_target(lab, "minikube-m02", None, None, src).ip == "192.168.122.7"
    assert resolve_target(lab, "example", None, None, src).kind == "internet"
    web = resolve_target(lab, "svc/web", None, None, src)
    assert (web.kind, web.port, web.proto, web.service) == ("service", 80, "tcp", "web")
    assert web.ip == str(lab.addressing.service_ip[("default", "web")])
    dns = resolve_target(lab, "svc/dns", None, None, src)
    assert (dns.port, dns.proto) == (53, "udp")
    by_ip = resolve_target(lab, web.ip, None, None, src)
    assert by_ip.service == "web"


def test_bad_targets(lab):
    src = resolve_source(lab, "fedora-1")
    with pytest.raises(UsageError, match="no Service 'nope'"):
        resolve_target(lab, "svc/nope", None, None, src)
    with pytest.raises(UsageError, match=r"has no port 81/TCP \(ports: 80/TCP\)"):  # the internet's: no ClusterIP
        resolve_target(lab, "svc/web", "tcp", 81, resolve_source(lab, "example"))
    with pytest.raises(UsageError, match="only traces packets inside the lab"):
        resolve_target(lab, "8.8.8.8", None, None, src)
    with pytest.raises(UsageError, match="Service web has no address on the internet") as err:
        resolve_target(lab, "svc/web", None, None, resolve_source(lab, "example"))
    # the trace it says to run instead names the lab: typed as printed, it is this lab's whatever else is up
    assert str(err.value).endswith(f"netlab trace --lab {lab.name} example NODE --proto tcp --port N")


def test_capture_covers_the_whole_path(lab):
    src = resolve_source(lab, "fedora-1")
    ns = capture_namespaces(lab, src, resolve_target(lab, "fedora-2", None, None, src))
    assert ns == ["tt-fedora-1", "tt-minikube", "tt-minikube-m02", "tt-underlay", "tt-fedora-2"]
    svc = capture_namespaces(lab, src, resolve_target(lab, "svc/web", None, None, src))
    assert "tt-fedora-2" in svc and "tt-gateway" in svc  # endpoints, and where an unmatched packet would go
    assert len(svc) == len(set(svc))


def test_lab_map_knows_peers_names_and_services(lab):
    m = lab_map(lab)
    pod = lab.pod("fedora-1")
    assert m.peers[("tt-fedora-1", "eth0")] == ("tt-minikube", pod.host_veth)
    assert m.peers[("tt-minikube", pod.host_veth)] == ("tt-fedora-1", "eth0")
    assert m.where("tt-minikube") == "node minikube" and m.where("tt-underlay") == "underlay"
    assert m.name_ip("10.244.1.0") == "10.244.1.0 (minikube-m02 flannel.1)"
    web = m.service_for(str(lab.addressing.service_ip[("default", "web")]), 80, "tcp")
    assert web.endpoints[0][:3] == ("10.244.1.3", 8080, "fedora-2")
    assert "tt-minikube" in m.nat_netns and "tt-gateway" in m.nat_netns


def test_commands_are_registered_with_help():
    from netlab.cli import cli

    runner = CliRunner()
    for cmd, words in (("trace", ["SRC", "DST", "--pcap", "--proto", "udp.port==8472,vxlan"]),
                       ("capture", ["NAME:IFACE", "--count", "--timeout", "--write"]),
                       ("inspect", ["NAME", "iptables", "conntrack"])):
        out = runner.invoke(cli, [cmd, "--help"])
        assert out.exit_code == 0, out.output
        for w in words:
            assert w in out.output, (cmd, w)


def test_capture_target_must_be_name_colon_iface():
    from netlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["capture", "minikube"])
    assert exc.value.code == 2


def test_trace_picture_options_and_an_unwritable_file_fail_before_any_work(tmp_path, capsys):
    from netlab.cli import cli, main

    out = CliRunner().invoke(cli, ["trace", "--help"])
    assert "[text|json|svg|png|dot|yaml]" in out.output and "--write FILE" in out.output
    with pytest.raises(SystemExit) as exc:
        main(["trace", "fedora-1", "fedora-2", "-o", "svg", "-w", str(tmp_path / "missing" / "p.svg")])
    assert exc.value.code == 2 and "p.svg: No such file or directory" in capsys.readouterr().err


def test_service_by_namespace_and_name(lab):
    src = resolve_source(lab, "fedora-1")
    web = lab.services[[s.name for s in lab.services].index("web")]
    qualified = resolve_target(lab, f"svc/{web.namespace}/web", None, None, src)
    assert qualified == resolve_target(lab, "svc/web", None, None, src)
    with pytest.raises(UsageError, match="^namespace elsewhere has no Service web; name it svc/default/web$"):
        resolve_target(lab, "svc/elsewhere/web", None, None, src)


def test_a_trace_to_a_nodes_host_port_captures_the_pod_behind_it():
    """portmap DNATs a node's hostPort to its pod: the pod's namespace is captured too, so the delivered row is
    seen, as a Service's endpoints are (QA: only a Service's endpoints were)."""
    lab = lab_from("name: hx\nnodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
                   "pods:\n  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, "
                   "hostPort: 18080}]}]}\n  - {name: b, node: n2}\n  - {name: c, node: n2}\n")
    src = resolve_source(lab, "b")
    to_port = capture_namespaces(lab, src, resolve_target(lab, "n1", "tcp", 18080, src))
    assert "hx-a" in to_port and len(to_port) == len(set(to_port)), to_port
    assert "hx-a" not in capture_namespaces(lab, src, resolve_target(lab, "n1", "tcp", 18081, src))
    assert "hx-a" not in capture_namespaces(lab, src, resolve_target(lab, "n2", "tcp", 18080, src))  # not n2's
