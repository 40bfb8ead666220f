#!/usr/bin/env python3
"""Benchmark: `up`, `status` and `down` of one node with N pods, beside an `ip -batch` baseline.

    sudo .venv/bin/python scripts/bench_up.py [--pods 100 500 1000] [--prefix bn]
    sudo .venv/bin/python scripts/bench_up.py --pods 500 --cli-up 5   # only the baseline and the CLI's up, 5 rounds

For each lab size, in one run (the machine may be loaded: compare ratios, not seconds):

- the baseline builds the same shape with iproute2 batches: one `ip -batch`
  for the namespaces, one `ip -n NODE -batch` for the bridge and the veths
  (each born with its peer in the pod's namespace), one `ip -n POD -batch` per
  pod for its address, links and default route (iproute2 takes `-n` only once
  per process), then one `ip -batch` of `netns del`;
- netlab as a user runs it: `netlab up -t FILE`, `netlab status`, `netlab
  up -t FILE` again (nothing to change: it reads the whole lab), `netlab
  down`, each a new process, so the figures include Python start-up, loading
  and validation, the pods' UTS namespaces and echo containers, and the
  nodes' iptables rules, none of which the baseline does;
- the same three as library calls (`netlab.api.lifecycle`) in this process;
- "network only": `api.up(..., features=[])`, no containers: the work the
  baseline does.

Before each `up`, a pause lets the kernel finish freeing the namespaces the
previous step deleted (it does so asynchronously, after `down` returned).

`down`'s unmount of the pods' UTS pins alone: the lab's tmpfs let go of at
once, beside the same pins unmounted one by one, in a private mount namespace.

Memory per pod: the proportional set size (PSS, /proc/PID/smaps_rollup) of
every process that has a thread in the lab's namespaces, divided by the pods
(the containers' own memory, beyond the kernel's objects), and the drop of
MemAvailable from before `up` to after it, divided by the pods (everything:
namespaces, devices, sockets, processes; noisy on a shared machine).

`--cli-up N`: only the baseline's up and the CLI's `up` (its lab taken down
after, untimed), N rounds, each with its ratio and the CPU time (user + system)
of each side's own processes (the `ip` commands; the `netlab up` process, not
the echo server it leaves running). On a machine shared with other work the
wall-clock ratio moves with the load; CPU time moves much less.

Prints figures; asserts nothing. Cleans up exactly the labs and namespaces it made
(`netlab down` of its own labs, `ip netns del` of its own baseline namespaces).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_stop  # noqa: E402 - scripts/bench_stop.py, beside this file
import bytecode  # noqa: E402 - scripts/bytecode.py, beside this file

NETLAB = [sys.executable, "-m", "netlab"]
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"


def topology(lab: str, pods: int) -> str:
    # The smallest node block that holds the pods (.0, .1 and broadcast are taken).
    mask = min(24, 32 - (pods + 3 - 1).bit_length())
    lines = [f"name: {lab}", f"cluster: {{nodeMask: {mask}}}", "network: {mode: host-gw}",
             "nodes:", "  - {name: n1}", "pods:"]
    lines += [f"  - {{name: p{i}, node: n1}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def children_cpu() -> float:
    """User + system seconds of this process's waited-for children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv[2:])} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


# --- memory -----------------------------------------------------------------------------


def mem_available_kb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def lab_processes(netns_names: list[str]) -> list[int]:
    """Every process with a thread in one of these network namespaces (by namespace identity, as down finds
    them)."""
    from netlab.kernel.processes import find_in_namespaces

    return list(find_in_namespaces(netns_names))


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def settle(pods: int) -> None:
    """Give the kernel time to finish destroying the namespaces the last step deleted.

    ``down`` and ``ip netns del`` return once the namespaces are unmounted;
    the kernel then frees them and their devices in a work queue, under the
    RTNL lock. Without a pause that work would be counted in the next
    measured ``up``, whichever tool comes next.
    """
    time.sleep(1.0 + pods / 250)


