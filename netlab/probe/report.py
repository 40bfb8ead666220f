"""Render a probe run: a pingall-style matrix, a summary line, failures in words, JSON, JUnit XML.

Pure: works on :class:`netlab.probe.judge.Report` data, no kernel access.

The matrix is what a Mininet ``pingall`` user knows, one block per protocol
and port, one row per source, ``X`` for a miss::

    *** icmp
    fedora-1 -> fedora-2 fedora-3 fedora-4
    fedora-2 -> X        fedora-3 fedora-4

and a ``!`` after any entry that is not what the expectation says (an ``X!``
for a pair that should answer, ``fedora-3!`` for one that should not, or a
reply that broke a rule, such as NAT).

Service probes get a block per Service port and path, after the protocol
blocks; the cell is the Service (ClusterIP, LoadBalancer) or the node whose
NodePort was dialed::

    *** svc/web tcp/80 (ClusterIP 10.96.0.20)
    web-1  -> web
    *** svc/web-np tcp/80 (NodePort 30080 on every node)
    (each cell: the node whose nodePort 30080 the row's client dialed)
    node-1  -> node-1 node-2
    example -> node-1 node-2

then one line per distribution check (connections per endpoint).
"""

from __future__ import annotations

from netlab.probe.judge import Report, Result, failure_line
from netlab.probe.probes import ORDER

WIDE = 16  # more destinations than this: rows list only the misses


def _blocks(results: list[Result]) -> list[tuple[str, list[Result]]]:
    """Protocol/port blocks first (icmp, tcp/..., udp/...), then titled sections in the order they come."""
    blocks: dict[str, list[Result]] = {}
    for r in sorted((r for r in results if r.probe.section is None),
                    key=lambda r: (ORDER.index(r.probe.proto), r.probe.port or 0)):
        blocks.setdefault(r.probe.service, []).append(r)
    for r in results:
        if r.probe.section is not None:
            blocks.setdefault(r.probe.section, []).append(r)
    return list(blocks.items())


def _cell(r: Result) -> str:
    text = r.probe.destination.name if r.obs.reached else "X"
    return text if r.ok else text + "!"


def matrix_text(results: list[Result]) -> list[str]:
    lines: list[str] = []
    for service, rs in _blocks(results):
        lines.append(f"*** {service}")
        first = rs[0].probe
        if first.svc is not None and first.svc.kind == "NodePort":  # a cell is a node, not what the row reached
            lines.append(f"(each cell: the node whose nodePort {first.port} the row's client dialed)")
        sources: list[str] = []
        dests: list[str] = []
        rows: dict[str, dict[str, Result]] = {}
        for r in rs:
            s, d = r.probe.source.name, r.probe.destination.name
            if s not in rows:
                sources.append(s)
                rows[s] = {}
            if d not in dests:
                dests.append(d)
            rows[s][d] = r
        rank: dict[str, int] = {}
        for r in rs:  # topology order: names in the order they first appear
            rank.setdefault(r.probe.source.name, len(rank))
            rank.setdefault(r.probe.destination.name, len(rank))
        dests.sort(key=rank.__getitem__)
        sw = max(len(s) for s in sources)
        widths = {d: max(len(_cell(row[d])) if d in row else 0 for row in rows.values()) for d in dests}
        for s in sources:
            row = rows[s]
            if len(dests) > WIDE:
                cells = list(row.values())
                reached = sum(1 for r in cells if r.obs.reached)
                odd = [_cell(r) if r.obs.reached else f"X:{r.probe.destination.name}{'' if r.ok else '!'}"
                       for r in cells if not r.obs.reached or not r.ok]
                tail = f"  {' '.join(odd)}" if odd else ""
                lines.append(f"{s.ljust(sw)} -> {reached}/{len(cells)} reached{tail}")
                continue
            cells = [(_cell(row[d]) if d in row else "").ljust(widths[d]) for d in dests]
            lines.append(f"{s.ljust(sw)} -> {' '.join(cells).rstrip()}")
    return lines


def summary_line(report: Report) -> str:
    line = f"{report.as_expected}/{len(report.results)} probes as expected"
    dists = report.distributions
    if dists:
        line += f", {sum(1 for d in dists if d.ok)}/{len(dists)} Service distributions as expected"
    if report.deleted:  # not probed, and not as planned: the run is no pass
        line += f" ({deleted_words(report.deleted_kinds or ['pod'] * len(report.deleted))})"
    return line


KINDS = {"pod": "pod", "node": "node", "host": "internet host"}
PARTS = {"gateway": "the internet's gateway", "lb": "the load balancer"}  # no probes of their own: none left out


