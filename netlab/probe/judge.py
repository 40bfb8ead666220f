"""Judging what came back: each probe's observation against what the matrix expects.

Judging a reply checks the three rules as such, not only "it answered":

1. and 2. no NAT between pods and from nodes to pods: the echo server reports
   the client address it saw; it must be the address the sender used (a pod's
   IP; for a node, its own address on the path, the one the kernel picked);
3. the server saw the request arrive at the address the client sent it to,
   and each pod's eth0 carries the address others reach it at (checked per
   pod, see :class:`SelfCheck`).

A Service or egress probe carries client-address rules instead (where NAT
must happen, and where it must not); a reply is checked against those. A
probe of the cluster DNS's 53/UDP asks a question, and its answer is checked.
Pure: no sockets, no root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netlab.probe import dnsq
from netlab.probe.dnsq import Question
from netlab.probe.probes import Probe
from netlab.probe.tasks import Observation

if TYPE_CHECKING:
    from netlab.probe.distribution import DistResult


@dataclass
class Report:
    """A probe run, judged: what ``netlab probe`` prints (report.py renders it)."""

    lab: str
    timeout: float
    results: list["Result"]
    self_checks: list["SelfCheck"]
    stats: dict = field(default_factory=dict)
    elapsed: float = 0.0
    distributions: list["DistResult"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not probed, and why
    hints: list[str] = field(default_factory=list)  # what the kernel says of the failures (policytable.py)
    # What a -t FILE's run is told before it probes (the lab runs other policies than the file: api.internals
    # .other_policies), said on stderr as `netlab: note:`: -o json's and the API's `notes`
    file_notes: list[str] = field(default_factory=list)
    bridge: str | None = "cni0"  # the nodes' bridge of pods, for messages (plan.cniadd.pod_bridge)
    error: str | None = None  # a lab whose up or down ended before it finished: list's line (interrupted.stalled)
    # Pods, nodes and internet hosts whose namespace was deleted behind netlab's back (ip netns delete), in exec's
    # words: nothing sent from them, their flows not probed (a note each); the internet's gateway and load
    # balancer, which send nothing of their own (a note says what each is); the lab is not as planned: not ok.
    deleted: list[str] = field(default_factory=list)
    deleted_kinds: list[str] = field(default_factory=list)  # each one's (pod, node, host, gateway, lb); none: pods

    @property
    def failures(self) -> list["Result"]:
        return [r for r in self.results if not r.ok]

    @property
    def self_failures(self) -> list["SelfCheck"]:
        return [c for c in self.self_checks if not c.ok]

    @property
    def dist_failures(self) -> list["DistResult"]:
        return [d for d in self.distributions if not d.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.self_failures and not self.dist_failures and not self.deleted

    @property
    def as_expected(self) -> int:
        return sum(1 for r in self.results if r.ok)


@dataclass
class Result:
    probe: Probe
    obs: Observation
    timeout: float = 1.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        p, o = self.probe, self.obs
        return {
            "source": p.source.name,
            "destination": p.destination.name,
            "protocol": p.proto,
            "port": p.port,
            "destination_ip": p.destination.addr,  # str(ip), cached per endpoint (49 results each at 50 pods)
            "expected": "reachable" if p.expected else "unreachable",
            "observed": "reachable" if o.reached else "unreachable",
            "outcome": o.outcome,
            "detail": o.detail or None,
            "as_expected": self.ok,
            "problems": list(self.problems),
            "local_address": o.local,
            "seen_client_address": o.seen_client,
            "server_address": o.server,
            "answered_by": o.answered_by,
            "ttl": o.ttl,
            "rtt_ms": None if o.rtt is None else round(o.rtt * 1000, 3),
            "reason": p.reason,
            "section": p.section,
            "expected_client": _expected_client(p, o),
            "service": p.svc.to_json() if p.svc is not None else None,
            "dns": None if p.question is None else {"question": p.question.text, "expected_a": p.question.address,
                                                   "answer": o.dns},
        }


def _expected_client(p: Probe, o: Observation) -> list[str] | None:
    """The client addresses the rules allow for this reply (None: the sender's own, or not an echo reply)."""
    rule = p.rule_for(o.answered_by) if o.answered_by else None
    return list(rule.allowed) if rule is not None else None


@dataclass(frozen=True)
class SelfCheck:
    """Rule 3 from the pod's side: the address on its eth0 is the one others reach it at."""

    pod: str
    expected: str
    seen: str | None  # eth0's address read inside the pod; None if it has none

    @property
    def ok(self) -> bool:
        return self.seen == self.expected

    @property
    def problem(self) -> str:
        seen = self.seen or "no address"
        return (f"{self.pod}: sees itself as {seen} on eth0, but others reach it at {self.expected} "
                f"(rule 3: the IP a pod sees itself as is the IP others see it as)")

    def to_json(self) -> dict:
        # a pod's own name is "name"; "pod" beside it, deprecated, for one release (docs/json.md)
        return {"name": self.pod, "pod": self.pod, "eth0_address": self.seen, "reached_at": self.expected,
                "ok": self.ok}


def _ip(addr: str | None) -> str | None:
    return addr.rsplit(":", 1)[0] if addr else None


def _seconds(t: float) -> str:
    return f"{t:g} s"


def why_unreached(obs: Observation, timeout: float) -> str:
    if obs.outcome == "timeout":
        return f"no reply in {_seconds(timeout)}"
    if obs.outcome == "refused":
        return "connection refused" if not obs.detail else obs.detail
    if obs.outcome == "skipped":
        return obs.detail or "not probed"
    return obs.detail or obs.outcome


def got_reply(obs: Observation, dst: str) -> str:
    """What a probe that was answered saw: ``got a reply in 0.4 ms`` (``from OTHER`` when another answered)."""
    rtt = f" in {obs.rtt * 1000:.1f} ms" if obs.rtt is not None else ""
    by = f" from {obs.answered_by}" if obs.answered_by and obs.answered_by != dst else ""
    return f"got a reply{by}{rtt}"


def judge(probe: Probe, obs: Observation, timeout: float, sender_ip: str | None) -> list[str]:
    """Problems with one probe's result, in words (empty: as expected).

    ``sender_ip`` is the address the source used (a pod's IP; for nodes and
    hosts the kernel's choice of source address towards the destination).
    Probes with client-address rules (egress, Services) are checked against
    those instead: they say where NAT must happen, and where it must not.
    """
    dst = probe.destination
    if not probe.expected:
        return [f"expected unreachable, {got_reply(obs, dst.name)}"] if obs.reached else []
    if not obs.reached:
        why = why_unreached(obs, timeout)
        if probe.proto == "udp" and probe.echo is False and probe.question is None and obs.outcome == "timeout":
            why += (f" (not netlab's echo server: whatever serves udp/{probe.port} on {dst.name} need not "
                    f"answer a probe datagram, so silence proves nothing either way)")
        return [f"expected reachable, {why}"]
    out: list[str] = []
    if probe.question is not None:
        return dns_problems(probe.question, obs)
    if probe.proto in ("icmp", "mtu"):
        if obs.reply_from and obs.reply_from != dst.addr:
            out.append(f"the reply came from {obs.reply_from}, not {dst.ip} (address translated on the way)")
        return out
    if obs.answered_by is None:
        return out  # not netlab's echo server (a container with its own command): reachability only
    if probe.rules:
        return _judge_rules(probe, obs)
    if dst.kind in ("pod", "host") and obs.answered_by != dst.name:
        out.append(f"answered by {obs.answered_by}, not {dst.name}")
    seen_ip = _ip(obs.seen_client)
    if sender_ip and seen_ip and seen_ip != sender_ip:
        rule = "rule 1, pod to pod" if probe.source.kind == "pod" else "rule 2, node to pod"
        out.append(f"NAT: {dst.name} saw the client as {seen_ip}, but {probe.source.name} sent from "
                   f"{sender_ip} ({rule}: no NAT)")
    elif probe.port_kept and obs.local and obs.seen_client and ":" in obs.local and obs.local != obs.seen_client:
        out.append(f"NAT: {dst.name} saw the client as {obs.seen_client}, but {probe.source.name} sent from "
                   f"{obs.local} (source port translated)")
    server_ip = _ip(obs.server)
    if server_ip and server_ip != dst.addr:
        out.append(f"{dst.name} saw the request arrive at {server_ip}, but it was sent to {dst.ip} "
                   f"(rule 3: the IP a pod sees itself as is the IP others see it as)")
    return out


def dns_problems(q: Question, obs: Observation) -> list[str]:
    """A DNS probe's answer: its question's A record must be the Service's ClusterIP."""
    dns = obs.dns
    if dns is None:
        return [f"asked {q.text}, the cluster DNS sent no answer ({obs.detail or 'nothing came back'})"]
    if dns.get("rcode") == "NOERROR" and q.address in dns.get("a", []):
        return []
    return [f"asked {q.text}, the cluster DNS answered {dnsq.describe(dns)}, not A {q.address}"]


def _judge_rules(probe: Probe, obs: Observation) -> list[str]:
    """An echo reply against the probe's client-address rules."""
    who = obs.answered_by
    rule = probe.rule_for(who)
    if rule is None:
        if probe.svc is not None:
            names = ", ".join(name for name, _, _ in probe.svc.endpoints) or "none"
            return [f"answered by {who}, which is not an endpoint of svc/{probe.svc.service} (endpoints: {names})"]
        return [f"answered by {who}, not {probe.destination.name}"]
    out: list[str] = []
    if probe.svc is None and who != probe.destination.name:
        out.append(f"answered by {who}, not {probe.destination.name}")
    seen_ip = _ip(obs.seen_client)
    if seen_ip is not None and seen_ip not in rule.allowed:
        allowed = " or ".join(rule.allowed)
        out.append(f"NAT: {who} saw the client as {seen_ip}, expected {allowed} ({rule.why})")
    server = rule.server or f"{probe.destination.addr}:{probe.port}"
    if obs.server and obs.server != server:
        what = "the Service's DNAT target" if probe.svc is not None else "the address it was sent to"
        out.append(f"{who} saw the request arrive at {obs.server}, not {server} ({what})")
    return out


def failure_line(r: Result) -> str:
    return f"{r.probe.label}: {'; '.join(r.problems)}"
