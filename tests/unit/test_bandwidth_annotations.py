"""A pod's kubernetes.io/ingress-bandwidth and egress-bandwidth annotations: read as the kubelet reads them
(resource quantities in bits per second, 1k to 1P) and handed to the plugins that declare the bandwidth capability
as containerd's toCNIBandWidth does (the burst at math.MaxUint32; only for a pod that has one of them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import located_problems
from netlab.cni import conf as C
from netlab.model.bandwidth import rate
from netlab.model.cniconf import read_conflist
from netlab.model.lab import resolve
from netlab.model.load import load_topology

BRIDGE = {"type": "bridge", "bridge": "cni0", "isGateway": True, "capabilities": {"ipRanges": True},
          "ipam": {"type": "host-local"}}
SHAPER = {"type": "bandwidth", "capabilities": {"bandwidth": True}}


def topo(tmp_path: Path, annotations: str, plugins: list | None = (BRIDGE, SHAPER), cni: str | None = None) -> str:
    if plugins is not None:
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "bw",
                                                           "plugins": list(plugins)}))
        (tmp_path / "bin").mkdir(exist_ok=True)
    cni = cni or "{conflist: net.conflist, binDir: bin}"
    return (f"name: bwt\nnetwork: {{mode: host-gw, cni: {cni}}}\nnodes: [{{name: n1}}]\npods:\n"
            f"  - {{name: a, node: n1, annotations: {annotations}}}\n  - {{name: b, node: n1}}\n")


@pytest.mark.parametrize("text, bits", [("10M", 10_000_000), ("1Mi", 1_048_576), ("1.5k", 1500), ("1e6", 10 ** 6),
                                        ("2E3", 2000), ("1001m", None), ("1P", 10 ** 15), ("1000.1", 1001)])
def test_rates_are_resource_quantities_in_bits_per_second(text, bits):
    if bits is None:
        with pytest.raises(ValueError, match="unreasonably small"):
            rate(text)
    else:
        assert rate(text) == bits


@pytest.mark.parametrize("text, why", [("10 M", "is not a quantity"), ("10MB", "is not a quantity"),
                                       ("", "is not a quantity"), ("999", "unreasonably small (< 1kbit)"),
                                       ("2P", "unreasonably large (> 1Pbit)"), ("-5M", "unreasonably small")])
def test_a_rate_the_kubelet_refuses_is_refused(text, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        rate(text)


def test_the_runtime_hands_the_bandwidth_plugin_the_rates_as_containerd_does(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(topo(tmp_path, "{kubernetes.io/ingress-bandwidth: 10M, team: x}"))
    lab = resolve(load_topology(str(path)))
    a, b = lab.pod("a"), lab.pod("b")
    caps = C.capability_args(lab, a, a.ip)
    assert caps["bandwidth"] == {"ingressRate": 10_000_000, "ingressBurst": 4294967295, "egressRate": 0,
                                 "egressBurst": 0}
    assert "bandwidth" not in C.capability_args(lab, b, b.ip)  # containerd: none without the annotations
    net = read_conflist(str(tmp_path / "net.conflist"))
    stdin = [C.build_one_config(net, p, None, caps) for p in net.plugins]
    assert "bandwidth" not in stdin[0].get("runtimeConfig", {})
    assert stdin[1]["runtimeConfig"] == {"bandwidth": caps["bandwidth"]}
    assert "runtimeConfig" not in C.build_one_config(net, net.plugins[1], None, C.capability_args(lab, b, b.ip))


@pytest.mark.parametrize("annotations, plugins, cni, want", [
    ("{kubernetes.io/egress-bandwidth: 1M}", None, "builtin",
     "kubernetes.io/egress-bandwidth needs a CNI plugin with the bandwidth capability, and network.cni builtin runs "
     "none; use the pod's impair: {eth0: {rate: ...}}, or network.cni {conflist: FILE} with the bandwidth plugin"),
    ("{kubernetes.io/egress-bandwidth: 1M}", [BRIDGE], None,
     "kubernetes.io/egress-bandwidth needs a CNI plugin with the bandwidth capability, and no plugin of "
     "{dir}/net.conflist declares it; add bandwidth with \"capabilities\": {\"bandwidth\": true}"),
    ("{kubernetes.io/egress-bandwidth: 10 mbit}", [BRIDGE, SHAPER], None,
     "'10 mbit' is not a quantity like 10M, 1Mi or 500k (bits per second)"),
])
def test_bandwidth_annotations_no_plugin_takes_are_refused_in_one_located_line(tmp_path, annotations, plugins, cni,
                                                                              want):
    problems = located_problems(topo(tmp_path, annotations, plugins, cni), tmp_path)
    assert problems == [(5, 'pods[0].annotations["kubernetes.io/egress-bandwidth"]',
                         want.replace("{dir}", str(tmp_path)))], problems


def test_other_annotations_mean_nothing_anywhere(tmp_path):
    assert located_problems(topo(tmp_path, "{example.com/owner: me}", None, "builtin"), tmp_path) == []
