#!/usr/bin/env python3
"""Benchmark ``netlab probe`` on the all-pairs ICMP matrix of pods on one bridge.

Prints netlab's time beside two baselines measured in the same run, all with
the neighbour table kept bounded (the table is shared by the whole machine,
see netlab/probe/neighbours.py; nothing here changes gc_thresh*):

- fping run from each source namespace, a wave of sources at a time;
- raw ICMP sockets opened once per namespace, all probes of a wave in flight
  at once, packets built with ``struct`` (the floor for Python);
- the same raw sockets with every neighbour pre-resolved (temporary PERMANENT
  entries, which the kernel's GC does not count): the floor without ARP.

After each wave the dynamic neighbour entries it created are deleted, exactly
as netlab's prober does; that cost is part of each time. Like a netlab probe
run, each baseline holds the machine's probing turn (netlab/probe/turns.py)
while it runs, so a probe elsewhere on the machine waits instead of adding to
the table. Then a 500-pod matrix
(249,500 probes) through netlab, against the 30 s target, with the kernel's
count of neighbour-table overflows (table_fulls, expected 0).

Usage (root): sudo .venv/bin/python scripts/bench_probe.py [--pods 50] [--big 500] [--rounds 3] [--prefix bp]

Stopped (SIGTERM: a CI job's timeout; SIGHUP; Ctrl-C), it takes its lab down and removes its
/tmp/netlab-bench-* folder, as at its end (scripts/bench_stop.py), and exits 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import bench_stop  # noqa: E402 - scripts/bench_stop.py, beside this file
import bytecode  # noqa: E402 - scripts/bytecode.py, beside this file

from netlab.kernel import netlink, rtnl  # noqa: E402
from netlab.kernel.child import run_in_child  # noqa: E402
from netlab.kernel.netns import CLONE_NEWNET, netns_path, setns  # noqa: E402
from netlab.probe import neighbours as nb, turns  # noqa: E402

NETLAB = [sys.executable, "-m", "netlab"]


def topology(name: str, pods: int) -> str:
    # The smallest node block that holds the pods (.0, .1 and broadcast are taken): a /24 up to 253 pods.
    mask = min(24, 32 - (pods + 3 - 1).bit_length())
    lines = [f"name: {name}", f"cluster: {{nodeMask: {mask}}}", "nodes:", "  - {name: n1}", "pods:"]
    lines += [f"  - {{name: p{i}, node: n1}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def netlab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = bench_stop.run(NETLAB + list(args))  # stopped, the command gets the stop too and ends its own way
    if check and proc.returncode not in (0, 1):
        raise SystemExit(f"netlab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class Lab:
    def __init__(self, pods: int, tmp: str, prefix: str = "bp"):
        self.name = f"{prefix}{uuid.uuid4().hex[:6]}"
        self.path = os.path.join(tmp, f"{self.name}.yaml")
        with open(self.path, "w") as fh:
            fh.write(topology(self.name, pods))
        t = time.monotonic()
        try:
            netlab("up", "-t", self.path)
            self.up_s = time.monotonic() - t
            from netlab.realize.state import load_state

            self.lab = load_state(self.name).resolved()
            self.pods = [(p.netns, str(p.ip), p.mac) for p in self.lab.pods]
        except BaseException:  # failed or stopped: what the up made goes (a stopped up rolled back already)
            self.down()
            raise

    def down(self) -> None:
        with bench_stop.deferred():  # a stop as the lab goes down waits for it
            netlab("down", "--lab", self.name, check=False)


# --- baselines ---------------------------------------------------------------------


def in_child(fn, *args):
    """Run fn in a forked child (fn joins the lab's underlay namespace itself); its result, or {"error": ...}."""
    def body():
        nb.keep_stats_open()  # before fn leaves the host's namespace: the counters are only there
        return fn(*args)

    try:
        return run_in_child(body, timeout=300, what=fn.__name__)
    except Exception as exc:  # noqa: BLE001 - a baseline that failed is reported beside the others
        return {"error": repr(exc)}


def baseline(lab_name, fn, pods, home):
    """A baseline that resolves neighbours (fping, raw sockets in waves) takes the machine's probing turn,
    as a netlab probe run does (netlab/probe/turns.py), and sizes its budget inside it: a probe running
    beside the bench waits rather than adding its entries to the baseline's."""
    with turns.probing_turn(f"{lab_name} (a baseline of scripts/bench_probe.py)"):
        return in_child(fn, pods, home, nb.probe_budget())


class Sockets:
    def __init__(self, netns_names):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.raw, self.nl, self.ifindex, self.fds = {}, {}, {}, {}
        for ns in netns_names:
            fd = os.open(netns_path(ns), os.O_RDONLY)
            self.fds[ns] = fd
            setns(fd, CLONE_NEWNET)
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_ICMP)
            s.setsockopt(255, 1, struct.pack("I", 0xFFFFFFFF & ~1))  # ICMP_FILTER: echo replies only
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
            s.setsockopt(socket.SOL_SOCKET, 32, 4 << 20)
            self.raw[ns] = s
            self.nl[ns] = netlink.Conn(timeout=2.0)
            self.ifindex[ns] = socket.if_nametoindex("eth0")
            setns(self.home, CLONE_NEWNET)
        self.before = {ns: {(n.index, n.dst) for n in nb.dump(self.nl[ns])} for ns in netns_names}
        for c in self.nl.values():
            c.sock.setblocking(False)

    def forget(self, entries) -> None:
        for ns, ip in entries:
            key = (self.ifindex[ns], ip)
            if key not in self.before[ns]:
                self.nl[ns].sock.send(rtnl.neigh_del(*key))  # no ACK: only failures are answered
        for c in self.nl.values():
            netlink.drain(c.sock)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _echo(ident: int) -> bytes:
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"netlab-bench-raw"
    return hdr[:2] + struct.pack("!H", _csum(hdr)) + hdr[4:]


