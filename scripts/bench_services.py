#!/usr/bin/env python3
"""Benchmark: kube-proxy's rules for many Services, in both proxy modes, full sync and one endpoint removed.

    sudo .venv/bin/python scripts/bench_services.py [--services 1000] [--endpoints 3] [--nodes 3]
                                                     [--backend nft|legacy] [--workers N] [--prefix nlsvc]

Makes its own scratch namespaces (``<prefix>-<random>-<mode>-nN``, default
prefix ``nlsvc``, removed at the end, also on failure and on SIGTERM or
SIGHUP: scripts/bench_stop.py), never touches the host's namespace. Every figure
is measured in this run, beside its baseline, and printed with the ratio
("faster" or "slower"):

iptables mode
  full sync      baseline: what ``netlab up`` does for a new node, one
                 ``iptables-restore`` per table, the nodes one after the other;
                 new: the same payloads, the nodes in parallel (as netlab runs
                 them: all at once, up to 8, see kernel/threads.py). A line of
                 its own: the same payloads without their leading ``-Z``
                 (plan/iptables.py's ZERO_FIRST), in parallel, beside them.
  one endpoint   baseline: the verified path (``iptables-save`` of each node,
                 then a restore of the chains that differ), nodes one after the
                 other; two rows beside it: "as `up` does" (each node's tables
                 read with one ``iptables-save``, then a restore of what
                 differs, realize/repair.py's way), nodes in parallel; and
                 "trusted", kube-proxy's partial sync (only the chains that
                 changed since the last restore, trusting it, nothing read:
                 not what ``up`` does), nodes in parallel.
nftables mode
  full sync      baseline: one ``nft -f`` transaction per node, nodes one after
                 the other; new: nodes in parallel. Either goes the way
                 netlab does (kernel/nft.py): through nft's own library in
                 this process when it is free, else the ``nft`` program;
                 ``NETLAB_NFT=library|process`` picks one way for both.
  one endpoint   baseline: the whole table replaced (a full sync);
                 two rows beside it: "as `up` does" (each node's table read,
                 ``nft -j list table``, then kube-proxy's partial sync from
                 what it holds: the changed chains flushed and written, the
                 changed map elements deleted and added, the endpoint's chain
                 emptied: what ``up`` does once something else committed in
                 the node), nodes in parallel; and "trusted", the same partial
                 sync computed from the two plans' listings, trusting the
                 last transaction, nothing read (what ``up`` does while the
                 node's nf_tables generation is the one its last transaction
                 left: kernel/nftgen.py), nodes in parallel. Computing the sync is in both timings.
                 The emptied chain's deletion, which kube-proxy and the next
                 ``up`` do a sync later in a transaction of their own, is
                 timed on a line of its own.
  by size        one node's full sync into an empty namespace for a quarter,
                 half and all of the Services, and how the time per Service grows.

Render (the plan: payloads and listings) is timed apart, wall and CPU; the
nftables full sync's CPU time is printed too, split between this process
(Python, libnftables in it) and the ``nft`` programs, user and sys; each result is checked against the plan
(``iptables-save``, ``nft -j list table``) outside the timings. Targets
(issue 15): full < 0.5 s iptables, < 0.2 s nftables; one endpoint removed
< 50 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_stop  # noqa: E402 - scripts/bench_stop.py, beside this file

from netlab.kernel import iptables as iptables_tool, nft  # noqa: E402
from netlab.kernel.netns import create_netns, make_tag, remove_netns  # noqa: E402
from netlab.kernel.threads import transaction_workers  # noqa: E402
from netlab.model.lab import resolve  # noqa: E402
from netlab.model.topology import Topology  # noqa: E402
from netlab.plan import iptables, nftables, services  # noqa: E402
from netlab.plan.resources import NatRules  # noqa: E402
from netlab.realize import netfilter, netfilter_drift  # noqa: E402
from netlab.realize import nft_sync, nftables as nft_realize  # noqa: E402


def topology(n_svc: int, n_ep: int, n_nodes: int, mode: str, drop: int | None = None) -> Topology:
    """n_svc Services, each selecting n_ep pods of its own spread over the nodes.

    ``drop``: index of one pod that loses its label (one endpoint removed).
    """
    nodes = [{"name": f"node-{i}", "podCIDR": f"10.{100 + i}.0.0/20"} for i in range(n_nodes)]
    pods, svcs = [], []
    k = 0
    for s in range(n_svc):
        for _ in range(n_ep):
            labels = {} if k == drop else {"svc": f"s{s}"}
            pods.append({"name": f"p{k}", "node": f"node-{k % n_nodes}", "labels": labels})
            k += 1
        svcs.append({"name": f"svc-{s}", "selector": {"svc": f"s{s}"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]})
    return Topology.model_validate({
        "name": "bench", "cluster": {"podCIDR": "10.96.0.0/11", "serviceCIDR": "10.0.0.0/14", "nodeMask": 20,
                                     "kubeProxyMode": mode},
        "nodes": nodes, "pods": pods, "services": svcs,
    })


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cpu_split(fn: Callable[[], object]) -> str:
    """fn's CPU time: this process's (Python, and libnftables when nft runs in it) and its children's (the
    ``nft`` programs), user and sys (the kernel's work for them). On a loaded machine, the wall clock counts
    the other work's turns too; CPU time does not."""
    s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    fn()
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    ms = [(b - a) * 1000 for a, b in ((s0.ru_utime, s1.ru_utime), (s0.ru_stime, s1.ru_stime),
                                      (c0.ru_utime, c1.ru_utime), (c0.ru_stime, c1.ru_stime))]
    return (f"CPU {sum(ms):.0f} ms: this process user {ms[0]:.0f} sys {ms[1]:.0f}, "
            f"nft programs user {ms[2]:.0f} sys {ms[3]:.0f}")


def each(items: Sequence, fn: Callable, workers: int) -> None:
    """fn(item) for every item: one after the other (workers=1) or in a pool of ``workers`` threads."""
    if workers <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, items))


