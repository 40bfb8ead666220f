"""pod-cidr-route-missing: the hop the catalogue promises is the one trace blames (fake kernel, no root).

Since trace follows the packet a node without its route to another node's pod CIDR sends out of eth0 by its
default route, it is lost at the node's gateway: the underlay's (ip_forward 0), or in a lab with an `internet:`
section the internet's (no route to pods), whose row names the missing route as why it came there. The catalogue
still said hop "node", and symptoms.trace_check (what `quiz answer` and the break tests check trace against)
named the underlay even where the internet's gateway is the one that drops it.
"""

from __future__ import annotations

from pathlib import Path

from netlab.breaks import catalogue, symptoms
from netlab.breaks.changes import peer_node
from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_lost_at_the_gateway import HostGwKernel
from test_trace_walk import _seen_everywhere, lab_from

ROOT = Path(__file__).resolve().parents[2]
S = catalogue.scenario("pod-cidr-route-missing")


def _blamed(path: str) -> tuple[str, str, str]:
    """(the namespace trace_check names, the one the fake trace loses the packet at, its reason)."""
    lab = lab_from((ROOT / path).read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), HostGwKernel(lab, plan)
    k.no_forward = m.no_forward
    target = catalogue.resolve_target(S, lab, None)
    k.no_route.add((target.netns, str(peer_node(lab, target).pod_cidr)))  # the break's change
    check = symptoms.trace_check(S, lab, target)
    src = lab.pod(check.src) if check.src in {p.name for p in lab.pods} else lab.node(check.src)
    w = walk(k, m, src.netns, Flow.icmp(None, str(lab.pod(check.dst).ip), 7))
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})  # the capture saw it all the way
    v = explain(w)
    assert not v.delivered and v.reason and symptoms.matches(check, v.reason), v
    return check.blamed_netns, w.hops[v.lost_at].netns, v.reason


def test_trace_check_names_the_gateway_trace_loses_the_packet_at():
    lab = lab_from((ROOT / "topologies/host-gw-3node.yaml").read_text())
    named, lost, _ = _blamed("topologies/host-gw-3node.yaml")
    assert named == lost == lab.underlay_netns
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())  # an internet: section
    named, lost, reason = _blamed("topologies/services.yaml")
    assert named == lost == dict(lab.internet_hosts)["gateway"], (named, lost)
    assert "it came here because no route to " in reason


def test_the_catalogue_names_the_gateway_as_the_hop_and_the_missing_route_as_why():
    assert S is not None and "gateway" in S.hop and S.hop != "node", S.hop
    assert "internet" in S.hop  # the gateway a lab with an internet: section has
    assert S.to_json()["trace"]["hop"] == S.hop
    assert "no route to the peer's pod CIDR" in S.fact and "lost" in S.fact, S.fact
