"""Shell completion offers what each target really has (the plan's links): capture's NAME:IFACE for every pod,
node, internet host and the underlay, with lo; impair's only for pods and nodes, with the interfaces impair takes;
exec and inspect's names with the underlay. It offered eth0, cni0 and flannel.1 for every host that is not a pod
(the underlay, the gateway, lb and internet hosts have none of cni0 and flannel.1), impair targets impair refuses,
and neither lo nor the underlay."""

from __future__ import annotations

import os
import types

import pytest
from click.shell_completion import ShellComplete

from netlab.cli import cli
from netlab.model.lab import resolve
from netlab.model.load import load_topology

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def svc_lab(monkeypatch):
    """topologies/services.yaml as a running lab's state gives it (running_lab(...).resolved())."""
    model = resolve(load_topology(os.path.join(ROOT, "topologies", "services.yaml")))
    monkeypatch.setattr("netlab.realize.state.running_lab",
                        lambda name: types.SimpleNamespace(resolved=lambda: model))
    return model


def offered(args: list[str], incomplete: str) -> list[str]:
    return [i.value for i in ShellComplete(cli, {}, "netlab", "_NETLAB_COMPLETE").get_completions(args, incomplete)]


def _ifaces(args: list[str], name: str) -> list[str]:
    return [v.split(":", 1)[1] for v in offered(args, f"{name}:")]


def test_capture_offers_each_targets_own_interfaces(svc_lab):
    capture = ["capture", "--lab", "svc"]
    underlay = _ifaces(capture, "underlay")
    assert underlay[0] == "br0" and underlay[-1] == "lo" and all(i.startswith("veth") for i in underlay[1:-1])
    assert len(underlay) == 2 + 3  # the veths of node-1, node-2 and the gateway
    gateway = _ifaces(capture, "gateway")
    assert gateway[:2] == ["inet0", "eth0"] and gateway[-1] == "lo" and "cni0" not in gateway
    assert _ifaces(capture, "example") == ["eth0", "lo"] and "lb:" not in offered(capture, "")
    assert _ifaces(capture, "web-1") == ["eth0", "lo"]
    node = _ifaces(capture, "node-1")
    assert {"eth0", "cni0", "flannel.1", "lo"} <= set(node) and sum(i.startswith("veth") for i in node) == 3
    assert "underlay:" in offered(capture, "") and "example:" in offered(capture, "")


def test_impair_offers_only_what_impair_takes(svc_lab):
    impair = ["impair", "--lab", "svc"]
    assert offered(impair, "example:") == [] and offered(impair, "underlay:") == []
    assert set(offered(impair, "")) == {f"{n}:" for n in ("web-1", "web-2", "client", "kube-dns", "node-1", "node-2")}
    assert _ifaces(impair, "web-1") == ["eth0"]
    assert _ifaces(impair, "node-2") == ["eth0", "cni0", "flannel.1"]


def test_exec_and_inspect_offer_the_underlay_trace_does_not(svc_lab):
    for command in ("exec", "inspect"):
        assert "underlay" in offered([command, "--lab", "svc"], "")
    assert "underlay" not in offered(["trace", "--lab", "svc"], "")
    assert offered(["trace", "--lab", "svc"], "cl") == ["client"]


def test_trace_offers_a_service_as_the_source_pod_names_it(monkeypatch, tmp_path):
    """trace from a pod takes a bare svc/NAME as its own namespace's Service only (as its DNS search path resolves
    it): completion offered svc/web from a pod of another namespace, which trace then refused."""
    path = tmp_path / "ns.yaml"
    path.write_text("name: cns\nnodes: [{name: n1}]\n"
                    "pods:\n  - {name: a, node: n1, namespace: x, labels: {app: a}}\n"
                    "  - {name: b, node: n1, namespace: y}\n"
                    "services:\n  - {name: web, namespace: x, selector: {app: a}, ports: [{port: 80}]}\n")
    model = resolve(load_topology(str(path)))
    monkeypatch.setattr("netlab.realize.state.running_lab", lambda name: types.SimpleNamespace(resolved=lambda: model))
    assert offered(["trace", "--lab", "cns", "a"], "svc/") == ["svc/web", "svc/kube-system/kube-dns"]
    assert offered(["trace", "--lab", "cns", "b"], "svc/") == ["svc/x/web", "svc/kube-system/kube-dns"]
    assert offered(["trace", "--lab", "cns", "n1"], "svc/") == ["svc/web", "svc/kube-dns"]  # a node's: the only one
