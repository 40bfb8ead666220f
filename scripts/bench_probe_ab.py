#!/usr/bin/env python3
"""A/B of the CLI's first ``netlab probe`` of a plain lab between two netlab trees, beside fping in the same run.

The machine these benchmarks run on is often shared, and its load changes from one minute to the next: a figure
taken now and one taken later compare the load as much as the code. So each round here times, in turn, the fping
waves of scripts/bench_probe.py and a first run (no kept job: netlab/probe/early.py) of
``netlab probe --lab L --proto icmp -o json`` from each tree, the trees' order alternating from round to round;
then the medians, the median of each round's fping / CLI ratio, the CPU each run took (the CLI with its agent and
workers, user + system: less sensitive to the load than the wall time) and the load average while it ran.

Both trees must trust the lab's state file (realize/state_sum.py: the stamp of the checking sources' sizes and
times), or one of them takes the slow path (no early agent): before each run, the tree about to run signs the
state as it is with its own stamp (state_sum.write_sum, as its own ``up`` would have), untimed; so trees whose
netlab/model differs compare too. A run that waited for another probe's turn (the machine's other users: its
report's turn_wait_s) is run again, and counted. Each tree's netlab should be byte-compiled (scripts/bytecode.py;
setup.sh does it): with
PYTHONDONTWRITEBYTECODE set, a module edited since is compiled again at every run. Only this script's own tree
is compiled here.

Usage (root): sudo .venv/bin/python scripts/bench_probe_ab.py OTHER_TREE [--pods 50] [--rounds 10] [--prefix bp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "scripts"))
sys.path.insert(0, HERE)

import bench_probe as bp  # noqa: E402 - scripts/bench_probe.py, beside this file
import bytecode  # noqa: E402

from netlab.probe.early import KEEP_FILE  # noqa: E402
from netlab.realize.state_dir import lab_dir  # noqa: E402


def sign(tree: str, lab: str) -> None:
    """The lab's state, as it is, signed with ``tree``'s stamp: that tree trusts it (its early agent starts)."""
    code = ("import sys\nfrom netlab.realize.state_dir import read_state_file\n"
            "from netlab.realize.state_sum import trusted, write_sum\n"
            "raw = read_state_file(sys.argv[1])\nwrite_sum(sys.argv[1], raw)\nassert trusted(sys.argv[1], raw)")
    subprocess.run([sys.executable, "-c", code, lab], cwd=tree, check=True)


def first_run(tree: str, lab: str) -> tuple[float, float, float]:
    """Wall and CPU seconds (user + system, with the agent and its workers) of a first run from ``tree``, and the
    seconds it waited for the machine's probing turn (another probe on the machine: its report's turn_wait_s)."""
    try:
        os.unlink(os.path.join(lab_dir(lab, create=False), KEEP_FILE))
    except FileNotFoundError:
        pass
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "netlab", "probe", "--lab", lab, "--proto", "icmp", "-o",
                                 "json"], cwd=tree, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"netlab probe from {tree} failed:\n{err}")
        out.seek(0)
        waited = json.load(out)["neighbour_table"].get("turn_wait_s", 0.0)
    return wall, usage.ru_utime + usage.ru_stime, waited


def timed_run(tree: str, lab: str, tries: int = 5) -> tuple[float, float, int]:
    """:func:`first_run`, again while it waited for another probe's turn (a wait is no figure of the tree's), up
    to ``tries`` times; the last run's wall and CPU, and how many runs waited."""
    waits = 0
    for _ in range(tries):
        sign(tree, lab)
        wall, cpu, waited = first_run(tree, lab)
        if not waited:
            break
        waits += 1
    return wall, cpu, waits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="the other netlab tree (a checkout or worktree), e.g. /work/main")
    ap.add_argument("--pods", type=int, default=50, help="pods on one bridge (default 50)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    ap.add_argument("--prefix", default="bp", help="lab names start with this (a DNS label; default bp)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_probe_ab: needs root (it builds a lab)", file=sys.stderr)
        return 3
    trees = [os.path.abspath(args.other), HERE]
    bytecode.compile_netlab()
    tmp = tempfile.mkdtemp(prefix="netlab-bench-")
    lab = bp.Lab(args.pods, tmp, args.prefix)
    fping: list[float] = []
    wall: dict[str, list[float]] = {t: [] for t in trees}
    cpu: dict[str, list[float]] = {t: [] for t in trees}
    ratio: dict[str, list[float]] = {t: [] for t in trees}
    waited = {t: 0 for t in trees}  # runs done again: they waited for another probe's turn
    loads = []
    try:
        for r in range(args.rounds):
            f = bp.baseline(lab.name, bp.fping_baseline, lab.pods, lab.lab.underlay_netns)
            if "s" not in f:
                raise SystemExit(f"fping: {f.get('error')}")
            fping.append(f["s"])
            for tree in trees if r % 2 == 0 else trees[::-1]:
                w, c, n = timed_run(tree, lab.name)
                waited[tree] += n
                wall[tree].append(w)
                cpu[tree].append(c)
                ratio[tree].append(f["s"] / w)
            loads.append(os.getloadavg()[0])
    finally:
        lab.down()
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    n = args.pods
    print(f"{n} pods on one bridge, {n * (n - 1)} ICMP probes pod to pod; {args.rounds} rounds, each: fping waves, "
          "then a first `netlab probe --proto icmp -o json` from each tree (alternating order)")
    print(f"  fping waves                 median {med(fping):.3f} s (min {min(fping):.3f})")
    for tree in trees:
        print(f"  {tree:26s}  median {med(wall[tree]):.3f} s (min {min(wall[tree]):.3f}); fping / CLI median "
              f"{med(ratio[tree]):.2f}x (best {max(ratio[tree]):.2f}x, target >= 3x); CPU median "
              f"{med(cpu[tree]):.3f} s; {waited[tree]} runs waited for another probe's turn, run again")
    print(f"  load average (1 min) as it ran: median {med(loads):.2f}, {min(loads):.2f}-{max(loads):.2f} "
          f"({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
