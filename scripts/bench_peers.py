#!/usr/bin/env python3
"""Benchmark netlab beside its peers: N hosts on one bridge, built by Mininet and by netlab.

    sudo .venv/bin/python scripts/bench_peers.py [--hosts 50] [--rounds 2] [--prefix bq]

In one run, for the same shape (N hosts, one Linux bridge, all-pairs ICMP):

- Mininet 2.3 (the Debian ``mininet`` package, scripts/setup.sh installs it),
  through its Python API: ``Mininet(topo=SingleSwitchTopo(N),
  switch=LinuxBridge, controller=None, autoStaticArp=True)``; up = build +
  start, then ``pingAll`` and ``stop``. It runs in a child process in a
  private, nameless network namespace (``unshare --net``): Mininet makes its
  bridge and moves its veths in what it takes for the host's namespace, so
  the machine's own namespace never sees them, and ``stop()`` deletes them
  exactly (the private namespace dies with the child anyway). Mininet's
  ``fixLimits`` is skipped: it raises machine-wide sysctls (the shared
  neighbour table's gc_thresh among them) that are not ours to change.
  ``autoStaticArp`` keeps its 2,450 ARP entries out of the shared table's
  garbage-collection count (PERMANENT entries), as netlab's labs keep
  theirs with static entries.
- netlab as a user runs it: ``netlab up -t FILE``, ``netlab probe --proto
  icmp``, ``netlab down``, each a new process (Python start-up included);
  and ``netlab probe --arp seeded``, where the pods use each other's MACs as
  Mininet's hosts do with ``autoStaticArp`` (the like-for-like all-pairs
  figure; the default resolves each pair by ARP first).
- fping from each namespace, in waves bounded by the neighbour-table budget
  (scripts/bench_probe.py's baseline), beside ``netlab probe``.

Prints the times and the ratios (Mininet / netlab: above 1 means netlab is
faster) and the neighbour-table overflows (``table_fulls``) each side caused.
Asserts nothing; cleans up exactly what it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import bench_probe  # noqa: E402
import bench_stop  # noqa: E402
import bytecode  # noqa: E402
from netlab.probe import neighbours as nb  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"  # Mininet's Python package is a Debian one, beside this interpreter

# Runs in the child, under the system Python, in a private network namespace. Prints one JSON line.
MININET_CHILD = r"""
import json, sys, time
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import SingleSwitchTopo

setLogLevel("error")
Mininet.inited = True  # skips fixLimits: it would raise machine-wide sysctls
n = int(sys.argv[1])
out = {}
t = time.perf_counter()
net = Mininet(topo=SingleSwitchTopo(n), switch=LinuxBridge, controller=None, autoStaticArp=True, build=False)
try:
    net.build()
    net.start()
    out["up"] = time.perf_counter() - t
    t = time.perf_counter()
    out["loss"] = net.pingAll(timeout="1")
    out["ping"] = time.perf_counter() - t
finally:
    t = time.perf_counter()
    net.stop()
    out["down"] = time.perf_counter() - t
