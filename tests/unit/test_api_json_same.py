"""The API's results give the JSON the CLI prints, key for key (README: results have "the fields of the CLI's -o
json"). `api.to_json(lab.trace(...))` had `endpoint.vmap_element: null` (iptables mode) and
`endpoint.rule_counted` and `rule: null` that `netlab trace -o json` leaves out; `api.to_json(lab.inspect(...))` had
`cni: null` and `unreadable: null` (and every section not asked for) that `netlab inspect -o json` leaves out."""

from __future__ import annotations

import json

import pytest

from netlab.api import results as R
from netlab.api.jsonio import from_json, to_json
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult
from netlab.trace.verdict import Verdict

DNAT = {"service": "default/web", "endpoint": "web-1", "endpoint_ip": "10.244.0.5", "endpoint_port": 8080,
        "svc_chain": "KUBE-SVC-X", "sep_chain": "KUBE-SEP-Y"}
IPTABLES = {"rule": "-A KUBE-SVC-X -m statistic --mode random --probability 0.5 -j KUBE-SEP-Y", "probability": 0.5,
            "chance": "1/2", "rule_position": 1, "rules": 2, "affinity": False, "rule_counted": 1,
            "chosen_by": "the first rule's statistic match"}
NFTABLES = {"rule": "numgen random mod 2 vmap { 0 : goto endpoint-a, 1 : goto endpoint-b }", "probability": 0.5,
            "chance": "1/2", "rule_position": 1, "rules": 2, "affinity": False, "rule_counted": None,
            "vmap_element": "0 : goto endpoint-a", "chosen_by": "numgen's element 0"}
HELD = {"chosen_by": "the entry conntrack held for this flow before the packet came", "rule": None,
        "rule_counted": None}


def trace(facts: dict) -> TraceResult:
    hop = Hop(netns="l-node-1", where="node node-1", device="eth0", kind="dnat", decision="DNAT",
              facts={**DNAT, **facts})
    walk = Walk(hops=[hop], outcome="delivered")
    return TraceResult(lab="l", src={"name": "client", "kind": "pod", "ip": "10.244.0.2"},
                       dst={"name": "web", "kind": "service", "ip": "10.96.0.20", "port": 80}, proto="tcp", port=80,
                       marker="m", forward=walk, reply=None, verdict=Verdict(True, None, None),
                       reply_verdict=None, reply_received=True)


@pytest.mark.parametrize("facts", [IPTABLES, NFTABLES, HELD], ids=["iptables", "nftables", "conntrack-held"])
def test_a_traces_endpoint_has_the_same_keys_in_the_api_as_in_the_cli(facts):
    cli = json.loads(json.dumps(trace(facts).to_json()))["endpoint"]
    api = to_json(from_json(R.ServiceEndpoint, cli))
    assert api == cli
    assert None not in cli.values(), cli  # what does not apply is left out, not null


@pytest.mark.parametrize("data", [
    {"routes": [{"dst": "default"}]},  # one section asked for
    {"links": [], "sysctls": {"net.ipv4.ip_forward": "1"}, "files": {}},  # a node: no cni, every section read
    {"links": [], "cni": {"cniVersion": "1.0.0"}, "unreadable": {"nftables": "nft: not found"}},
])
def test_an_inspection_has_the_same_keys_in_the_api_as_in_the_cli(data):
    cli = {"lab": "l", "name": "node-1", "netns": "l-node-1", "what": "node", **data}
    assert to_json(from_json(R.Inspection, cli)) == cli