# --- the baseline -----------------------------------------------------------------------


def bench_ip_batch(prefix: str, pods: int, cpu: list[float] | None = None) -> tuple[float, float]:
    tag = f"{prefix}i{uuid.uuid4().hex[:5]}"
    node = f"{tag}-n1"
    names = [f"{tag}-p{i}" for i in range(pods)]
    plen = min(24, 32 - (pods + 3 - 1).bit_length())
    with tempfile.TemporaryDirectory() as tmp:
        ns_batch = os.path.join(tmp, "ns")
        with open(ns_batch, "w") as fh:
            fh.write(f"netns add {node}\n")
            fh.writelines(f"netns add {n}\n" for n in names)
        node_batch = os.path.join(tmp, "node")
        with open(node_batch, "w") as fh:
            fh.write("link set lo up\nlink add cni0 type bridge\nlink set cni0 up\n")
            fh.write(f"addr add 10.244.0.1/{plen} dev cni0\n")
            for i, n in enumerate(names):
                fh.write(f"link add veth{i} type veth peer name eth0 netns {n}\n")
                fh.write(f"link set veth{i} master cni0 up\n")
        pod_batches = []
        for i, n in enumerate(names):
            path = os.path.join(tmp, f"p{i}")
            host = 2 + i
            with open(path, "w") as fh:
                fh.write(f"link set lo up\nlink set eth0 up\n"
                         f"addr add 10.244.{host // 256}.{host % 256}/{plen} dev eth0\n")
                fh.write("route add default via 10.244.0.1 dev eth0\n")
            pod_batches.append((n, path))
        del_batch = os.path.join(tmp, "del")
        with open(del_batch, "w") as fh:
            fh.writelines(f"netns del {n}\n" for n in [node] + names)
        try:
            settle(pods)
            cpu0 = children_cpu()
            start = time.perf_counter()
            subprocess.run([IP, "-batch", ns_batch], check=True)
            subprocess.run([IP, "-n", node, "-batch", node_batch], check=True)
            for n, path in pod_batches:
                subprocess.run([IP, "-n", n, "-batch", path], check=True)
            t_up = time.perf_counter() - start
            if cpu is not None:
                cpu.append(children_cpu() - cpu0)
            start = time.perf_counter()
            subprocess.run([IP, "-batch", del_batch], check=True)
            return t_up, time.perf_counter() - start
        finally:
            listed = subprocess.run([IP, "netns", "list"], check=False, capture_output=True, text=True)
            existing = set(listed.stdout.split())
            for n in [node] + names:
                if n in existing:  # only what this run made and did not delete already
                    subprocess.run([IP, "netns", "del", n], check=False, capture_output=True)


# --- netlab --------------------------------------------------------------------------------


class Lab:
    def __init__(self, prefix: str, pods: int, tmp: str):
        self.name = f"{prefix}{uuid.uuid4().hex[:6]}"
        self.path = os.path.join(tmp, f"{self.name}.yaml")
        with open(self.path, "w") as fh:
            fh.write(topology(self.name, pods))

    def netns(self) -> list[str]:
        return [n for n in os.listdir("/run/netns") if n.startswith(self.name + "-")]

    def down(self) -> None:
        subprocess.run(NETLAB + ["down", "--lab", self.name], check=False, capture_output=True)


def bench_cli(prefix: str, pods: int, tmp: str) -> dict:
    """As a user runs it: each command a new process."""
    lab = Lab(prefix, pods, tmp)
    try:
        settle(pods)
        mem0 = mem_available_kb()
        out = {"up": timed(NETLAB + ["up", "-t", lab.path])}
        time.sleep(0.5)  # the kernel frees what up's own process held
        procs = lab_processes(lab.netns())
        out["procs"] = len(procs)
        out["pss_kb"] = sum(pss_kb(p) for p in procs)
        out["avail_kb"] = mem0 - mem_available_kb()
        out["status"] = timed(NETLAB + ["status", "--lab", lab.name])
        out["again"] = timed(NETLAB + ["up", "-t", lab.path])  # nothing to change: it reads the lab whole
        out["down"] = timed(NETLAB + ["down", "--lab", lab.name])
        return out
    finally:
        lab.down()


