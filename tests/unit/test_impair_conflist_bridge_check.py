"""A topology's impairment of a node's pod bridge, with a user's conflist (model/checks.py).

The check took the bridge to be cni0 whatever the conflist's bridge plugin named: a topology's ``qrbr0`` was
refused ("use one of eth0, cni0, flannel.1") and its ``cni0`` taken, an impairment no `up` could put (status
drift for good); a pod-less node's bridge, which the plugins make only at its first pod, was taken too.
"""

from __future__ import annotations

import pytest

from helpers import CONFLIST, located_problems, write_conflist

TOPOLOGY = """name: t
network: {{mode: vxlan, cni: {cni}}}
nodes:
  - {{name: n1, podCIDR: 10.244.0.0/24, impair: {{{iface}: {{rate: 1mbit}}}}}}
  - {{name: n2, podCIDR: 10.244.1.0/24}}
pods: [{{name: a, node: n1}}]
"""
BRIDGE = {"type": "bridge", "bridge": "qrbr0", "isGateway": True, "ipam": {"type": "host-local"}}


def test_the_conflists_bridge_is_the_one_to_impair(tmp_path):
    write_conflist(tmp_path, [BRIDGE])
    assert located_problems(TOPOLOGY.format(cni=CONFLIST, iface="qrbr0"), tmp_path) == []
    problems = located_problems(TOPOLOGY.format(cni=CONFLIST, iface="cni0"), tmp_path)
    assert [m for _, _, m in problems] == ["no interface 'cni0' here to impair; use one of eth0, qrbr0, flannel.1"]


def test_a_podless_nodes_conflist_bridge_is_refused(tmp_path):
    write_conflist(tmp_path, [{**BRIDGE, "bridge": "cni0"}])
    text = TOPOLOGY.format(cni=CONFLIST, iface="eth0").replace(
        "{name: n2, podCIDR: 10.244.1.0/24}", "{name: n2, podCIDR: 10.244.1.0/24, impair: {cni0: {rate: 1mbit}}}")
    problems = located_problems(text, tmp_path)
    assert len(problems) == 1 and "node n2 has no pod, so no cni0 to impair" in problems[0][2], problems


def test_loading_reads_the_conflist_once(tmp_path, monkeypatch):
    """The impairment's bridge is judged where the conflist is read (model/load.resolve_cni_paths): checks.py read
    it a first time for the bridge's name alone."""
    from netlab.model import cniconf

    write_conflist(tmp_path, [BRIDGE])
    read = []
    real = cniconf.read_regular
    monkeypatch.setattr(cniconf, "read_regular", lambda path, *a, **k: read.append(path) or real(path, *a, **k))
    assert located_problems(TOPOLOGY.format(cni=CONFLIST, iface="qrbr0"), tmp_path) == []
    assert read == [str(tmp_path / "net.conflist")]


@pytest.mark.parametrize("content", [None, "{", "{}"])
def test_a_conflist_that_cannot_be_read_is_the_one_problem_of_its_bridges_impairment(tmp_path, content):
    """Its bridge unknown, an impairment naming it is not refused as no interface of cni0's list (which a user's
    conflist may well not make): the conflist's own one-line error says what to fix."""
    (tmp_path / "bin").mkdir()
    if content is not None:
        (tmp_path / "net.conflist").write_text(content)
    problems = located_problems(TOPOLOGY.format(cni=CONFLIST, iface="qrbr0"), tmp_path)
    assert [f for _, f, _ in problems] == ["network.cni.conflist"], problems
    assert problems[0][2].startswith(f"{tmp_path}/net.conflist: ")


def test_an_impairment_of_no_interface_is_refused_beside_a_valid_conflist_too(tmp_path):
    write_conflist(tmp_path, [BRIDGE])
    text = TOPOLOGY.format(cni=CONFLIST, iface="eth9").replace("rate: 1mbit", "jitter: 1ms")
    assert sorted(m for _, _, m in located_problems(text, tmp_path)) == [
        "jitter varies a delay: add delay: too", "no interface 'eth9' here to impair; use one of eth0, qrbr0, flannel.1"]