def deleted_words(kinds: list[str]) -> str:
    """What the summary says of the pods, nodes and internet hosts (``kinds``, one each) whose namespace was
    deleted: ``1 pod and 1 node not probed: their namespaces were deleted``; and of the internet's gateway and
    load balancer, which send no probes of their own: ``the internet's gateway: its namespace was deleted``."""
    out = []
    probed = [k for k in kinds if k in KINDS]
    if probed:
        counts = [(probed.count(k), word) for k, word in KINDS.items() if k in probed]
        said = [f"{n} {word}{'s' if n > 1 else ''}" for n, word in counts]
        whose = "their namespaces were" if len(probed) > 1 else "its namespace was"
        listed = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
        out.append(f"{listed} not probed: {whose} deleted")
    parts = [word for k, word in PARTS.items() if k in kinds]
    if parts:
        whose = "their namespaces were" if len(parts) > 1 else "its namespace was"
        out.append(f"{' and '.join(parts)}: {whose} deleted")
    return "; ".join(out)


def rule_lines(report: Report) -> list[str]:
    echo = [r for r in report.results if r.obs.reached and r.obs.seen_client and r.probe.expected]
    plain = [r for r in echo if not r.probe.rules]
    ruled = [r for r in echo if r.probe.rules]
    nat_ok = sum(1 for r in plain if not any(p.startswith("NAT") for p in r.problems))
    pods_ok = sum(1 for c in report.self_checks if c.ok)
    lines = [
        f"no NAT: {nat_ok}/{len(plain)} echo replies saw the sender's own address (rules 1 and 2)",
        f"pod addresses: {pods_ok}/{len(report.self_checks)} pods carry the address others reach them at (rule 3)",
    ]
    if ruled:
        ok = sum(1 for r in ruled if not any(p.startswith("NAT") for p in r.problems))
        lines.append(f"Service and egress NAT: {ok}/{len(ruled)} echo replies saw the client address the rules "
                     f"give (ClusterIP: the pod's own, hairpin: its node's {report.bridge or 'pod gateway'}; "
                     "NodePort, LoadBalancer and externalIP: a node's, or the client's own with "
                     "externalTrafficPolicy Local; egress: the gateway's)")
    asked = [(r, r.probe.question) for r in report.results if r.probe.question is not None and r.obs.reached]
    if asked:
        q = asked[0][1]
        ok = sum(1 for r, _ in asked if not r.problems)
        lines.append(f"cluster DNS: {ok}/{len(asked)} answers to {q.text} gave its ClusterIP {q.address} "
                     f"(probes of kube-dns's port 53, UDP and TCP, ask it a real question, as a pod's resolver does)")
    if report.stats.get("arp") == "seeded":
        lines.append("neighbours: pods on one bridge used each other's MACs as temporary PERMANENT entries "
                     "(no ARP floods; each pod's ARP was checked from its node; --arp real resolves every pair)")
    return lines


def text(report: Report) -> str:
    dists = report.distributions
    what = f"{len(report.results)} probes"
    if dists:
        what += (f", {len(dists)} Service distribution checks ({sum(d.dist.connections for d in dists)} "
                 f"connections)")
    lines = [f"lab {report.lab}: {what} (timeout {report.timeout:g} s)"]
    lines += matrix_text(report.results)
    if any(not r.ok for r in report.results):
        # X is every probe that did not reach: a reset or an ICMP port unreachable is a reply, but a refusal
        lines.append("(X: not reached: no reply, refused or unreachable; !: not as expected, see below)")
    if dists:
        lines.append("*** distribution (connections to each ClusterIP, counted per endpoint)")
        lines += [d.line() for d in dists]
    lines.append("*** rules")
    lines += rule_lines(report)
    gone = [n for n in report.notes if any(f", {word}: " in n for word in PARTS.values())]  # no probes of theirs
    notes = [n for n in report.notes if n not in gone]
    if notes:
        lines.append("*** not probed")
        lines += notes
    if gone:
        lines.append("*** not there")
        lines += gone
    lines.append(f"*** {summary_line(report)}" + (f" in {report.elapsed:.2f} s" if report.elapsed else ""))
    problems = not_as_expected(report)
    if problems:
        lines.append(f"{len(problems)} not as expected:")
        lines += [f"  {p}" for p in problems]
    lines += [f"hint: {h}" for h in report.hints]
    table = table_line(report) if problems else None
    if table:
        lines.append(table)
    return "\n".join(lines)


def table_line(report: Report) -> str | None:
    """The one line a failed run's text says when the machine's neighbour table filled up, or forced its garbage
    collector, while it ran (the kernel's counters, /proc/net/stat/arp_cache: the JSON's neighbour_table)."""
    fulls, forced = report.stats.get("table_fulls") or 0, report.stats.get("forced_gc_runs") or 0
    if not fulls and not forced:
        return None
    gcs = f"{forced} forced garbage collection{'s' if forced != 1 else ''}"
    what = (f"was full {fulls} time{'s' if fulls != 1 else ''} during the run" + (f" ({gcs})" if forced else "")
            if fulls else f"needed {gcs} during the run")
    return (f"note: the machine's neighbour (ARP) table {what}: the failures may come from that table, shared by "
            "every namespace on this machine (other labs, the host), not from the lab; see /proc/net/stat/arp_cache "
            "and net.ipv4.neigh.default.gc_thresh3")