def ratio(base: float, new: float) -> str:
    """How the new time compares with the baseline's: "faster" or "slower", never a factor below 1."""
    if new <= 0 or base <= 0:
        return "   n/a"
    return f"{base / new:5.1f}x faster" if new <= base else f"{new / base:5.1f}x slower"


def line(what: str, base: float, new: float, target: float | None = None) -> str:
    verdict = ""
    if target is not None:
        verdict = f"   target < {target * 1000:.0f} ms: {'ok' if new < target else 'MISSED'}"
    return f"  {what:<34} baseline {base * 1000:8.1f} ms   new {new * 1000:8.1f} ms   {ratio(base, new)}{verdict}"


# --- iptables mode --------------------------------------------------------------------------

def iptables_rules(lab, names: list[str]) -> list[NatRules]:
    """The nodes' nat and filter resources, moved into the scratch namespaces."""
    res = [r for r in services.resources(lab) if r.kind == "nat"]
    by_node: dict[str, list[NatRules]] = {}
    for r in res:
        by_node.setdefault(r.netns, []).append(r)
    out = []
    for node, scratch in zip([n.netns for n in lab.nodes], names):
        out += [NatRules(netns=scratch, table=r.table, chains=r.chains, payload=r.payload, rules=r.rules)
                for r in by_node[node]]
    return out


