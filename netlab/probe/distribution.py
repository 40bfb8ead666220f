"""Whether a Service spreads its connections over its endpoints, judged from a run of one client's connections.

kube-proxy picks an endpoint per connection at random (iptables ``statistic mode random``, nftables ``numgen
random``) unless ClientIP affinity pins a client to one; services.py plans the run (``Distribution``), the
agent makes the connections, and this module counts who answered.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from netlab.probe.judge import judge
from netlab.probe.service_targets import Distribution
from netlab.probe.tasks import NO_LINE_IN_TIME, Observation


@dataclass
class DistResult:
    dist: Distribution
    counts: dict[str, int]  # answering pod -> connections
    # outcome -> connections that failed: "refused" (a TCP reset or ICMP port unreachable came back: a reply,
    # but no echo server's), "timeout" (nothing came back), "unreachable", "error"
    failed: Counter
    problems: list[str]
    elapsed: float = 0.0
    late: int = 0  # connections accepted whose echo line did not come back in time (NO_LINE_IN_TIME)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def answered(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        d, t = self.dist, self.dist.target
        counts = ", ".join(f"{pod} {self.counts.get(pod, 0)}" for pod, _, _ in t.endpoints)
        extra = [f"{who} {n}" for who, n in self.counts.items() if who not in {p for p, _, _ in t.endpoints}]
        extra += [f"{why} {n}" for why, n in sorted(self.failed.items())]  # "refused 108": how the others failed
        counts = ", ".join([counts] + extra) if extra else counts
        if t.affinity:
            rule = "ClientIP affinity: all to one endpoint"
        else:
            rule = f"each at least {_num(d.threshold)}"
        verdict = "ok" if self.ok else "NOT AS EXPECTED"
        return (f"{d.title} ({t.address}): {d.connections} connections from {d.probe.source.name}: {counts} "
                f"({rule}) {verdict}")

    def to_json(self) -> dict:
        d, t = self.dist, self.dist.target
        return {"service": t.service, "namespace": t.namespace, "port_name": t.port_name, "protocol": t.protocol,
                "port": t.service_port, "cluster_ip": t.address, "client": d.probe.source.name,
                "connections": d.connections, "session_affinity": "ClientIP" if t.affinity else "None",
                "endpoints": {pod: self.counts.get(pod, 0) for pod, _, _ in t.endpoints},
                "other_answers": {k: v for k, v in self.counts.items() if k not in {p for p, _, _ in t.endpoints}},
                "failed": dict(self.failed), "min_per_endpoint": None if t.affinity else d.threshold,
                "as_expected": self.ok, "problems": list(self.problems)}


def _num(x: float) -> str:
    return f"{x:g}" if x == int(x) else f"{x:.1f}"


def judge_distribution(dist: Distribution, observations: list[Observation], timeout: float,
                       sender_ip: str | None = None) -> DistResult:
    """Count who answered each connection; check shares (or affinity) and every reply's client address."""
    t = dist.target
    counts: dict[str, int] = {}
    failed: Counter = Counter()
    unknown = late = 0
    nat: Counter = Counter()
    for obs in observations:
        if not obs.reached:
            failed[obs.outcome] += 1
            continue
        if obs.answered_by is None and obs.detail == NO_LINE_IN_TIME:  # connected; its echo line came too late
            late += 1
            continue
        if obs.answered_by is None:
            unknown += 1
            continue
        counts[obs.answered_by] = counts.get(obs.answered_by, 0) + 1
        for problem in judge(dist.probe, obs, timeout, sender_ip):
            nat[_generic(problem)] += 1
    members = [pod for pod, _, _ in t.endpoints]
    problems: list[str] = []
    total = dist.connections
    if failed:
        problems.append(failed_words(failed, total))
    if late:  # QA q39 3: said "were not an echo reply", as if another server had answered
        problems.append(late_words(late, total, timeout))
    if unknown:
        problems.append(f"{unknown} of {total} replies were not an echo reply")
    strangers = {k: v for k, v in counts.items() if k not in members}
    for who, n in strangers.items():
        problems.append(f"{n} of {total} connections answered by {who}, which is not an endpoint")
    if t.affinity:
        used = [pod for pod in members if counts.get(pod)]
        if len(used) > 1:
            spread = ", ".join(f"{pod} {counts[pod]}" for pod in used)
            problems.append(f"sessionAffinity ClientIP: the connections went to {len(used)} endpoints ({spread}); "
                            f"all must go to one")
    else:
        for pod in members:
            n = counts.get(pod, 0)
            if n < dist.threshold:
                problems.append(f"{pod} served {n} of {total} connections, under half its fair share "
                                f"({_num(dist.threshold)} of {_num(total / len(members))})")
    for problem, n in nat.items():
        problems.append(f"{n} of {total} replies: {problem}")
    return DistResult(dist, counts, failed, problems, late=late)


def failed_words(failed: Counter, total: int) -> str:
    how = ", ".join(f"{n} {why}" for why, n in sorted(failed.items()))
    return f"{sum(failed.values())} of {total} connections failed ({how})"


def late_words(late: int, total: int, timeout: float) -> str:
    return (f"{late} of {total} connections were accepted, but their echo line did not come back within "
            f"{_num(timeout)} s (late, or lost on the way)")


def _generic(problem: str) -> str:
    """A problem without the port numbers that differ per connection, so equal ones are counted together."""
    return re.sub(r"(\d+\.\d+\.\d+\.\d+):\d+", r"\1", problem)
