"""docs/json.md names the trace rows' `iif` fact (QA out59 5): a forwarded route row's in-device, and the one a
refusing dnat row records (kube-proxy's REJECT: where the node's ICMP error may take its source,
rejectanswer.came_in_by), which a recent change added; the doc's trace row said neither, nor `rejected` (no root)."""

from __future__ import annotations

import re
from pathlib import Path

from netlab.trace.flow import Flow
from test_trace_reject_source import build
from test_trace_service_paths import traced

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"


def test_the_iif_a_refusing_dnat_row_and_a_forwarded_route_row_record_is_in_the_doc():
    lab, m, k = build()
    a = str(lab.pod("a").ip)
    fwd, v = traced(m, k, Flow("tcp", a, "10.96.0.40", 40000, 80), src="ra-a")  # a ClusterIP without endpoints
    stop = fwd.hops[v.lost_at]
    assert stop.kind == "dnat" and stop.facts["iif"] == "cni0" and "has no endpoints" in stop.facts["rejected"]
    across, _ = traced(m, k, Flow("tcp", a, str(lab.pod("d").ip), 40000, 8080), src="ra-a")  # routed by n1
    assert any(h.netns == "ra-n1" and h.kind == "route" and h.facts.get("iif") == "cni0" for h in across.hops), \
        [h.facts for h in across.hops]
    row = next(line for line in DOC.read_text().splitlines() if line.startswith("| `trace` |"))
    facts = row.split("`facts`:", 1)[1]
    assert re.search(r"a route row of a forwarded packet: `iif`", facts), "the route row's iif"
    assert re.search(r"a `dnat` row whose rules refuse the packet [^;]*`rejected`[^;]*`iif`", facts), \
        "the refusing dnat row's rejected and iif"