def bench_cli_up(prefix: str, pods: int, tmp: str, rounds: int) -> None:
    """The baseline's up and the CLI's `up`, ``rounds`` times: wall and CPU of each, and their ratios."""
    ratios, cpu_ratios = [], []
    for i in range(rounds):
        base_cpu: list[float] = []
        base_up, _ = bench_ip_batch(prefix, pods, base_cpu)
        lab = Lab(prefix, pods, tmp)
        try:
            settle(pods)
            cpu0 = children_cpu()
            up = timed(NETLAB + ["up", "-t", lab.path])
            cpu = children_cpu() - cpu0
        finally:
            lab.down()
        ratios.append(up / base_up)
        cpu_ratios.append(cpu / base_cpu[0])
        print(f"{pods} pods, round {i + 1}: ip -batch up {base_up:.2f} s (CPU {base_cpu[0]:.2f} s), "
              f"netlab up {up:.2f} s (CPU {cpu:.2f} s): {ratios[-1]:.2f}x wall, {cpu_ratios[-1]:.2f}x CPU", flush=True)
    print(f"{pods} pods, median of {rounds}: {statistics.median(ratios):.2f}x wall, "
          f"{statistics.median(cpu_ratios):.2f}x CPU", flush=True)


def bench_library(prefix: str, pods: int, tmp: str) -> dict:
    """The same through netlab.api in this process (no interpreter start-up, no loading of the CLI)."""
    from netlab.api import lifecycle as api
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology
    from netlab.realize.state import load_state

    out = {}
    lab = Lab(prefix, pods, tmp)
    try:
        settle(pods)
        start = time.perf_counter()
        api.up(resolve(load_topology(lab.path)), source=lab.path)
        out["up"] = time.perf_counter() - start
        start = time.perf_counter()
        result = api.status(load_state(lab.name))
        out["status"] = time.perf_counter() - start
        out["status_ok"] = result.ok
        start = time.perf_counter()
        api.down(lab.name)
        out["down"] = time.perf_counter() - start
    finally:
        lab.down()
    lab = Lab(prefix, pods, tmp)
    try:
        settle(pods)
        start = time.perf_counter()
        api.up(resolve(load_topology(lab.path)), source=lab.path, features=[])
        out["net_up"] = time.perf_counter() - start
        start = time.perf_counter()
        api.down(lab.name)
        out["net_down"] = time.perf_counter() - start
    finally:
        lab.down()
    return out


def pins_here(pods: int, outer_mnt: int) -> None:
    """In a private mount namespace (see bench_pins): make ``pods`` UTS pins the way `up` does, on the lab's
    tmpfs, and let go of them as `down` does (one lazy unmount); then the same pins in a plain folder, an
    older netlab's layout, unmounted one by one (eight at a time). Prints both times as JSON."""
    import json

    from netlab.realize import state_dir
    from netlab.workload import uts

    if os.stat("/proc/self/ns/mnt").st_ino == outer_mnt:
        sys.exit("--pins-here runs only in a mount namespace of its own (bench_pins starts it so)")
    names = [f"p{i}" for i in range(pods)]
    with tempfile.TemporaryDirectory() as root:
        state_dir.STATE_ROOT = root
        uts.ensure_uts("tree", {n: n for n in names})
        assert uts.is_pins_fs(uts.uts_dir("tree"))
        start = time.perf_counter()
        uts.remove_pins_fs("tree")
        tree = time.perf_counter() - start
        os.makedirs(uts.uts_dir("plain", make=True), 0o700)  # the lab folder made as up makes it (its mark)
        open(os.path.join(uts.uts_dir("plain"), uts.TEMPLATE), "w").close()  # not empty: no tmpfs
        uts.ensure_uts("plain", {n: n for n in names})
        assert not uts.is_pins_fs(uts.uts_dir("plain"))
        start = time.perf_counter()
        uts.remove_uts_many([uts.uts_path("plain", pod) for pod in names])
        each = time.perf_counter() - start
        print(json.dumps({"tree": tree, "each": each}))