def bench_iptables(args, backend: str | None, names: list[str], names_base: list[str], plain: list[str],
                   workers: int) -> None:
    t0 = time.perf_counter()
    lab = resolve(topology(args.services, args.endpoints, args.nodes, "iptables"))
    changed = resolve(topology(args.services, args.endpoints, args.nodes, "iptables",
                               drop=args.endpoints * args.services // 2))
    t_model = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = iptables_rules(lab, names)
    t_render = time.perf_counter() - t0
    res_base = iptables_rules(lab, names_base)
    nat = next(r for r in res if r.table == "nat")
    n_rules = sum(len(r.rules) for r in res if r.netns == names[0])
    print(f"iptables mode ({backend or os.path.basename(os.path.realpath(netfilter.tools()[1]))}): "
          f"{args.services} Services x {args.endpoints} endpoints on {args.nodes} nodes; per node {n_rules} rules, "
          f"nat payload {len(nat.payload) / 1e6:.2f} MB (model {t_model:.2f} s, render {t_render * 1000:.0f} ms, "
          "not in the figures below)")

    def restore_node(group: list[NatRules]) -> None:
        for r in group:
            netfilter.restore(r.netns, r.table, netfilter_drift.table_payload(r, None), backend)

    def groups(items: list[NatRules], netns: list[str]) -> list[list[NatRules]]:
        return [[r for r in items if r.netns == n] for n in netns]

    base = timed(lambda: each(groups(res_base, names_base), restore_node, 1))
    new = timed(lambda: each(groups(res, names), restore_node, workers))
    print(line("full sync, all nodes", base, new, 0.5))
    for r in (nat, next(r for r in res_base if r.table == "nat")):
        assert netfilter.observe_rules(r.netns, "nat", r.chains, backend) == r.rules, "kernel differs from the plan"
    # status' check of the nodes' nat tables, from iptables-save's text: beside parsing that text alone
    saved = {r.netns: iptables_tool.save(r.netns, "nat", backend) for r in res if r.table == "nat"}
    nats = [r for r in res if r.table == "nat"]
    parse = timed(lambda: [netfilter.parse_save(saved[r.netns], "nat") for r in nats])
    check = timed(lambda: [netfilter_drift.table_drift(r, saved[r.netns]) for r in nats])
    assert not any(netfilter_drift.table_drift(r, saved[r.netns]) for r in nats), "status sees drift after a full sync"
    print(f"  status' check of the nat tables, all nodes: {check * 1000:.1f} ms (parsing iptables-save's text "
          f"alone: {parse * 1000:.1f} ms)")

    # The same payloads without their first command, -Z (plan/iptables.py's ZERO_FIRST), into new namespaces.
    lead = "".join(f"{z}\n" for z in iptables.ZERO_FIRST)
    assert lead in netfilter_drift.table_payload(nat, None), "the nat payload does not start with -Z"

    def restore_plain(group: list[NatRules]) -> None:
        for r in group:
            payload = netfilter_drift.table_payload(r, None)
            netfilter.restore(plain[names.index(r.netns)], r.table, payload.replace(lead, "", 1), backend)

    without = timed(lambda: each(groups(res, names), restore_plain, workers))
    print(f"  {'full sync, all nodes: without -Z':<34} {without * 1000:8.1f} ms   (the new row's payloads less their "
          f"leading -Z, in parallel: the new row's time minus this one {(new - without) * 1000:+.1f} ms)")
    assert netfilter.observe_rules(plain[0], "nat", nat.chains, backend) == nat.rules, "kernel differs from the plan"

    # One endpoint removed: the plain namespaces hold the same rules (-Z only zeroes counters).
    res2, res2_base = iptables_rules(changed, names), iptables_rules(changed, names_base)
    res2_up = iptables_rules(changed, plain)
    prev = {(r.netns, r.table): r for r in res + res_base}
    changes = []

    def verified(r: NatRules) -> None:
        netfilter.apply_rules(r, prev[(r.netns, r.table)], backend, verify=True)

    def as_up(group: list[NatRules]) -> None:
        """What `netlab up` does (realize/repair.py's table ops): the namespace's tables read with one iptables-save
        (kernel/live_read.py), then one restore --noflush per table of what differs (netfilter_drift.table_payload)."""
        saved = iptables_tool.split_tables(iptables_tool.save(group[0].netns, None, backend))
        for r in group:
            payload = netfilter_drift.table_payload(r, saved.get(r.table))
            if payload:
                netfilter.restore(r.netns, r.table, payload, backend)

    base = timed(lambda: each(res2_base, verified, 1))
    up_way = timed(lambda: each(groups(res2_up, plain), as_up, workers))
    print(line("one endpoint removed, as `up` does", base, up_way, 0.05)
          + "   (new: each node's tables read, then what differs restored; nodes in parallel)")
    new = timed(lambda: changes.extend(netfilter.apply_many([(r, prev[(r.netns, r.table)]) for r in res2],
                                                             backend, workers=workers, verify=False)))
    written = sum(len(c.written) for c in changes)
    print(line("one endpoint removed, trusted", base, new, 0.05)
          + f"   (new: kube-proxy's partial sync, nothing read: not what `up` does; {written} chains rewritten, "
          f"{sum(len(c.deleted) for c in changes)} deleted)")
    for r in res2 + res2_base + res2_up:
        if r.table == "nat" and r.netns in (names[0], names_base[0], plain[0]):
            assert netfilter.observe_rules(r.netns, "nat", r.chains, backend) == r.rules, "kernel differs from plan"


# --- nftables mode -------------------------------------------------------------------------

def bench_nftables(args, names: list[str], names_base: list[str], workers: int, scratch: list[str],
                   upway: list[str]) -> None:
    lab = resolve(topology(args.services, args.endpoints, args.nodes, "nftables"))
    changed = resolve(topology(args.services, args.endpoints, args.nodes, "nftables",
                               drop=args.endpoints * args.services // 2))
    t0, c0 = time.perf_counter(), time.process_time()
    sps = services.service_ports(lab)
    tables = [nftables.kube_proxy_table(lab, node, sps) for node in lab.nodes]
    payloads = [nftables.replace_payload(t) for t in tables]
    listings = [t.listing() for t in tables]  # as plan/nftables.resource() makes them with the payloads
    t_render, c_render = time.perf_counter() - t0, time.process_time() - c0
    sps2 = services.service_ports(changed)
    tables2 = [nftables.kube_proxy_table(changed, node, sps2) for node in changed.nodes]
    lines = sum(len(v) for v in tables[0].rules.values()) + sum(len(v) for v in tables[0].elements.values())
    print(f"nftables mode: per node {len(tables[0].chains)} chains, {lines} rules and elements, payload "
          f"{len(payloads[0]) / 1e6:.2f} MB (render, all nodes' payloads and listings: {t_render * 1000:.0f} ms, "
          f"CPU {c_render * 1000:.0f} ms; not in the figures below); "
          f"nft: {nft.mode() or 'the library when free (a partial sync waits for another), else the program'}")

    def run(item: tuple[str, str]) -> None:
        nft.run(item[0], item[1])

    each(list(zip(upway, payloads)), run, workers)  # the namespaces `up`'s way is timed in, untimed
    base = timed(lambda: each(list(zip(names_base, payloads)), run, 1))
    cpu: list[str] = []
    new = timed(lambda: cpu.append(cpu_split(lambda: each(list(zip(names, payloads)), run, workers))))
    print(line("full sync, all nodes", base, new, 0.2))
    print(f"  ... new: {cpu[0]}")
    for ns, t in ((names[0], tables[0]), (names_base[0], tables[0])):
        assert nft_realize.listing(nft.list_table(ns, "ip", "kube-proxy")) == t.listing(), "kernel differs from plan"

    whole = [nftables.replace_payload(t) for t in tables2]
    # The plan holds each table's listing (NftRules.listing, made with it, as the iptables rules' canonical
    # lines are); the partial sync computes its delta from the two and writes it, in the timing.
    pairs = [(t, t2.listing()) for t, t2 in zip(listings, tables2)]
    deltas: dict[str, str] = {}

    def partial(item: tuple[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
        ns, (old, now) = item
        deltas[ns] = nft_sync.listing_delta("ip", "kube-proxy", old, now) or ""
        nft.run(ns, deltas[ns])

    def as_up(item: tuple[str, tuple[str, ...]]) -> None:
        """What `netlab up` does (realize/repair.py's _nft_op): the table read (nft -j list), then the partial
        sync from what it holds to the plan (the whole table when the delta would replay it)."""
        ns, now = item
        have = nft_realize.listing(nft.list_table(ns, "ip", "kube-proxy"))
        delta = nft_sync.listing_delta("ip", "kube-proxy", have, now)
        if delta and not nft_sync.is_replay(delta, "ip", "kube-proxy"):
            nft.run(ns, delta)
        elif delta:
            nft.run(ns, nftables.replace_payload(tables2[upway.index(ns)]))

    base = timed(lambda: each(list(zip(names_base, whole)), run, 1))
    up_way = timed(lambda: each([(ns, t2.listing()) for ns, t2 in zip(upway, tables2)], as_up, workers))
    print(line("one endpoint removed, as `up` does", base, up_way, 0.05)
          + "   (new: each node's table read, then the partial sync from it; nodes in parallel)")
    new = timed(lambda: each(list(zip(names, pairs)), partial, workers))
    print(line("one endpoint removed, trusted", base, new, 0.05)
          + f"   (new: kube-proxy's partial sync from the last plan, nothing read: not what `up` does; "
          f"{len(deltas[names[0]].splitlines())} nft lines per node)")
    assert nft_realize.listing(nft.list_table(upway[0], "ip", "kube-proxy")) == nft_realize.after_sync(
        tables[0].listing(), tables2[0].listing()), "kernel differs from the plan"
    assert nft_realize.listing(nft.list_table(names_base[0], "ip", "kube-proxy")) == tables2[0].listing(), \
        "kernel differs from the plan"
    # The partial sync empties the endpoint's chain; the next sync deletes it in a transaction of its own
    # (kube-proxy's staleChains): its cost, apart, for the record.
    after = nft_realize.after_sync(tables[0].listing(), tables2[0].listing())
    assert nft_realize.listing(nft.list_table(names[0], "ip", "kube-proxy")) == after, "kernel differs from plan"
    gone = [line.split(" ", 1)[1] for line in sorted(set(after) - set(tables2[0].listing()))]
    later = timed(lambda: each([(ns, nft_sync.delete_chains_payload("ip", "kube-proxy", gone)) for ns in names],
                               run, workers))
    print(f"  ... its emptied chain deleted by the next sync          {later * 1000:7.1f} ms   "
          f"({len(gone)} chain per node, a transaction of its own, as kube-proxy does a sync later)")
    assert nft_realize.listing(nft.list_table(names[0], "ip", "kube-proxy")) == tables2[0].listing(), \
        "kernel differs from the plan"
    nft_by_size(args, scratch)


def nft_by_size(args, scratch: list[str]) -> None:
    """One node's full sync into an empty namespace for a quarter, half and all of the Services: the time
    per Service grows with the table. (perf, Linux 6.18, 1,000 Services: ~58% of the samples are the
    kernel's, ~24% of all go to walks of the table's sets and of the transaction made for each anonymous
    ``numgen ... vmap { ... }`` map, one a Service as kube-proxy writes them; the commit itself ~3%.)"""
    figures = []
    for ns, count in zip(scratch, (args.services // 4, args.services // 2, args.services)):
        lab = resolve(topology(count, args.endpoints, args.nodes, "nftables"))
        payload = nftables.replace_payload(nftables.kube_proxy_table(lab, lab.nodes[0], services.service_ports(lab)))
        figures.append((count, timed(lambda: nft.run(ns, payload))))
    (n0, t0), (n1, t1) = figures[0], figures[-1]
    sizes = ", ".join(f"{n} Services {t * 1000:.0f} ms" for n, t in figures)
    print(f"  one node's full sync by size            {sizes}   (time per Service x{(t1 / n1) / (t0 / n0):.1f} "
          f"from {n0} to {n1})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--backend", choices=["nft", "legacy"], default=None, help="iptables: default the system's")
    ap.add_argument("--workers", type=int, default=0, help="nodes at once (default: as netlab does, all of them up to 8)")
    ap.add_argument("--mode", choices=["iptables", "nftables", "both"], default="both")
    ap.add_argument("--prefix", default="nlsvc", help="scratch namespaces' names start with this (default nlsvc)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (it builds scratch network namespaces)", file=sys.stderr)
        return 3
    workers = args.workers or transaction_workers(args.nodes)
    print(f"{os.cpu_count()} cores, nodes in parallel: {workers}")
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    try:
        for mode in ("iptables", "nftables"):
            if args.mode not in (mode, "both"):
                continue
            short = "ipt" if mode == "iptables" else "nft"
            pre = f"{args.prefix}-{tag}-{short}"
            names = [f"{pre}-n{i + 1}" for i in range(args.nodes)]
            names_base = [f"{pre}-b{i + 1}" for i in range(args.nodes)]
            plain = [f"{pre}-z{i + 1}" for i in range(args.nodes)] if mode == "iptables" else []
            scratch = [f"{pre}-s{i + 1}" for i in range(3)] if mode == "nftables" else []
            upway = [f"{pre}-u{i + 1}" for i in range(args.nodes)] if mode == "nftables" else []
            for name in names + names_base + plain + scratch + upway:
                with bench_stop.deferred():  # made and recorded, or neither: a stop between left it behind
                    create_netns(name, make_tag(f"{args.prefix}-{tag}", tag))
                    made.append(name)
            if mode == "iptables":
                bench_iptables(args, args.backend, names, names_base, plain, workers)
            else:
                bench_nftables(args, names, names_base, workers, scratch, upway)
    finally:
        with bench_stop.deferred():  # a second stop does not cut the clean-up short
            for name in made:
                remove_netns(name)
    return 0


if __name__ == "__main__":
    sys.exit(bench_stop.main(main))
