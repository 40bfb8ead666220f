#!/usr/bin/env python3
"""Benchmark: the per-pod cost of attaching pods through CNI (network.cni: reference) beside builtin.

    sudo .venv/bin/python scripts/bench_cni.py [--pods 8 32]

One node (host-gw), N pods, brought up and down with the CLI as a user does,
once with netlab's builtin wiring (the baseline, measured in the same run) and
once with Debian's CNI plugins (loopback, then bridge + host-local, as Flannel
delegates). It prints the up time of each, the difference per pod, and the
plugin calls' own durations from the lab's call log (`netlab cni log`): each
pod costs two ADDs (loopback, bridge; bridge execs host-local), run as many at
once as the machine has cores. Prints figures; asserts nothing. Cleans up
exactly the labs it made.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

NETLAB = [sys.executable, "-m", "netlab"]


def topology(lab: str, pods: int, cni: str) -> str:
    lines = [f"name: {lab}", "network: {mode: host-gw, cni: " + cni + "}", "nodes:", "  - {name: n1}", "pods:"]
    lines += [f"  - {{name: p{i}, node: n1}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def up_down(pods: int, cni: str) -> tuple[float, list[dict]]:
    lab = f"cnb{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(topology(lab, pods, cni))
    try:
        start = time.perf_counter()
        subprocess.run(NETLAB + ["up", "-t", fh.name], check=True, capture_output=True)
        t_up = time.perf_counter() - start
        calls = []
        if cni != "builtin":
            out = subprocess.run(NETLAB + ["cni", "log", "--lab", lab, "-o", "json"], check=True,
                                 capture_output=True, text=True).stdout
            calls = json.loads(out)["calls"]
        return t_up, calls
    finally:
        subprocess.run(NETLAB + ["down", "--lab", lab], capture_output=True)
        os.unlink(fh.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_cni.py needs root")
    print(f"{os.cpu_count()} cores; pods attached {os.cpu_count()} at a time in reference mode")
    for pods in args.pods:
        base, _ = up_down(pods, "builtin")
        ref, calls = up_down(pods, "reference")
        adds = {}
        for c in calls:
            if c["command"] == "ADD":
                adds.setdefault(c["plugin"], []).append(1000 * c["duration"])
        plugin_ms = ", ".join(f"{k} ADD {statistics.mean(v):.1f} ms (median {statistics.median(v):.1f})"
                              for k, v in sorted(adds.items()))
        print(f"{pods:4d} pods: builtin up {base:6.2f} s ({1000 * base / pods:6.1f} ms/pod) | reference up "
              f"{ref:6.2f} s ({1000 * ref / pods:6.1f} ms/pod) | CNI adds {1000 * (ref - base) / pods:6.1f} ms/pod "
              f"| per call: {plugin_ms}", flush=True)


if __name__ == "__main__":
    main()
