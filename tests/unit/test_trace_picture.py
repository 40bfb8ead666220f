"""netlab trace -o svg: the lab's picture with the packet's path on it (no root; svg needs Graphviz's dot)."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from netlab import graph
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.trace import picture
from netlab.trace.render import TraceResult, number
from netlab.trace.verdict import explain, mark_seen
from graph_layout import drawn_over, text_under
from test_trace_walk import _seen_everywhere, ping, world  # noqa: F401  (the fixture)

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")


def result(w) -> TraceResult:
    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"},
                    dst={"name": "fedora-2", "ip": "10.244.1.3"}, proto="icmp", port=None, marker="m", forward=w,
                    reply=None, verdict=explain(w), reply_verdict=None, reply_received=False)
    number(r)
    return r


def lost_arp(world):  # noqa: F811
    lab, m, k = world
    k.no_neigh[("demo-minikube", "flannel.1", "10.244.1.0")] = "FAILED"  # ip neigh del 10.244.1.0 dev flannel.1
    w = ping(k, m)
    mark_seen(w.hops, [p for p in _seen_everywhere(w) if p.ifname != "flannel.1"], {h.netns for h in w.hops})
    return lab, result(w)


def test_every_hop_is_placed_on_its_box_in_order(world):  # noqa: F811
    lab, m, k = world
    r = result(ping(k, m))
    g = graph.with_path(graph.build(lab), picture.path(r), picture.title(r))
    assert [step.number for _, step in g.path] == [str(i) for i in range(1, len(r.forward.hops) + 1)]
    boxes = [box for box, _ in g.path]
    assert boxes[0] == "pod_fedora_1" and boxes[-1] == "pod_fedora_2"
    assert boxes[2:4] == ["node_minikube_cni0", "node_minikube_cni0"]  # the veth port and the bridge: cni0's
    assert "node_minikube_vtep" in boxes and "underlay_br0" in boxes and "node_minikube_m02_vtep" in boxes
    labels = [step.label for _, step in g.path]
    assert "route via 10.244.1.0 dev flannel.1" in labels
    assert any(t.startswith("ARP 10.244.1.0 is ") and t.endswith("(PERMANENT)") for t in labels)
    assert any(re.fullmatch(r"FDB \S+ → VTEP 192\.168\.122\.7", t) for t in labels)
    assert "VXLAN encap VNI 1, UDP 192.168.122.215 → 192.168.122.7:8472" in labels
    assert g.title == "lab demo: trace fedora-1 → fedora-2 (icmp): delivered, NO REPLY"


def test_the_lost_hop_is_red_with_its_reason_in_the_dot_text(world):  # noqa: F811
    lab, r = lost_arp(world)
    dot = picture.render(lab, r, "dot").decode()
    # Not seen leaving by flannel.1 from the route there (hop 5) on; the ARP lookup for that same packet, hop 6,
    # is what dropped it: the hop that is red and says why.
    lost = r.forward.hops[r.verdict.lost_at]
    assert (lost.index, lost.device) == (6, "flannel.1")
    assert "5  route via 10.244.1.0 dev flannel.1\\l6  ARP 10.244.1.0: FAILED\\l     LOST here: no ARP entry" in dot
    assert 'node_minikube_vtep [color="#d1242f", penwidth=3];' in dot
    assert f"LOST here: {r.verdict.reason}\\l" in dot.replace("\\l     ", " ")  # the reason, wrapped in the note
    [title] = [line for line in dot.splitlines() if line.startswith("  graph [label=")]
    assert "LOST at hop 6" in title


def test_a_namespace_the_picture_lacks_gets_a_box():
    g = graph.Graph("t")
    graph.with_path(g, [graph.PathStep("x-ns", "eth0", "1", "route")])
    assert [b.label for b in g.groups[-1].boxes] == ["netns x-ns"] and g.path[0][0] == "other_x_ns"
    with pytest.raises(ValueError, match="drawn with dot"):
        graph.render(resolve(load_topology(None)), "mermaid", [graph.PathStep("demo-fedora-1", "eth0", "1", "route")])


@needs_dot
def test_the_svg_holds_every_hops_number_and_the_lost_hops_reason(world):  # noqa: F811
    lab, r = lost_arp(world)
    root = ET.fromstring(picture.render(lab, r, "svg"))
    texts = [(t.text or "").replace("\xa0", " ") for t in root.iter(f"{SVG}text")]  # dot keeps 2 spaces so
    for h in r.forward.hops:  # each hop's line in its stop's note starts with its number
        assert any(t.startswith(f"{h.index}  ") for t in texts), h.index
    words = " ".join(" ".join(texts).split())
    assert " ".join(f"LOST here: {r.verdict.reason}".split()) in words
    # The box of the lost hop is outlined in red.
    vtep = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "node"
                and (g.find(f"{SVG}title").text or "") == "node_minikube_vtep")
    assert any(p.get("stroke") == "#d1242f" for p in vtep.iter() if p.get("stroke"))
    assert picture.render(lab, r, "png").startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_nothing_is_drawn_over_the_tunnels_text_on_the_path(world):  # noqa: F811
    """The tunnel's text has a place of its own: the path's arrows and notes leave it readable, and its lines
    cross no text (they ran over the route from cni0, "routed (ip_forward)")."""
    lab, m, k = world
    r = result(ping(k, m))
    dot = picture.render(lab, r, "dot").decode()
    assert drawn_over(dot, "VXLAN VNI 1 UDP 8472") == []
    assert text_under(dot, graph.COLORS["vtep"][1]) == []  # nor do its dashed lines cross the routes' text
