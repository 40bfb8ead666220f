"""A probe's observation judged as a run judges it (runner.py, and a plain lab's run without the models:
plain_report.py): the address it was sent from, a refusal's sockets, an internet host's listener that failed."""

from __future__ import annotations

from netlab.probe import listeners
from netlab.probe.judge import Result, judge
from netlab.probe.probes import Probe
from netlab.probe.refused import Refusals
from netlab.probe.tasks import Observation, Output


def result_of(p: Probe, obs: Observation, timeout: float, out: Output, heard: listeners.Listeners,
              refusals: Refusals) -> Result:
    sender = sender_of(p, obs, out)
    refusals.explain(p, obs)  # a refused probe: what the destination's sockets say of the port
    if p.destination.name in heard.errors and not obs.reached and p.destination.kind == "host":
        obs.outcome = "error"
        obs.detail = f"no echo listener on {p.destination.name}: {heard.errors[p.destination.name]}"
    return Result(p, obs, timeout, judge(p, obs, timeout, sender))


def sender_of(p: Probe, obs: Observation, out: Output) -> str | None:
    """The address the source sent from; completes the agent's view of shared-socket UDP probes."""
    if p.source.kind == "pod":
        sender = p.source.addr
    else:
        sender = out.route_src.get((p.source.netns, p.destination.addr))
    if p.proto in ("icmp", "mtu") and obs.local is None:
        obs.local = sender
    elif p.proto == "udp" and obs.local and obs.local.startswith(":") and sender:
        obs.local = sender + obs.local  # the agent knows the port, the kernel picked the address
    return sender