print(json.dumps(out))
"""


def mininet_round(hosts: int) -> dict:
    """One Mininet up / pingAll / stop, in a child in a private network namespace."""
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import mininet.net"], capture_output=True).returncode != 0:
        return {"error": "Mininet is not installed (apt-get install --no-install-recommends mininet bridge-utils)"}
    if not shutil.which("brctl"):
        return {"error": "brctl is missing (apt-get install bridge-utils): Mininet's LinuxBridge needs it"}
    s0 = nb.table_stats()
    proc = subprocess.run(["unshare", "--net", "--", SYSTEM_PYTHON, "-c", MININET_CHILD, str(hosts)],
                          capture_output=True, text=True, timeout=600)
    s1 = nb.table_stats()
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": f"Mininet failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["table_fulls"] = (s1.table_fulls - s0.table_fulls) if s0 and s1 else None
    return out


def netlab_round(hosts: int, prefix: str, tmp: str) -> dict:
    """netlab up / probe / down as a user runs them, and the fping waves on the same lab."""
    s0 = nb.table_stats()
    t = time.perf_counter()
    lab = bench_probe.Lab(hosts, tmp, prefix)
    out = {"up": time.perf_counter() - t}
    try:
        probe = bench_probe.cli_probe(lab.name)
        out["ping"], out["probe_exit"] = probe["s"], probe["exit"]
        # Like for like with Mininet's autoStaticArp: the pods use each other's MACs, no ARP.
        static = bench_probe.cli_probe(lab.name, "icmp", "--arp", "seeded")
        out["ping_static"], out["probe_static_exit"] = static["s"], static["exit"]
        fp = bench_probe.baseline(lab.name, bench_probe.fping_baseline, lab.pods, lab.lab.underlay_netns)
        out["fping"] = fp.get("s")
        out["fping_replies"] = fp.get("replies")
        out["fping_error"] = fp.get("error")
    finally:
        t = time.perf_counter()
        lab.down()
        out["down"] = time.perf_counter() - t
    s1 = nb.table_stats()
    out["table_fulls"] = (s1.table_fulls - s0.table_fulls) if s0 and s1 else None
    return out


def percent(value: float | None) -> str:
    """Mininet's pingAll loss (a float: 1.1111111111111112 for 1 in 90) as a reader takes it: 1.1%."""
    return "?" if value is None else f"{value:.1f}%"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:5.1f}x" if a and b else "   - "


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50, help="hosts (pods) on one bridge (default 50)")
    ap.add_argument("--rounds", type=int, default=2, help="repetitions; the best time counts (default 2)")
    ap.add_argument("--prefix", default="bq", help="netlab lab names start with this (default bq)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_peers: needs root (it builds labs)", file=sys.stderr)
        return 3
    bytecode.compile_netlab()  # as setup.sh leaves it
    tmp = tempfile.mkdtemp(prefix="netlab-peers-")
    try:
        mn = [mininet_round(args.hosts) for _ in range(args.rounds)]
        nl = [netlab_round(args.hosts, args.prefix, tmp) for _ in range(args.rounds)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.hosts
    print(f"{n} hosts on one Linux bridge, all-pairs ICMP ({n * (n - 1)} pings); best of {args.rounds}")
    ok = [r for r in mn if "error" not in r]
    if not ok:
        print(f"  Mininet: {mn[0]['error']}")

    def best(runs: list[dict], key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return min(vals) if vals else None

    print(f"  {'':34s} {'up':>8s} {'all pairs':>10s} {'down':>8s}")
    if ok:
        print(f"  Mininet 2.3 (LinuxBridge, static ARP) {best(ok, 'up'):7.2f}s {best(ok, 'ping'):9.2f}s "
              f"{best(ok, 'down'):7.2f}s   loss {percent(ok[0].get('loss'))}, table_fulls "
              f"{sum(r.get('table_fulls') or 0 for r in ok)}")
    print(f"  netlab CLI (up / probe / down)       {best(nl, 'up'):7.2f}s {best(nl, 'ping'):9.2f}s "
          f"{best(nl, 'down'):7.2f}s   probe exit {nl[0]['probe_exit']}, table_fulls "
          f"{sum(r.get('table_fulls') or 0 for r in nl)}; the pods resolve each other by ARP (--arp auto)")
    print(f"  netlab probe --arp seeded            {'':8s} {best(nl, 'ping_static'):9.2f}s "
          f"{'':8s}   probe exit {nl[0]['probe_static_exit']}; static ARP, as Mininet's autoStaticArp")
    if ok:
        print(f"  Mininet / netlab                     {ratio(best(ok, 'up'), best(nl, 'up')):>8s} "
              f"{ratio(best(ok, 'ping'), best(nl, 'ping')):>10s} {ratio(best(ok, 'down'), best(nl, 'down')):>8s}"
              "   (target >= 3x / 10x / 3x)")
        print(f"  Mininet / netlab, both static ARP    {'':8s} {ratio(best(ok, 'ping'), best(nl, 'ping_static')):>10s}")
    fp = best(nl, "fping")
    if fp is None:
        print(f"  fping waves: {nl[0].get('fping_error')}")
    else:
        print(f"  fping from each namespace, in waves  {'':8s} {fp:9.2f}s   ({nl[0]['fping_replies']} replies); "
              f"fping / netlab probe CLI {ratio(fp, best(nl, 'ping'))} (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(bench_stop.main(main))  # SIGTERM (a CI job's timeout) cleans up as Ctrl-C does
