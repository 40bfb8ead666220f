"""The policy truth table: every (source pod, destination pod, protocol, port) flow,
what the evaluator allows, and what real traffic did; cyclonus-style rendering.

    tcp/80   x-a x-b x-c ...        .  allowed and reached
    x-a      .   X   X              X  denied and blocked
    x-b      X   .   X              !  allowed but BLOCKED (a mismatch)
                                    ?  denied but REACHED (a mismatch)
                                    -  not served, or not probed (a note says why)

Flows are the ports the destination serves (TCP on every declared port, UDP
where netlab's echo server answers, and the cluster DNS's 53/UDP; its port 53
is asked a DNS question: a silent UDP port proves nothing), as the probe
matrix does. A pod
reaching its own address never leaves its namespace (loopback); it is probed
too, and policies never judge it. A terminal pod (Completed or Error: every
container exited for good) serves and sends nothing: its row and column are
``-``, and a note says so, as probe's. A pod whose namespace was deleted
(``ip netns delete``) sends nothing either: its row is ``-`` too (not probed,
whatever the policies say; ``reached`` null in JSON), a note says why, and the
count leaves its flows out ("2/2 probed flows as the policies say, 2 not probed").
A node's namespace deleted (its pods' veths may work on, held by a process) is
noted so too, and the table is no pass either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from netlab.errors import netlab_command, status_way
from netlab.model.lab import Lab
from netlab.model.netpol import Peer, Verdict, policy_set
from netlab.probe import bypass
from netlab.probe.judge import got_reply, why_unreached
from netlab.probe.matrix import Probe, dns_asker, endpoints, probe_ports, terminated_notes
from netlab.probe.report import deleted_words

MARKS = {(True, True): ".", (False, False): "X", (True, False): "!", (False, True): "?"}


@dataclass
class Flow:
    src: str
    dst: str
    proto: str  # tcp | udp
    port: int
    verdict: Verdict
    reached: bool | None = None  # None: not probed
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    @property
    def mismatch(self) -> bool:
        return self.reached is not None and self.reached != self.allowed

    @property
    def mark(self) -> str:
        if self.reached is None:
            return "." if self.allowed else "X"
        return MARKS[(self.allowed, self.reached)]

    def to_json(self) -> dict:
        # the flow in probe's and trace's words; "from", "to", "proto" beside them for one release (docs/json.md)
        return {"source": self.src, "from": self.src, "destination": self.dst, "to": self.dst,
                "protocol": self.proto, "proto": self.proto, "port": self.port, "allowed": self.allowed,
                "reached": self.reached, "mismatch": self.mismatch, "why": self.verdict.describe(),
                "detail": self.detail or None}  # what was seen of a mismatched flow; null otherwise


@dataclass
class PolicyTable:
    pods: list[str]
    flows: list[Flow] = field(default_factory=list)
    seconds: float = 0.0
    hints: list[str] = field(default_factory=list)  # where the kernel's view explains mismatches
    lab: str = ""  # the lab's name, as every command's JSON gives it
    notes: list[str] = field(default_factory=list)  # what is left out, and why (a terminal pod)
    error: str | None = None  # a lab whose up or down ended before it finished: list's line (interrupted.stalled)
    # a pod's or node's namespace deleted behind netlab's back: exec's line for each (its flows not probed): the lab
    # is not as planned, so the table is no pass (exit 1), as probe's run is not (Report.deleted)
    deleted: list[str] = field(default_factory=list)
    deleted_kinds: list[str] = field(default_factory=list)  # each one's kind (pod, node, host, gateway, lb): Report's
    sent: bool = False  # probe(): every flow sent for real but a deleted pod's (reached None, ``-``), if any

    @property
    def probed(self) -> bool:
        """Real traffic was sent (--probe): a flow with no ``reached`` was not probed, not merely evaluated."""
        return self.sent or any(f.reached is not None for f in self.flows)

    @property
    def mismatches(self) -> list[Flow]:
        return [f for f in self.flows if f.mismatch]

    @property
    def services(self) -> list[tuple[str, int]]:
        return sorted({(f.proto, f.port) for f in self.flows})

    def to_json(self) -> dict:
        return {"lab": self.lab, "pods": self.pods, "probed": self.probed,
                "flows": [f.to_json() for f in self.flows], "mismatches": len(self.mismatches),
                "elapsed_s": round(self.seconds, 3), "seconds": round(self.seconds, 3),  # seconds: deprecated
                "hints": self.hints, "notes": self.notes, "error": self.error}

    def render(self) -> str:
        """One cyclonus-style matrix per protocol/port: rows from, columns to."""
        width = max([len(p) for p in self.pods] + [1]) + 1
        first = max([len(p) for p in self.pods] + [len(f"{p}/{n}") for p, n in self.services] + [1]) + 2
        cells = {(f.src, f.dst, f.proto, f.port): f for f in self.flows}
        out: list[str] = []
        for proto, port in self.services:
            out.append(f"{proto}/{port}".ljust(first) + "".join(p.ljust(width) for p in self.pods).rstrip())
            for src in self.pods:
                row = [self._mark(cells.get((src, dst, proto, port))) for dst in self.pods]
                out.append(src.ljust(first) + "".join(m.ljust(width) for m in row).rstrip())
            out.append("")
        probed = self.probed
        unprobed = len([f for f in self.flows if f.reached is None]) if probed else 0
        out.append(". allowed" + (" and reached" if probed else "") + ", X denied" + (" and blocked" if probed else "")
                   + (", ! allowed but BLOCKED, ? denied but REACHED" if probed else "")
                   + (", - not served or not probed (a note says why)" if unprobed else ", - not served"))
        for f in self.mismatches:
            what = "allowed but BLOCKED" if f.allowed else "denied but REACHED"
            out.append(f"MISMATCH {f.src} -> {f.dst} {f.proto}/{f.port}: {what} ({f.verdict.describe()})"
                       + (f"; {f.detail}" if f.detail else ""))
        out += [f"hint: {h}" for h in self.hints]
        out += [f"note: {n}" for n in self.notes]
        if probed:
            n = len([f for f in self.flows if f.reached is not None])
            kinds = self.deleted_kinds or ["pod"] * len(self.deleted)  # probe's summary says it so too
            end = f" ({deleted_words(kinds)})" if self.deleted else ""
            left = "flows as the policies say" if not unprobed else \
                f"probed flows as the policies say, {unprobed} not probed"
            out.append(f"{n - len(self.mismatches)}/{n} {left} in {self.seconds:.2f} s{end}")
        return "\n".join(out)

    def _mark(self, flow: Flow | None) -> str:
        """A cell: ``-`` for no flow (the destination does not serve the port, a terminal pod) and, in a probed
        table, for a flow not sent (its source's namespace deleted): not "allowed and reached" nor "blocked"."""
        if flow is None or (self.probed and flow.reached is None):
            return "-"
        return flow.mark


def evaluate(lab: Lab) -> PolicyTable:
    """The table from the policies alone (nothing is sent)."""
    ps = policy_set(lab)
    views = {p.name: p for p in ps.pods}
    table = PolicyTable([p.name for p in lab.pods], lab=lab.name, notes=terminated_notes(lab))
    live = [p for p in lab.pods if p.name not in lab.terminal]  # a Completed/Error pod: nothing runs there
    for dst in live:
        for port, proto, echo in probe_ports(dst):
            for src in live:
                s, d = views[src.name], views[dst.name]
                verdict = ps.flow(Peer(s.ip, s), Peer(d.ip, d), proto.upper(), port)
                table.flows.append(Flow(src.name, dst.name, proto, port, verdict))
    table.flows.sort(key=lambda f: (f.proto, f.port, table.pods.index(f.src), table.pods.index(f.dst)))
    return table


def probe(lab: Lab, timeout: float = 0.5, drift: Callable[[Lab], list[str] | str] = lambda lab: []) -> PolicyTable:
    """The table, with every flow sent for real (one agent job) and compared; ``drift`` reads what `status` finds
    of the nodes' policy rules not as planned, once a flow disagreed (cli/policy.policy_drift), or says in a note
    why it did not (another command is changing the lab)."""
    from netlab.probe.runner import deleted_namespaces, deleted_note, missing_namespaces, run_probes  # kernel's door

    table = evaluate(lab)
    eps = endpoints(lab)
    ask = dns_asker(lab)
    probes = []
    for f in table.flows:
        question = ask(eps[f.dst], f.proto, f.port)  # the cluster DNS's port 53: a DNS question
        probes.append(Probe(eps[f.src], eps[f.dst], f.proto, f.port, f.allowed,
                            reason="policy: " + f.verdict.describe(), echo=question is None, question=question))
    start = time.monotonic()
    results = run_probes(lab, probes, timeout=timeout)
    table.seconds = time.monotonic() - start
    table.sent = True
    missing = missing_namespaces(lab, probes)  # a pod's or node's deleted behind netlab's back: nothing sent from it
    for f, r in zip(table.flows, results):
        if eps[f.src].netns in missing:
            continue  # not probed (reached None), said in a note: not "denied and blocked"
        f.reached = r.obs.reached
        if f.reached != f.allowed:  # what the probe saw, in probe's words: "got a reply in 0.3 ms", "no reply in 0.5 s"
            f.detail = got_reply(r.obs, f.dst) if f.reached else why_unreached(r.obs, timeout)
    opened = [(f.src, f.dst, f.proto, f.port) for f in table.flows if f.reached and not f.allowed]
    if opened:
        table.hints = bypass.hints(lab, opened, bypass.unfiltered_nodes(lab))
    if table.mismatches:
        found = drift(lab)
        if isinstance(found, str):
            table.notes.append(found)
        else:
            table.hints += drift_hint(lab, table.mismatches, found)
    gone = deleted_namespaces(lab, missing)  # the line exec and trace say of each, as probe's notes
    table.notes += [deleted_note(kind, name, line) for kind, name, line in gone]
    table.deleted = [line for _, _, line in gone]
    table.deleted_kinds = [kind for kind, _, _ in gone]
    return table


def drift_hint(lab: Lab, mismatches: list[Flow], drift: list[str]) -> list[str]:
    """A hint when flows disagree with the policies and a node's policy rules are not netlab's any more: `status`
    names what is missing or extra, `trace` the rule the flow met, and `up` writes them back."""
    if not drift:
        return []
    from netlab.workload.reconfigure import repair_command

    f = next((m for m in mismatches if m.allowed), mismatches[0])  # a blocked flow first: a missing allow rule
    what = "allowed but blocked" if f.allowed else "denied but reached"
    more = f" (and {len(drift) - 1} more)" if len(drift) > 1 else ""
    return [f"the nodes' policy rules are not as planned (drift: {drift[0]}{more}), which explains a flow "
            f"{what}: `{status_way(lab.name, api=False)}` lists what differs, "
            f"`{netlab_command(f'trace --lab {lab.name} {f.src} {f.dst} --proto {f.proto} --port {f.port}')}` "
            f"names the rule the flow met; "
            f"{repair_command(lab.name)} writes them back"]