def not_as_expected(report: Report) -> list[str]:
    """Every check that is not as expected, one line each: the text's "N not as expected", JUnit's failures and the
    JSON's summary.not_as_expected count the same (none exactly when the run is ok)."""
    problems = [failure_line(r) for r in report.failures] + [c.problem for c in report.self_failures]
    problems += [dist_failure_line(d) for d in report.distributions if not d.ok]
    problems += report.deleted  # a pod's or node's namespace deleted behind netlab's back: what makes the lab again
    return problems


def dist_failure_line(d) -> str:
    return f"{d.dist.title} distribution from {d.dist.probe.source.name}: {'; '.join(d.problems)}"


def to_json(report: Report) -> dict:
    dists = report.distributions
    return {
        "lab": report.lab,
        "ok": report.ok,
        "summary": {"probes": len(report.results), "as_expected": report.as_expected,
                    "not_as_expected": len(not_as_expected(report)), "distributions": len(dists),
                    "distributions_as_expected": sum(1 for d in dists if d.ok), "text": summary_line(report)},
        "timeout_s": report.timeout,
        "elapsed_s": round(report.elapsed, 4),
        "probes": [r.to_json() for r in report.results],
        "pods": [c.to_json() for c in report.self_checks],
        "distributions": [d.to_json() for d in dists],
        "not_probed": list(report.notes),
        "hints": list(report.hints),
        "notes": list(report.file_notes),
        "conntrack": {"unanswered_service_flows_deleted": report.stats.get("untracked", 0),
                      "answered_udp_flows_deleted": report.stats.get("untracked_udp", 0)},
        "neighbour_table": {k: v for k, v in report.stats.items()
                            if k in ("peak_entries", "entries_before", "entries_after", "table_fulls",
                                     "forced_gc_runs", "deleted", "swept", "forgotten", "budget", "peak_live", "arp",
                                     "seeded", "turn_wait_s")},
        "error": report.error,
    }


def junit(report: Report) -> bytes:
    """JUnit XML: one test case per probe, per pod address check and per distribution check."""
    import xml.etree.ElementTree as ET  # --junit's alone (5 ms to load)

    dists = report.distributions
    cases = len(report.results) + len(report.self_checks) + len(dists) + len(report.deleted)
    fails = len(not_as_expected(report))
    suites = ET.Element("testsuites", name="netlab probe", tests=str(cases), failures=str(fails),
                        time=f"{report.elapsed:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"netlab probe: lab {report.lab}", tests=str(cases),
                          failures=str(fails), errors="0", skipped="0", time=f"{report.elapsed:.3f}")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=_classname(report.lab, r), name=r.probe.label,
                             time=f"{(r.obs.rtt or 0):.6f}")
        if not r.ok:
            f = ET.SubElement(case, "failure", message="; ".join(r.problems), type=r.obs.outcome)
            f.text = failure_line(r)
    for c in report.self_checks:
        case = ET.SubElement(suite, "testcase", classname=f"{report.lab}.rules",
                             name=f"{c.pod} carries the address others reach it at", time="0")
        if not c.ok:
            f = ET.SubElement(case, "failure", message=c.problem, type="address")
            f.text = c.problem
    for d in dists:
        case = ET.SubElement(suite, "testcase", classname=f"{report.lab}.distribution",
                             name=f"{d.dist.title}: {d.dist.connections} connections from {d.dist.probe.source.name}",
                             time="0")
        if not d.ok:
            f = ET.SubElement(case, "failure", message="; ".join(d.problems), type="distribution")
            f.text = dist_failure_line(d)
    for line in report.deleted:  # a pod's or node's namespace deleted: its flows not probed, the run no pass (exit 1)
        case = ET.SubElement(suite, "testcase", classname=f"{report.lab}.rules",
                             name=line.split(" was deleted", 1)[0] + " is there", time="0")
        f = ET.SubElement(case, "failure", message=line, type="namespace")
        f.text = line
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def _classname(lab: str, r: Result) -> str:
    p = r.probe
    if p.svc is not None:
        return f"{lab}.svc.{p.svc.service}.{p.svc.kind}.{p.proto}.{p.svc.service_port}"
    if p.section is not None and p.section.startswith("egress"):
        return f"{lab}.egress.{p.proto}.{p.port}"
    return f"{lab}.{p.service.replace('/', '.')}"
