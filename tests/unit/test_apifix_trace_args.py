"""A port without a protocol is TCP (or the destination's UDP-only port), in trace as in reach (no root)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from helpers import two_node_topology
from netlab.api import reach as reach_mod
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology
from netlab.trace import run as run_mod
from netlab.trace.targets import resolve_source, resolve_target

# fedora-2 serves 5353 over UDP only (written UDP), and 8080 over TCP (with its UDP twin).
UDP_POD = "ip: 10.244.1.3, containers: [{name: s, ports: [{containerPort: 5353, protocol: UDP}, " \
          "{containerPort: 8080}]}]}"


@pytest.fixture(scope="module")
def lab():
    text = two_node_topology("tt", pods_per_node=1).replace("ip: 10.244.1.3}", UDP_POD)
    return resolve(Topology.model_validate(parse_yaml(text, "t.yaml").data))


def test_a_port_alone_resolves_to_tcp_or_to_the_pods_udp_only_port(lab):
    src = resolve_source(lab, "fedora-1")
    assert resolve_target(lab, "fedora-2", None, 8080, src).proto == "tcp"
    assert resolve_target(lab, "fedora-2", None, 5353, src).proto == "udp"
    assert resolve_target(lab, "fedora-2", None, 9999, src).proto == "tcp"  # nothing known there: TCP
    assert resolve_target(lab, "fedora-2", None, None, src).proto is None  # no port: a ping
    assert resolve_target(lab, "fedora-2", "udp", 8080, src).proto is None  # given: kept as given (run's)


@pytest.fixture
def sent(monkeypatch):
    """run()'s resolved arguments, stopped before anything is captured or sent."""
    seen: dict = {}

    def fake_run(lab, lm, src, dst, proto, port, *rest):
        seen.update(proto=proto, port=port)
        return "stopped"

    monkeypatch.setattr(run_mod, "_run", fake_run)
    monkeypatch.setattr(run_mod.nsmod, "is_netns_mount", lambda ns: True)
    return seen


@pytest.mark.parametrize("dst,port,proto", [("fedora-2", 8080, "tcp"), ("fedora-2", 5353, "udp"),
                                            ("minikube-m02", 22, "tcp"), ("10.244.1.3", 8080, "tcp")])
def test_trace_with_a_port_and_no_protocol_does_not_send_a_ping(lab, sent, dst, port, proto):
    assert run_mod.run(lab, "fedora-1", dst, port=port) == "stopped"
    assert sent == {"proto": proto, "port": port}


def test_trace_without_a_port_still_pings(lab, sent):
    run_mod.run(lab, "fedora-1", "minikube-m02")
    assert sent == {"proto": "icmp", "port": None}


def test_trace_refuses_a_port_with_icmp(lab, sent):
    with pytest.raises(UsageError, match="ICMP echo has no port"):
        run_mod.run(lab, "fedora-1", "fedora-2", proto="icmp", port=80)
    assert sent == {}


def test_reach_with_a_port_and_no_protocol(lab):
    assert reach_mod._probe(lab, "fedora-1", "fedora-2", None, 5353).proto == "udp"
    assert reach_mod._probe(lab, "fedora-1", "fedora-2", None, 8080).proto == "tcp"
    node = reach_mod._probe(lab, "fedora-1", "minikube-m02", None, 22)  # a node serves nothing netlab knows of
    assert (node.proto, node.port) == ("tcp", 22)


def test_trace_help_says_what_a_port_alone_means():
    from netlab.cli import cli
    import netlab.cli.trace  # noqa: F401 - registers the command

    out = CliRunner().invoke(cli, ["trace", "--help"], terminal_width=200).output
    assert "with --port, tcp (udp when DST serves that port over UDP only)" in out
    assert "without --proto it means tcp" in out
