"""What the probing agent is given and gives back: plain data, no model (pydantic) behind it.

The runner makes a :class:`Job` from the matrix (job.py: ``make_job``); the
agent (agent.py) sends it and hands back an :class:`Output`, an
:class:`Observation` per task. Nothing here needs the topology's models, so
the agent and its workers load none of them, and a job can be saved and
started again before they load (early.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from netlab.probe.neighbours import Entry

# s: what an interrupted agent (Ctrl-C, its time limit) gets after its SIGTERM to stop its workers and sweep its
# neighbour entries, before the parent's SIGKILL (spawn.start; agent.py's sweep ends SWEEP_MARGIN before it).
# Read where it is used, not copied: a test lengthens it.
AGENT_GRACE = 1.5

@dataclass
class Task:
    """One probe as the agent sees it."""

    id: int
    src: str  # source namespace
    dst: str  # destination IP
    proto: str  # icmp | tcp | udp
    port: int = 0
    service: bool = False  # a Service probe: source port from sockets.SERVICE_PORTS; udp: a socket of its own
    wait_reply: bool = True  # tcp: wait for an echo line after connect (False: no echo server there)
    size: int = 0  # mtu: bytes of the ICMP echo (the pod's MTU minus the IP header)
    question: str = ""  # a DNS A query for this name instead of the echo line (dnsq.py; over TCP, length first)
    # A Service probe: the (IP, port) of each endpoint its DNAT may pick. The endpoint's node tracks the
    # DNATed flow under a tuple of its own, towards one of them (untrack.py).
    behind: tuple[tuple[str, int], ...] = ()


class Seed(NamedTuple):
    """A PERMANENT entry a seeded pair makes in ``netns``: ``ip`` on ``ifname`` is ``peer``'s own MAC."""

    netns: str
    ifname: str
    ip: str
    peer: str  # the namespace whose ``ifname`` MAC the entry carries


@dataclass
class Unit:
    """Probes started together; ``phases`` run one after the other (task ids)."""

    phases: list[list[int]]
    entries: list[Entry] = field(default_factory=list)  # dynamic neighbour entries its packets create
    # Seeded pairs: PERMANENT entries made before the first phase and deleted after the last;
    # no ARP between the two, nothing GC-counted.
    seed: list[Seed] = field(default_factory=list)


@dataclass
class Job:
    tasks: list[Task]
    units: list[Unit]
    home: str  # namespace the agent joins before anything else
    timeout: float = 1.0
    budget: int = 400  # dynamic neighbour entries the run may hold at once
    workers: int = 0  # 0: one per CPU (for big jobs)
    self_ip: dict[str, str] = field(default_factory=dict)  # pod netns -> ifname to read its address (and MAC) from
    route_src: list[tuple[str, str]] = field(default_factory=list)  # (netns, dst): kernel's source address
    sweep: list[str] = field(default_factory=list)  # namespaces whose new dynamic entries are removed at the end
    untrack: list[str] = field(default_factory=list)  # namespaces where the run's conntrack entries are deleted

    def limit(self) -> float:
        """Seconds the agent has for the whole job."""
        return 60 + self.timeout * (3 + len(self.tasks) / 50)


@dataclass
class Output:
    """What the agent hands back: an observation per task id, what it read, and how the run went."""

    obs: dict[int, Observation]
    self_ip: dict[str, str | None]
    route_src: dict[tuple[str, str], str | None]
    stats: dict


# --- what the agent saw ------------------------------------------------------------

# A TCP probe connected, and nothing came back on it by the run's timeout: no echo line in time (a late one, held
# in a rate limiter's queue or lost and resent; or a server that says nothing). A line that came but was no echo
# line is said otherwise ("the server sent no echo reply").
NO_LINE_IN_TIME = "connected; no echo line came back in time (late, or lost on the way)"


@dataclass
class Observation:
    """What the agent saw for one probe (plain data; the agent fills it)."""

    outcome: str = "timeout"  # reply | timeout | refused | unreachable | error | skipped
    detail: str = ""  # e.g. "destination unreachable: host unreachable (ICMP from 10.244.1.1)"
    rtt: float | None = None  # seconds
    local: str | None = None  # "ip:port" (or "ip" for icmp) the sender used
    seen_client: str | None = None  # "ip:port" the echo server saw
    server: str | None = None  # "ip:port" the echo server says it was reached at
    answered_by: str | None = None  # pod name in the echo reply
    reply_from: str | None = None  # source address of the reply packet (of an ICMP error: who sent it)
    ttl: int | None = None  # IP TTL of an ICMP echo reply
    dns: dict | None = None  # a DNS probe's answer: {"rcode": "NOERROR", "a": ["10.96.0.10"]} (dnsq.answer)

    @property
    def reached(self) -> bool:
        return self.outcome == "reply"

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def __reduce__(self) -> tuple:
        """Pickled as its values (the agent's answer: 2,500 at 50 pods, sent by a worker to the agent and by the agent
        to the CLI after the probing, in series with the run): 1.9 -> 0.9 ms to load them, 1.7 -> 1.4 to dump; one
        with other attributes than its fields, as its attributes."""
        state = self.__dict__
        if tuple(state) == _OBSERVATION_FIELDS:  # __init__ sets them in this order
            return Observation, tuple(state.values())
        return _observation, (dict(state),)


_OBSERVATION_FIELDS = tuple(Observation.__dataclass_fields__)


def _observation(state: dict) -> Observation:
    """An Observation with exactly these attributes (Observation.__reduce__)."""
    obs = object.__new__(Observation)
    obs.__dict__.update(state)
    return obs
