#!/usr/bin/env python3
"""Benchmark: render and apply kube-proxy-style rules for many Services.

    sudo .venv/bin/python scripts/bench_services.py [--services 1000] [--endpoints 3] [--nodes 3]
                                                     [--backend nft|legacy]

Makes its own scratch namespaces (``nlsvc-<random>-nN``, removed at the end,
also on failure), never touches the host's namespace. Prints the rule count
and the time per node for a full apply (one ``iptables-restore`` per node and
table), then the time to re-render and re-apply after one endpoint changes.
Target (issue 4): full render + apply under 1 s in total, re-render after one
endpoint change under 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netlab.model.lab import resolve  # noqa: E402
from netlab.model.topology import Topology  # noqa: E402
from netlab.plan import services  # noqa: E402
from netlab.plan.resources import NatRules  # noqa: E402
from netlab.realize import netfilter  # noqa: E402
from netlab.kernel.netns import create_netns, remove_netns  # noqa: E402


def topology(n_svc: int, n_ep: int, n_nodes: int, drop: int | None = None) -> Topology:
    """n_svc Services, each selecting n_ep pods of its own spread over the nodes.

    ``drop``: index of one pod that loses its label (one endpoint change).
    """
    nodes = [{"name": f"node-{i}", "podCIDR": f"10.{100 + i}.0.0/20"} for i in range(n_nodes)]
    pods, svcs = [], []
    k = 0
    for s in range(n_svc):
        for e in range(n_ep):
            labels = {} if k == drop else {"svc": f"s{s}"}
            pods.append({"name": f"p{k}", "node": f"node-{k % n_nodes}", "labels": labels})
            k += 1
        svcs.append({"name": f"svc-{s}", "selector": {"svc": f"s{s}"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]})
    return Topology.model_validate({
        "name": "bench", "cluster": {"podCIDR": "10.96.0.0/11", "serviceCIDR": "10.0.0.0/14", "nodeMask": 20},
        "nodes": nodes, "pods": pods, "services": svcs,
    })


def rules_for(lab, netns_names: list[str]) -> list[NatRules]:
    out = []
    res = [r for r in services.resources(lab) if r.kind == "nat"]
    by_node: dict[str, list[NatRules]] = {}
    for r in res:
        by_node.setdefault(r.netns, []).append(r)
    for node, scratch in zip([n.netns for n in lab.nodes], netns_names):
        for r in by_node[node]:
            out.append(NatRules(netns=scratch, table=r.table, chains=r.chains, payload=r.payload, rules=r.rules))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--backend", choices=["nft", "legacy"], default=None, help="default: the system's iptables")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (it builds scratch network namespaces)", file=sys.stderr)
        return 3

    backend = args.backend
    label = backend or os.path.basename(os.path.realpath(netfilter.tools()[1]))
    t0 = time.perf_counter()
    lab = resolve(topology(args.services, args.endpoints, args.nodes))
    lab_changed = resolve(topology(args.services, args.endpoints, args.nodes, drop=args.endpoints * args.services // 2))
    t_model = time.perf_counter() - t0

    tag = uuid.uuid4().hex[:6]
    names = [f"nlsvc-{tag}-n{i + 1}" for i in range(args.nodes)]
    made: list[str] = []
    try:
        for name in names:
            create_netns(name, f"nlsvc-bench:{name}")
            made.append(name)

        # Full render + apply.
        t0 = time.perf_counter()
        res = rules_for(lab, names)
        t_render = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_node: dict[str, float] = {}

        def timed(group):
            start = time.perf_counter()
            out = [netfilter.apply_rules(r, None, backend) for r in group]
            per_node[group[0].netns] = time.perf_counter() - start
            return out

        from concurrent.futures import ThreadPoolExecutor

        groups = [[r for r in res if r.netns == n] for n in names]
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            list(pool.map(timed, groups))
        t_apply = time.perf_counter() - t0
        nat = [r for r in res if r.table == "nat"][0]
        n_rules = sum(len(r.rules) for r in res if r.netns == names[0])
        n_chains = sum(len(r.chains) for r in res if r.netns == names[0])
        print(f"backend {label}; {args.services} Services x {args.endpoints} endpoints on {args.nodes} nodes "
              f"(model resolution {t_model:.2f} s, not counted)")
        print(f"per node: {n_rules} rules in {n_chains} chains (nat {len(nat.rules)} rules), "
              f"payload {len(nat.payload) / 1e6:.2f} MB")
        print(f"render (all nodes)       {t_render * 1000:8.1f} ms")
        for n in names:
            print(f"apply {n:<18} {per_node[n] * 1000:8.1f} ms  (iptables-save + one iptables-restore per table)")
        total = t_render + t_apply
        print(f"apply, nodes in parallel {t_apply * 1000:8.1f} ms")
        print(f"TOTAL render + apply     {total * 1000:8.1f} ms   target < 1000 ms: {'ok' if total < 1 else 'MISSED'}")

        # Verify one node against the plan.
        seen = netfilter.observe_rules(names[0], "nat", nat.chains, backend)
        assert seen == nat.rules, "kernel differs from the plan"

        # One endpoint changes: re-render, apply only the difference.
        t0 = time.perf_counter()
        res2 = rules_for(lab_changed, names)
        t_render2 = time.perf_counter() - t0
        prev = {(r.netns, r.table): r for r in res}
        items = [(r, prev[(r.netns, r.table)]) for r in res2]
        t0 = time.perf_counter()
        changes = netfilter.apply_many(items, backend, verify=False)
        t_apply2 = time.perf_counter() - t0
        written = sum(len(c.written) for c in changes)
        deleted = sum(len(c.deleted) for c in changes)
        total2 = t_render2 + t_apply2
        print(f"one endpoint removed: render {t_render2 * 1000:.1f} ms, apply {t_apply2 * 1000:.1f} ms "
              f"({written} chains rewritten, {deleted} deleted over {args.nodes} nodes; partial sync, "
              "trusting the last apply like kube-proxy)")
        verdict = "ok" if total2 < 0.2 else "MISSED"
        print(f"TOTAL re-render + apply  {total2 * 1000:8.1f} ms   target < 200 ms: {verdict}")
        nat2 = [r for r in res2 if r.table == "nat"][0]
        assert netfilter.observe_rules(names[0], "nat", nat2.chains, backend) == nat2.rules

        # The same change applied with full verification (what `netlab up` does: repairs drift too).
        t0 = time.perf_counter()
        changes = netfilter.apply_many([(r, prev[(r.netns, r.table)]) for r in res], backend, verify=True)
        t_verify = time.perf_counter() - t0
        print(f"change back with full verification (iptables-save of each node first): {t_verify * 1000:.1f} ms")
    finally:
        for name in made:
            remove_netns(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
