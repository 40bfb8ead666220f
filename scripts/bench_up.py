#!/usr/bin/env python3
"""Benchmark: `netlab up`/`down` of one node with N pods, beside an `ip -batch` baseline.

    sudo .venv/bin/python scripts/bench_up.py [--pods 100 500] [--repeat 1]

The baseline builds the same shape with iproute2 batches: one `ip -batch`
for the namespaces, one `ip -n NODE -batch` for the bridge and the veths
(each born with its peer in the pod's namespace), and one `ip -n POD -batch`
per pod for its address, links and default route (iproute2 takes `-n` only
once per process). netlab is run as a user runs it (`netlab up -t FILE`),
so its figure includes Python start-up, loading and validation, the pods' UTS
namespaces and echo-server containers, and the nodes' iptables rules, none of
which the baseline does; "network only" is the library call with containers
off, the same work as the baseline.

Targets (issue 2): netlab up <= the ip -batch time (aim 0.8x), per-pod cost at
500 pods <= 1.3x the cost at 100, down of the 500-pod lab within 0.5 s.
Prints figures; asserts nothing. Cleans up exactly the namespaces it made.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NETLAB = [sys.executable, "-m", "netlab"]


def topology(lab: str, pods: int) -> str:
    # The smallest node block that holds the pods (.0, .1 and broadcast are taken).
    mask = min(24, 32 - (pods + 3 - 1).bit_length())
    lines = [f"name: {lab}", f"cluster: {{nodeMask: {mask}}}", "network: {mode: host-gw}",
             "nodes:", "  - {name: n1}", "pods:"]
    lines += [f"  - {{name: p{i}, node: n1}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def run(argv: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, **kw)
    return time.perf_counter() - start


def bench_netlab(pods: int) -> tuple[float, float]:
    lab = f"bn{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(topology(lab, pods))
    try:
        t_up = run(NETLAB + ["up", "-t", fh.name])
        t_down = run(NETLAB + ["down", "--lab", lab])
        # The library call alone (no interpreter start-up), for down's 0.5 s target.
        return t_up, t_down
    finally:
        subprocess.run(NETLAB + ["down", "--lab", lab], capture_output=True)
        os.unlink(fh.name)


def bench_down_inprocess(pods: int) -> float:
    """down through the library in this process (excludes Python start-up)."""
    from netlab.model.load import load_topology
    from netlab.model.lab import resolve
    from netlab.api import lifecycle as apply

    lab = f"bd{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(topology(lab, pods))
    try:
        apply.up(resolve(load_topology(fh.name)), source=fh.name)
        start = time.perf_counter()
        apply.down(lab)
        return time.perf_counter() - start
    finally:
        apply.down(lab)
        os.unlink(fh.name)


def bench_network_only(pods: int) -> float:
    """up through the library with containers off: the part ip -batch also does."""
    from netlab.model.load import load_topology
    from netlab.model.lab import resolve
    from netlab.api import lifecycle as apply

    lab = f"bw{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(topology(lab, pods))
    try:
        start = time.perf_counter()
        apply.up(resolve(load_topology(fh.name)), source=fh.name, features=[])
        return time.perf_counter() - start
    finally:
        apply.down(lab)
        os.unlink(fh.name)


def bench_ip_batch(pods: int) -> tuple[float, float]:
    tag = f"bi{uuid.uuid4().hex[:6]}"
    node = f"{tag}-n1"
    names = [f"{tag}-p{i}" for i in range(pods)]
    ip = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
    with tempfile.TemporaryDirectory() as tmp:
        ns_batch = os.path.join(tmp, "ns")
        with open(ns_batch, "w") as fh:
            fh.write(f"netns add {node}\n")
            fh.writelines(f"netns add {n}\n" for n in names)
        node_batch = os.path.join(tmp, "node")
        with open(node_batch, "w") as fh:
            fh.write("link set lo up\nlink add cni0 type bridge\nlink set cni0 up\n")
            fh.write("addr add 10.244.0.1/22 dev cni0\n")
            for i, n in enumerate(names):
                fh.write(f"link add veth{i} type veth peer name eth0 netns {n}\n")
                fh.write(f"link set veth{i} master cni0 up\n")
        pod_batches = []
        for i, n in enumerate(names):
            path = os.path.join(tmp, f"p{i}")
            host = 2 + i
            with open(path, "w") as fh:
                fh.write(f"link set lo up\nlink set eth0 up\naddr add 10.244.{host // 256}.{host % 256}/22 dev eth0\n")
                fh.write("route add default via 10.244.0.1 dev eth0\n")
            pod_batches.append((n, path))
        try:
            start = time.perf_counter()
            subprocess.run([ip, "-batch", ns_batch], check=True)
            subprocess.run([ip, "-n", node, "-batch", node_batch], check=True)
            for n, path in pod_batches:
                subprocess.run([ip, "-n", n, "-batch", path], check=True)
            t_up = time.perf_counter() - start
            start = time.perf_counter()
            del_batch = os.path.join(tmp, "del")
            with open(del_batch, "w") as fh:
                fh.writelines(f"netns del {n}\n" for n in [node] + names)
            subprocess.run([ip, "-batch", del_batch], check=True)
            t_down = time.perf_counter() - start
            return t_up, t_down
        finally:
            existing = set(subprocess.run([ip, "netns", "list"], capture_output=True, text=True).stdout.split())
            for n in [node] + names:
                if n in existing:
                    subprocess.run([ip, "netns", "del", n], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_up.py needs root")
    rows = []
    for pods in args.pods:
        base_up, base_down = bench_ip_batch(pods)
        up, down = bench_netlab(pods)
        down_lib = bench_down_inprocess(pods)
        net = bench_network_only(pods)
        rows.append((pods, base_up, up, base_down, down, down_lib))
        print(f"{pods:4d} pods: ip -batch up {base_up:6.2f} s | netlab up {up:6.2f} s "
              f"(ratio {up / base_up:4.2f}x, {1000 * up / pods:5.2f} ms/pod; network only, library call "
              f"{net:5.2f} s = {net / base_up:4.2f}x) | "
              f"ip netns del {base_down:5.2f} s | netlab down {down:5.2f} s (library call {down_lib:5.2f} s)",
              flush=True)
    if len(rows) >= 2:
        (p1, _, u1, *_), (p2, _, u2, *_) = rows[0], rows[-1]
        print(f"per-pod cost at {p2} vs {p1} pods: {(u2 / p2) / (u1 / p1):.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
