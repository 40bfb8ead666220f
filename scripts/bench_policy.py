#!/usr/bin/env python3
"""Benchmark the NetworkPolicy truth table on the upstream e2e 3×3 model (issue 14).

Brings up the model (namespaces x, y, z × pods a, b, c on two nodes; TCP and
UDP 80 and 81), then, for each policy set, probes the full table (9 × 9 × 4 =
324 flows) with real packets, and prints the time beside a baseline measured in
the same run: the same 324 flows with no policy at all (everything answers, no
REJECT), so the figure shows what policies cost the prober. Also the time of
``up`` converging one policy edit. Target: a full table in under 2 s.

Usage (root): sudo NETLAB_STATE_DIR=/run/netlab-bench .venv/bin/python scripts/bench_policy.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from netlab import Lab  # noqa: E402
from netlab.probe import policytable  # noqa: E402
from netpol_cases import CASES, model  # noqa: E402

SETS = ("default-deny-ingress", "default-deny-both", "pods-or-namespace-OR", "ipBlock-except-egress",
        "named-port-udp", "multiple-policies-union")


def timed_table(name: str, policies: list[dict]) -> tuple[float, float, int]:
    t0 = time.monotonic()
    lab = Lab.up(model(name, policies))
    up = time.monotonic() - t0
    table = policytable.probe(lab.model, timeout=0.5)
    assert not table.mismatches, table.render()
    return up, table.seconds, len(table.flows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    name = "npb" + uuid.uuid4().hex[:5]
    by_name = {c["name"]: c for c in CASES}
    print(f"lab {name}: 3x3 model on 2 nodes, {args.rounds} rounds per set (median)")
    Lab.up(model(name))
    try:
        base = [timed_table(name, [])[1] for _ in range(args.rounds)]
        print(f"{'no policy (baseline)':32} {statistics.median(base):6.2f} s  324 flows")
        for case in SETS:
            ups, probes = [], []
            for _ in range(args.rounds):
                timed_table(name, [])  # from no policy each time: up converges a real change
                up, seconds, flows = timed_table(name, by_name[case]["policies"])
                ups.append(up)
                probes.append(seconds)
            med = statistics.median(probes)
            print(f"{case:32} {med:6.2f} s  {flows} flows  ({med / statistics.median(base):.2f}x baseline, "
                  f"{'under' if med < 2.0 else 'OVER'} the 2 s target); up converging it {statistics.median(ups):.2f} s")
    finally:
        Lab.attach(name).down()


if __name__ == "__main__":
    main()
