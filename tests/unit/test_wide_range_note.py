"""A conflist whose host-local range (``ranges: [[{subnet: 10.244.0.0/16}]]``, or the old ``subnet``) is wider than
the nodes' podCIDRs gives every pod that prefix on eth0: it ARPs there for the other nodes' pods and, in VXLAN
mode, for the other nodes' own flannel.1 addresses, which a node's packets to another node's pod leave from (its
traffic to a Service whose endpoint is there too). Nobody answers. validate said nothing (status alone did, once
the lab ran); now it notes it at network.cni.conflist, as it locates its other notes, -o json's note_places too.
The ipRanges capability beside a range of the conflist's own that overlaps a node's (host-local refuses both:
refused at load, tests/unit/test_runtime_ranges.py) and Flannel's plugin are not judged here. Root, with
real traffic: tests/integration/test_cni_wide_prefix.py."""

from __future__ import annotations

import json

import pytest

from cli_inprocess import run_cli

TOPOLOGY = """\
name: wrn
network: {mode: vxlan, cni: {conflist: net.conflist, binDir: bin}}
nodes:
  - {name: n1, podCIDR: 10.244.0.0/24}
  - {name: n2, podCIDR: 10.244.1.0/24}
pods: [{name: a, node: n1}]
"""

NOTE = ("net.conflist's plugins[0].ipam.{at} 10.244.0.0/16 is wider than a node's podCIDR (/24): host-local gives "
        "each pod that prefix on eth0, so a pod ARPs on eth0 for another node's pods (n1 10.244.0.0/24, n2 "
        "10.244.1.0/24) in 10.244.0.0/16 and nobody answers (its node's bridge carries only its own pods): it "
        "reaches no pod of theirs, nor they it, nor those nodes themselves (a node's own packets to a pod on another "
        "node, to a Service whose endpoint is there too, leave from its flannel.1 address, 10.244.0.0 on n1, "
        "10.244.1.0 on n2, inside the prefix) (give host-local each node's podCIDR: declare the ipRanges capability, "
        "which passes it, and remove ipam's own subnet and ranges, which host-local refuses beside it)")


def write(tmp_path, ipam: dict, **plugin) -> str:
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "w", "plugins": [
        {"type": "bridge", "isGateway": True, **plugin, "ipam": {"type": "host-local", **ipam}}]}))
    (tmp_path / "t.yaml").write_text(TOPOLOGY)
    return str(tmp_path / "t.yaml")


@pytest.mark.parametrize("ipam, at", [({"ranges": [[{"subnet": "10.244.0.0/16"}]]}, "ranges[0][0].subnet"),
                                      ({"subnet": "10.244.0.0/16"}, "subnet")])
def test_validate_notes_a_host_local_range_wider_than_the_pod_cidrs(tmp_path, monkeypatch, ipam, at):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, ipam)
    run = run_cli("validate", "-t", "t.yaml")
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stderr.splitlines() if "wider than" in line]
    assert said == [f"netlab: note: t.yaml:2: network.cni.conflist: {tmp_path}/{NOTE.format(at=at)}"], run.stderr
    js = json.loads(run_cli("validate", "-t", path, "-o", "json").stdout)
    assert [n for n in js["note_places"] if "wider than" in n["message"]] == [
        {"file": path, "line": 2, "field": "network.cni.conflist", "message": f"{tmp_path}/{NOTE.format(at=at)}"}]


@pytest.mark.parametrize("ipam, plugin", [
    ({"ranges": [[{"subnet": "10.244.0.0/24"}]]}, {}),  # as narrow as a podCIDR
    ({"ranges": [[{"subnet": "10.99.0.0/24"}]]}, {"capabilities": {"ipRanges": True}}),  # a second range, apart
    ({}, {}),  # the runtime's range alone
    # ptp routes the prefix via its gateway (it deletes eth0's connected route); macvlan's pods share the
    # underlay's L2 with the other nodes' pods: a /16 works with both (validate said they ARPed in vain)
    ({"subnet": "10.244.0.0/16"}, {"type": "ptp"}),
    ({"ranges": [[{"subnet": "10.244.0.0/16"}]]}, {"type": "macvlan", "master": "eth0"}),
])
def test_validate_says_nothing_of_a_range_no_wider_than_the_pod_cidrs(tmp_path, ipam, plugin):
    run = run_cli("validate", "-t", write(tmp_path, ipam, **plugin))
    assert run.returncode == 0 and "wider than" not in run.stderr, run.stderr
