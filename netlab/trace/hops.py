"""The rows of a trace: one :class:`Hop` per decision the kernel takes for the packet, and the :class:`Walk`.

A row says where (namespace, device), what the kernel decided there (a route,
an ARP entry, an FDB entry and its remote VTEP, a bridge port, a NAT, an
encapsulation, a delivery or a drop), the command a learner can run to see
the same fact, and where the capture should see the packet (an
:class:`~netlab.trace.flow.Observe`). The walker writes each row once; the
capture later fills in ``seen`` and ``evidence`` (verdict.py) and the
numbering ``index`` (render.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from netlab.trace.flow import Flow, Observe


@dataclass
class Hop:
    """One row of a trace: where, what the kernel decided, how to see it, seen or not."""

    netns: str
    where: str  # "pod fedora-1", "node minikube", "underlay"
    device: str
    kind: str  # send route neigh fdb bridge arrive dnat snat encap decap deliver drop
    decision: str
    commands: list[str] = field(default_factory=list)
    observe: Observe | None = None
    problem: str | None = None
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    direction: str = "forward"  # "forward" | "reply"
    seen: bool | None = None  # None: nothing to observe (or not captured there)
    evidence: str | None = None
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "observe"}
        if self.observe is not None:
            o = self.observe
            out["observe"] = {"netns": o.netns, "ifname": o.ifname, "direction": o.direction,
                              "flow": str(o.flow), "role": o.role, "encapsulated": o.encapsulated}
        return out


@dataclass
class Walk:
    """The rows of one direction, and how the walk ended."""

    hops: list[Hop]
    outcome: str  # delivered | stopped | loop
    final: Flow | None = None  # the flow as it arrived
    end_netns: str | None = None
    reason: str | None = None
