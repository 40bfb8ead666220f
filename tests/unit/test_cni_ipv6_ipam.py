"""A conflist whose IPAM gives pods IPv6 addresses is refused by validate (and so up) in one line naming the file,
the plugin and the field: IPv6 is off in every lab namespace, and the ADD failed ("permission denied") after
validate and doctor said ok (QA cnf63 #4), or gave the pod an address netlab neither plans nor shows. Pure: nothing run, no root."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import run_cli

from netlab.model.ipv6_ipam import ipv6_addresses

TOPO = "name: cf6\nnetwork: {cni: {conflist: net.conflist}}\nnodes: [{name: n1, podCIDR: 10.244.0.0/24}]\n" \
       "pods: [{name: a, node: n1}]\n"


@pytest.mark.parametrize("ipam, field, value", [
    ({"type": "host-local", "ranges": [[{"subnet": "fd00::/64"}]]}, "ipam.ranges[0][0].subnet", "fd00::/64"),
    ({"type": "host-local", "subnet": "fd00:10::/64"}, "ipam.subnet", "fd00:10::/64"),
    ({"type": "static", "addresses": [{"address": "10.244.0.9/24"}, {"address": "fd00::9/64"}]},
     "ipam.addresses[1].address", "fd00::9/64"),
])
def test_validate_refuses_an_ipv6_address_in_one_line(tmp_path, ipam, field, value):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "v6", "plugins": [
        {"type": "bridge", "isGateway": True, "capabilities": {"ipRanges": True}, "ipam": ipam}]}))
    (tmp_path / "t.yaml").write_text(TOPO)
    proc = run_cli("validate", "-t", str(tmp_path / "t.yaml"))
    assert proc.returncode == 2, proc
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"{tmp_path / 't.yaml'}:2: network.cni.conflist: {tmp_path / 'net.conflist'}'s plugins[0] "
                           f"(bridge) {field} {value} gives pods an IPv6 address"), line
    assert "labs are IPv4 only, with IPv6 off in every namespace" in line and "permission denied" in line, line


def test_ipv4_ranges_flannel_and_a_wrapper_delegate_are_judged_as_host_local_gets_them():
    v4 = {"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}}
    flannel = {"type": "flannel", "ipam": {"ranges": [[{"subnet": "fd00::/64"}]]}}  # replaced by subnet.env's
    wrapped = {"type": "wrap", "delegate": {"ipam": {"type": "host-local", "subnet": "fd00::/64"}}}
    assert ipv6_addresses([v4, flannel], "f") == []
    [line] = ipv6_addresses([v4, wrapped], "f")
    assert line.startswith("f's plugins[1] (wrap) delegate.ipam.subnet fd00::/64 gives pods an IPv6 address "
                           "(host-local IPAM)"), line