def collect_replies(ep, by_fd, want: dict, deadline: float) -> int:
    """Read echo replies until every (namespace, ICMP id) in ``want`` answered or the deadline; count them."""
    got = 0
    while want and time.monotonic() < deadline:
        for fdn, _ in ep.poll(0.05):
            ns, s = by_fd[fdn]
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                ihl = (data[0] & 15) * 4
                if data[ihl] == 0 and want.pop((ns, struct.unpack_from("!H", data, ihl + 4)[0]), None):
                    got += 1
    return got


def waves(pods, budget):
    """Sources in waves small enough that one wave's neighbour entries fit the budget."""
    per = max(1, budget // (2 * max(1, len(pods) - 1)))
    return [pods[i:i + per] for i in range(0, len(pods), per)]


def raw_baseline(pods, home, budget, timeout=1.0):
    fd = os.open(netns_path(home), os.O_RDONLY)
    setns(fd, CLONE_NEWNET)
    socks = Sockets([ns for ns, _, _ in pods])
    ep = select.epoll()
    by_fd = {}
    for ns, s in socks.raw.items():
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = (ns, s)
    s0 = nb.table_stats()
    t0 = time.monotonic()
    got = sent = peak = 0
    ident = 0
    for wave in waves(pods, budget):
        want = {}
        for ns, src_ip, _ in wave:
            for dns, dst, _ in pods:
                if dns == ns:
                    continue
                ident = (ident + 1) & 0xFFFF
                want[(ns, ident)] = 1
                socks.raw[ns].sendto(_echo(ident), (dst, 0))
                sent += 1
        got += collect_replies(ep, by_fd, want, time.monotonic() + timeout)
        st = nb.table_stats()
        peak = max(peak, st.entries if st else 0)
        socks.forget([(ns, dst) for ns, _, _ in wave for dns, dst, _ in pods if dns != ns]
                     + [(dns, src) for dns, _, _ in pods for ns, src, _ in wave if dns != ns])
    elapsed = time.monotonic() - t0
    s1 = nb.table_stats()
    return {"s": elapsed, "sent": sent, "replies": got, "peak_entries": peak,
            "table_fulls": (s1.table_fulls - s0.table_fulls) if s0 and s1 else None}


def raw_resolved(pods, home, timeout=1.0):
    """All probes at once, every neighbour pre-resolved with temporary PERMANENT entries."""
    fd = os.open(netns_path(home), os.O_RDONLY)
    setns(fd, CLONE_NEWNET)
    socks = Sockets([ns for ns, _, _ in pods])
    added = []
    for ns, _, _ in pods:
        for dns, dst, mac in pods:
            if dns != ns:
                socks.nl[ns].sock.send(rtnl.neigh_replace(socks.ifindex[ns], dst, mac))
                added.append((ns, dst))
    for c in socks.nl.values():
        netlink.drain(c.sock)
    ep = select.epoll()
    by_fd = {}
    for ns, s in socks.raw.items():
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = (ns, s)
    t0 = time.monotonic()
    want = {}
    ident = 0
    for ns, _, _ in pods:
        for dns, dst, _ in pods:
            if dns != ns:
                ident += 1
                want[(ns, ident & 0xFFFF)] = 1
                socks.raw[ns].sendto(_echo(ident & 0xFFFF), (dst, 0))
    sent = len(want)
    collect_replies(ep, by_fd, want, time.monotonic() + timeout)
    elapsed = time.monotonic() - t0
    socks.before = {ns: set() for ns in socks.before}
    socks.forget(added)
    return {"s": elapsed, "sent": sent, "replies": sent - len(want)}


def fping_baseline(pods, home, budget):
    fping = shutil.which("fping")
    if not fping:
        return {"error": "fping is not installed (apt-get install fping)"}
    fd = os.open(netns_path(home), os.O_RDONLY)
    setns(fd, CLONE_NEWNET)
    socks = Sockets([ns for ns, _, _ in pods])
    t0 = time.monotonic()
    alive = 0
    for wave in waves(pods, budget):
        procs = []
        for ns, _, _ in wave:
            targets = [dst for dns, dst, _ in pods if dns != ns]
            nfd = socks.fds[ns]
            procs.append(subprocess.Popen([fping, "-a", "-q", "-r0", "-t1000", "-i1", *targets],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          preexec_fn=lambda nfd=nfd: setns(nfd, CLONE_NEWNET), pass_fds=(nfd,)))
        for p in procs:
            out, _ = p.communicate(timeout=30)
            alive += len(out.split())
        socks.forget([(ns, dst) for ns, _, _ in wave for dns, dst, _ in pods if dns != ns]
                     + [(dns, src) for dns, _, _ in pods for ns, src, _ in wave if dns != ns])
    return {"s": time.monotonic() - t0, "replies": alive}


# --- netlab ------------------------------------------------------------------------


def netlab_probe(lab, protos=("icmp",), arp="auto"):
    from netlab.probe import runner

    s0 = nb.table_stats()
    t0 = time.monotonic()
    rep = runner.run(lab, protos=protos, arp=arp)
    elapsed = time.monotonic() - t0
    s1 = nb.table_stats()
    return {"s": elapsed, "probes": len(rep.results), "as_expected": rep.as_expected, "ok": rep.ok,
            "agent": dict(rep.stats), "table_fulls": (s1.table_fulls - s0.table_fulls) if s0 and s1 else None}


def cli_probe(lab_name, proto="icmp", *extra, kept=True):
    """The CLI's run, wall time; ``kept=False``: without the job the lab's last run kept (netlab/probe/early.py),
    as a first run after `up` is (this plain lab's job is then worked out from its state: netlab/probe/plain.py)."""
    if not kept:
        from netlab.probe.early import KEEP_FILE
        from netlab.realize.state_dir import lab_dir

        try:
            os.unlink(os.path.join(lab_dir(lab_name, create=False), KEEP_FILE))
        except FileNotFoundError:
            pass
    t0 = time.monotonic()
    proc = netlab("probe", "--lab", lab_name, "--proto", proto, "-o", "json", *extra)
    return {"s": time.monotonic() - t0, "exit": proc.returncode}


def full_line(full: dict) -> str:
    """The full matrix's row: ``netlab_probe`` with all three protocols (ICMP between the pods and from their node;
    TCP and UDP to the echo servers)."""
    return (f"  full matrix (ICMP, and TCP and UDP to the echo servers): {full['probes']} probes in {full['s']:.3f} s, "
            f"{full['as_expected']} as expected")


def best(runs, key="s"):
    return min(r[key] for r in runs if key in r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=50, help="pods on one bridge for the comparison (default 50)")
    ap.add_argument("--big", type=int, default=500, help="pods for the large matrix (default 500; 0 skips)")
    ap.add_argument("--prefix", default="bp", help="lab names start with this (a DNS label; default bp)")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions; the best time counts (default 3)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_probe: needs root (it builds labs)", file=sys.stderr)
        return 3
    bytecode.compile_netlab()  # the CLI as setup.sh leaves it
    tmp = tempfile.mkdtemp(prefix="netlab-bench-")
    try:
        return bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, tmp: str) -> int:
    budget = nb.probe_budget()
    print(f"neighbour table: gc_thresh = {nb.read_thresholds()}, entries now {nb.table_stats().entries}, "
          f"budget per run {budget}")
    lab = Lab(args.pods, tmp, args.prefix)
    try:
        n = args.pods
        print(f"\n{n} pods on one bridge: {n * (n - 1)} ICMP probes (pod to pod) (netlab up took {lab.up_s:.2f} s)")
        home = lab.lab.underlay_netns
        fp, raw, res, nl, cli, again = [], [], [], [], [], []
        for _ in range(args.rounds):
            fp.append(baseline(lab.name, fping_baseline, lab.pods, home))
            raw.append(baseline(lab.name, raw_baseline, lab.pods, home))
            res.append(in_child(raw_resolved, lab.pods, home))
            nl.append(netlab_probe(lab.lab))
            cli.append(cli_probe(lab.name, kept=False))
            again.append(cli_probe(lab.name))  # the job the run before kept: its agent starts as the models load
        for name, runs in (("fping", fp), ("raw", raw), ("resolved", res)):
            errs = [r["error"] for r in runs if "error" in r]
            if errs:
                print(f"  {name}: {errs[0]}")
        raw_s = best(raw)
        print(f"  fping from each namespace, in waves       {best(fp):7.3f} s  ({fp[0].get('replies')} replies)")
        print(f"  raw sockets, in waves (the baseline)      {raw_s:7.3f} s  ({raw[0].get('replies')} replies, "
              f"peak {max(r.get('peak_entries', 0) for r in raw)} entries, "
              f"table_fulls {sum(r.get('table_fulls') or 0 for r in raw)})")
        print(f"  raw sockets, neighbours pre-resolved      {best(res):7.3f} s  ({res[0].get('replies')} replies)")
        a = min(nl, key=lambda r: r["s"])
        print(f"  netlab probe --proto icmp (library call)  {a['s']:7.3f} s  ({a['as_expected']}/{a['probes']} as "
              f"expected incl. node->pod; agent set-up {a['agent'].get('setup_s')} s, peak "
              f"{max(r['agent'].get('peak_entries', 0) for r in nl)} entries, table_fulls "
              f"{sum(r['table_fulls'] or 0 for r in nl)})")
        for what, runs in (("first run", cli), ("run again", again)):
            print(f"  netlab probe --proto icmp (CLI, {what:9}) {best(runs):7.3f} s  (includes Python start-up; "
                  f"fping waves / CLI = {best(fp) / best(runs):.2f}x, target >= 3x)" if "s" in fp[0] else
                  f"  netlab probe --proto icmp (CLI, {what:9}) {best(runs):7.3f} s  (includes Python start-up)")
        print("  (both start their agent while the models load (netlab/probe/early.py): a first run on the job "
              "worked out from the lab's state (a plain lab's: netlab/probe/plain.py), a run again on the one the "
              "last run kept, or the same)")
        ratio = a["s"] / raw_s if raw_s else float("inf")
        print(f"  ratio netlab / raw baseline: {ratio:.2f} (target <= 2)  -> {'OK' if ratio <= 2 else 'MISSED'}")
        full = netlab_probe(lab.lab, protos=("icmp", "tcp", "udp"))
        print(full_line(full))
    finally:
        lab.down()
    if args.big:
        big = Lab(args.big, tmp, args.prefix)
        try:
            n = args.big
            print(f"\n{n} pods on one bridge (netlab up took {big.up_s:.2f} s):")
            limit = 30 if n > 200 else 10
            # Real ARP for every pair takes minutes past a few hundred pods: the 500-pod matrix is timed in the
            # default mode (the lab's own static entries seed the table), --arp real up to 200 pods.
            for arp in ("auto", "real") if n <= 200 else ("auto",):
                r = netlab_probe(big.lab, arp=arp)
                a = r["agent"]
                print(f"  netlab probe --proto icmp --arp {arp:5s} {r['probes']} probes in {r['s']:6.2f} s "
                      f"(target < {limit:g} s -> {'OK' if r['s'] < limit else 'MISSED'}; mode {a.get('arp', arp)}); "
                      f"{r['as_expected']} as expected; peak {a.get('peak_live')} counted dynamic entries held, "
                      f"{a.get('peak_entries')} entries in the table incl. PERMANENT; table_fulls {r['table_fulls']}")
        finally:
            big.down()
    return 0


if __name__ == "__main__":
    sys.exit(bench_stop.main(main))
