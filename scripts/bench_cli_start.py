#!/usr/bin/env python3
"""Benchmark what one CLI command costs the machine: CPU time of a whole ``netlab`` process, start to exit.

Every command is a new Python process, and most of a quick one's CPU goes to loading netlab (modules,
dataclasses, pydantic's schemas). Side by side, in one run: ``python -c pass`` (the interpreter alone, the
baseline), ``netlab --help``, and on a small lab this script brings up (two nodes, one pod each; a unique name,
its own state folder in a temporary folder, taken down at the end) ``status``, ``up -t FILE`` with nothing to
change, ``list``, ``down`` of a lab that is not up, ``probe`` and ``trace``. The figure is CPU (user + system,
the process and the children it waited for, from the kernel's rusage), not wall time: other work on the machine
moves it little. Each round runs every command once, in turn, so a drift of the machine's speed is shared; the
table gives the median and the lowest of ``--runs`` rounds. It asserts nothing.

The netlab measured is the one ``python -m netlab`` imports: set PYTHONPATH to compare two trees, e.g.
``PYTHONPATH=/path/to/other/checkout``. Its modules are byte-compiled first, and the code it generates as it
loads (netlab/fncache.py), as setup.sh leaves them.

Usage (root): sudo .venv/bin/python scripts/bench_cli_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

NETLAB = [sys.executable, "-m", "netlab"]
TOPOLOGY = """name: {name}
nodes:
  - {{name: n1}}
  - {{name: n2}}
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n2}}
"""


def cpu_of(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """CPU seconds (user + system) of one run of ``argv`` and of the children it waited for; its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), code


def netlab_dir(env: dict[str, str]) -> str:
    """The folder of the netlab package ``python -m netlab`` loads with this environment."""
    return subprocess.run([sys.executable, "-c", "import netlab, os; print(os.path.dirname(netlab.__file__))"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="rounds; each runs every command once")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_cli_start: needs root (it brings a lab up)", file=sys.stderr)
        return 3
    work = tempfile.mkdtemp(prefix="bench-cli-")
    name = "bc" + uuid.uuid4().hex[:6]
    env = dict(os.environ, NETLAB_STATE_DIR=os.path.join(work, "state"))
    env.pop("NETLAB_LAB", None)
    topo = os.path.join(work, "lab.yaml")
    with open(topo, "w") as f:
        f.write(TOPOLOGY.format(name=name))
    where = netlab_dir(env)
    compileall.compile_dir(where, quiet=1)  # as setup.sh leaves it: no command compiles a module
    # ... nor a dataclass's methods, nor an annotation (netlab/fncache.py; a tree without it: nothing to fill)
    subprocess.run([sys.executable, "-m", "netlab.fncache"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": [*NETLAB, "--help"],
        "status": [*NETLAB, "status", "--lab", name],
        "up (no change)": [*NETLAB, "up", "-t", topo],
        "list": [*NETLAB, "list"],
        "down (no such lab)": [*NETLAB, "down", "--lab", name + "x"],
        "probe": [*NETLAB, "probe", "--lab", name],
        "trace": [*NETLAB, "trace", "--lab", name, "a", "b"],
    }
    try:
        subprocess.run([*NETLAB, "up", "-t", topo], env=env, check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {label: [] for label in commands}
        codes: dict[str, set[int]] = {label: set() for label in commands}
        for _ in range(args.runs):
            for label, argv in commands.items():
                cpu, code = cpu_of(argv, env)
                times[label].append(cpu)
                codes[label].add(code)
    finally:
        subprocess.run([*NETLAB, "down", "--lab", name], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times["python -c pass"])
    print(f"netlab from {where}; {args.runs} runs each, CPU (user + system) in ms")
    print(f"{'command':<20} {'median':>8} {'lowest':>8} {'- pass':>8}  exit")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label:<20} {median * 1000:8.1f} {min(values) * 1000:8.1f} {(median - base) * 1000:8.1f}  "
              f"{','.join(map(str, sorted(codes[label])))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