def bench_pins(pods: int) -> str:
    """`down`'s unmount of the pods' UTS pins, in a mount namespace of its own (the host's mount table never
    sees them): the lab's tmpfs let go of at once, beside the pins unmounted one by one, in the same run."""
    import json

    here = str(os.stat("/proc/self/ns/mnt").st_ino)  # the child checks that it is not in this one
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                           "--pins-here", str(pods), here], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return f"not measured ({(proc.stderr.strip().splitlines() or ['?'])[-1]})"
    got = json.loads(proc.stdout)
    return (f"one unmount of their tmpfs {got['tree'] * 1000:.1f} ms, one by one (eight at a time, an older "
            f"lab's folder) {got['each'] * 1000:.1f} ms")


def memory_line(procs: int, pss_kb: int, avail_kb: int, pods: int) -> str:
    """The memory figures in words: MemAvailable higher after `up` than before it (other processes freed more than
    the lab took meanwhile) is noise, said as such, not a negative cost."""
    per_pod = avail_kb / pods
    avail = (f"MemAvailable {per_pod:.0f} kB lower per pod (incl. the kernel's objects)" if per_pod >= 0 else
             f"MemAvailable within noise ({per_pod:.0f} kB per pod: other processes freed memory meanwhile)")
    return f"memory: {procs} process{'' if procs == 1 else 'es'}, PSS {pss_kb / pods:.0f} kB per pod; {avail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--prefix", default="bn", help="lab names start with this (a DNS label; default bn)")
    parser.add_argument("--cli-up", type=int, metavar="ROUNDS",
                        help="only the baseline's up and the CLI's up, this many rounds (wall and CPU ratios)")
    parser.add_argument("--pins-here", type=int, nargs=2, help=argparse.SUPPRESS)  # bench_pins' child: pods, mnt
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_up.py needs root")
    if args.pins_here:
        pins_here(*args.pins_here)
        return
    bytecode.compile_netlab()  # as setup.sh leaves it
    with tempfile.TemporaryDirectory() as tmp:
        for pods in args.pods if args.cli_up else ():
            bench_cli_up(args.prefix, pods, tmp, args.cli_up)
        for pods in args.pods if not args.cli_up else ():
            base_up, base_down = bench_ip_batch(args.prefix, pods)
            cli = bench_cli(args.prefix, pods, tmp)
            lib = bench_library(args.prefix, pods, tmp)
            print(f"{pods} pods   ip -batch: up {base_up:.2f} s, netns del {base_down:.2f} s")
            print(f"  as a user runs it: up {cli['up']:.2f} s ({cli['up'] / base_up:.2f}x ip -batch), "
                  f"status {cli['status']:.2f} s, down {cli['down']:.2f} s; up again (nothing to change) "
                  f"{cli['again']:.2f} s")
            print(f"  library call:      up {lib['up']:.2f} s ({lib['up'] / base_up:.2f}x), "
                  f"status {lib['status']:.2f} s{'' if lib['status_ok'] else ' (drift!)'}, down {lib['down']:.2f} s; "
                  f"network only: up {lib['net_up']:.2f} s ({lib['net_up'] / base_up:.2f}x), "
                  f"down {lib['net_down']:.2f} s")
            print("  " + memory_line(cli["procs"], cli["pss_kb"], cli["avail_kb"], pods))
            print(f"  down's UTS pins: {bench_pins(pods)}", flush=True)


if __name__ == "__main__":
    sys.exit(bench_stop.main(main))  # SIGTERM (a CI job's timeout) cleans up as Ctrl-C does
