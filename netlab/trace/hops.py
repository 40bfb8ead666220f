"""The rows of a trace: one :class:`Hop` per decision the kernel takes for the packet, and the :class:`Walk`.

A row says where (namespace, device), what the kernel decided there (a route,
an ARP entry, an FDB entry and its remote VTEP, a bridge port, a NAT, an
encapsulation, a delivery or a drop), the command a learner can run to see
the same fact, and where the capture should see the packet (an
:class:`~netlab.trace.flow.Observe`). The walker writes each row once, in
order, through :class:`Rows`; the capture later fills in ``seen`` and
``evidence`` (verdict.py) and the numbering ``index`` (render.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable

from netlab.trace.flow import Flow, Observe

# What a drop row's problem adds after its own words when a fault earlier on the way sent the packet there (a node's
# missing route, the internet gateway's route for a LoadBalancer IP), before that fault's words (CameHere)
CAME_HERE = "; it came here because "


@dataclass(frozen=True)
class CameHere:
    """A drop row's problem when a fault earlier on the way sent the packet there: the row's own words and that
    fault's, which the problem says joined by CAME_HERE. The walker that writes such a row keeps both on it
    (Hop.came_here), so that verdict.py can say where the packet ended in the row's own words."""

    own: str
    because: str

    def __str__(self) -> str:
        return f"{self.own}{CAME_HERE}{self.because}"


@dataclass
class Hop:
    """One row of a trace: where, what the kernel decided, how to see it, seen or not."""

    netns: str
    where: str  # "pod fedora-1", "node minikube", "underlay"
    device: str
    # send route neigh fdb bridge arrive dnat snat encap decap deliver drop link (a down link's lost routes)
    # reject (a reply that is a policy REJECT's answer)
    # loop (the packet came back to where it was, as it was: where its TTL runs out, ttlloop.py)
    # macvlan ipvlan (a pod's plugin-made child of a node device: macvlansteps.py)
    kind: str
    decision: str
    commands: list[str] = field(default_factory=list)
    observe: Observe | None = None
    problem: str | None = None
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    direction: str = "forward"  # "forward" | "reply"
    # The problem dooms the packet although it travels on (a Service packet a node did not DNAT):
    # when it is lost, it is lost here, wherever it finally disappears (see verdict.py).
    cause: bool = False
    seen: bool | None = None  # None: nothing to observe (or not captured there)
    evidence: str | None = None  # the frame seen there first, in tcpdump's words as `netlab capture` prints it
    index: int = 0
    # The two parts of a problem that says why the packet came here (CameHere); not in the JSON: `problem` says it
    came_here: CameHere | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("observe", "came_here")}
        o = self.observe  # null on a row with nothing to watch (a dnat row), never left out (docs/json.md)
        out["observe"] = None if o is None else {"netns": o.netns, "ifname": o.ifname, "direction": o.direction,
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
    source: str | None = None  # the address the first namespace's socket sent from, before any NAT
    # a REJECT's ICMP error (rejectanswer.unreachable): the device whose address is its source, when the request
    # came in by it and net.ipv4.icmp_errors_use_inbound_ifaddr = 1 (None: another rule picked it)
    inbound: str | None = None


@dataclass(frozen=True)
class _Arrival:
    netns: str
    dev: str
    text: str
    observe: Observe | None


class Rows:
    """The rows of one walk, each written once and in order.

    An arrival row (the packet entered a namespace's IP layer from a device) is
    held until the next row: a delivery or a decapsulation on the same device
    then says it all in one row ("arrives ...; delivered"); any other row is
    written after the arrival.
    """

    def __init__(self, where: Callable[[str], str], direction: str):
        self.hops: list[Hop] = []
        self._where = where
        self._direction = direction
        self._arrival: _Arrival | None = None

    def row(self, netns: str, device: str, kind: str, decision: str, commands: Iterable[str] = (),
            observe: Observe | None = None, problem: str | None = None, fix: str | None = None,
            cause: bool = False, came_here: CameHere | None = None, **facts: Any) -> Hop:
        """A row, not written yet (facts that are None are left out)."""
        return Hop(netns=netns, where=self._where(netns), device=device, kind=kind, decision=decision,
                   commands=list(commands), observe=observe, problem=problem, fix=fix,
                   facts={k: v for k, v in facts.items() if v is not None}, direction=self._direction,
                   cause=cause, came_here=came_here)

    def add(self, netns: str, device: str, kind: str, decision: str, commands: Iterable[str] = (),
            observe: Observe | None = None, problem: str | None = None, fix: str | None = None,
            came_here: CameHere | None = None, **facts: Any) -> None:
        self.emit(self.row(netns, device, kind, decision, commands, observe, problem, fix, came_here=came_here,
                           **facts))

    @property
    def written(self) -> int:
        """How many rows are written, the arrival row still held counted (it is written next, whatever comes)."""
        return len(self.hops) + (self._arrival is not None)

    def hold_arrival(self, netns: str, dev: str, text: str, observe: Observe | None) -> None:
        self._arrival = _Arrival(netns, dev, text, observe)

    def emit(self, hop: Hop | None) -> None:
        """Write a row (None: nothing), after the arrival row still held, or as one row with it."""
        if hop is None:
            return
        a = self._arrival
        if a is not None and hop.kind in ("deliver", "decap") and (hop.netns, hop.device) == (a.netns, a.dev):
            self._arrival = None
            hop = replace(hop, decision=f"{a.text}; {hop.decision}")
        self.flush()
        self.hops.append(hop)

    def flush(self) -> None:
        """Write the arrival row still held, if any."""
        a, self._arrival = self._arrival, None
        if a is not None:
            self.hops.append(self.row(a.netns, a.dev, "arrive", a.text, [f"ip -n {a.netns} -br addr show {a.dev}"],
                                      a.observe))
