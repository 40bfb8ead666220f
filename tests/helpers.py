"""Shared test helpers: run the CLI, write topologies, snapshot the host namespace."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

NETLAB = [sys.executable, "-m", "netlab"]
# Where the netlab processes these tests start keep their state (they inherit the environment).
STATE_ROOT = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"
VOLATILE_SYSCTLS = ("nf_conntrack_count",)


def state_path(lab: str, *parts: str) -> str:
    """A path in a lab's state directory, under NETLAB_STATE_DIR as the CLI sees it."""
    return os.path.join(os.environ.get("NETLAB_STATE_DIR") or "/run/netlab", lab, *parts)


def located_problems(text: str, tmp_path: Path) -> list[tuple[int | None, str, str]]:
    """(line, field, message) of every problem the loader reports for the topology ``text`` ([] when valid)."""
    from netlab.errors import TopologyError
    from netlab.model.load import load_topology

    path = tmp_path / "t.yaml"
    path.write_text(text, "utf-8")
    try:
        load_topology(str(path))
    except TopologyError as exc:
        return [(p.line, p.field, p.message) for p in exc.problems]
    return []


def unique_lab(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:7]}"


def many_services_topology(lab: str, n: int) -> str:
    """A one-node lab of n ClusterIP Services (10.96.1.1, ...), each selecting a pod of its own (p0, ...):
    two kube-proxy chains a Service (KUBE-SVC, KUBE-SEP) beside its own few."""
    pods = "".join(f"  - {{name: p{i}, node: n1, labels: {{app: s{i}}}}}\n" for i in range(n))
    svcs = "".join(f"  - {{name: s{i}, selector: {{app: s{i}}}, clusterIP: 10.96.1.{i + 1}, "
                   f"ports: [{{port: 80, targetPort: 8080}}]}}\n" for i in range(n))
    return (f"name: {lab}\ncluster: {{nodeMask: 24}}\nnetwork: {{mode: host-gw}}\n"
            f"nodes:\n  - {{name: n1}}\npods:\n{pods}services:\n{svcs}")


def netlab(*args: str, check: bool = True, env: dict | None = None, timeout: float = 300,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run the netlab CLI as a user would (a separate process)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(NETLAB + list(args), capture_output=True, text=True, env=full_env, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"netlab {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


# The line `netlab probe` and `netlab policy table` print on stderr when another probe run (another pytest-xdist
# worker's, another user's) has held the machine's probing turn for over a second (netlab/probe/turns.py,
# turns.QUIET_FOR; `netlab probe --help`: "one that waits over a second says whom it waits for"). The holder is
# "pid N (netlab probe of lab M)", "pid N (its command line)" or "another netlab process" (lockfile.holder_of).
TURN_WAIT = re.compile(r"netlab: lab [^\s:]+: waiting for (pid \d+( \(.*\))?|another netlab process) to finish: one "
                       r"probe runs at a time on a machine \(they share its neighbour table\)")


def is_turn_wait(line: str) -> bool:
    """Whether ``line`` (one line of stderr, its newline or not) is the whole of a probing-turn wait line."""
    return TURN_WAIT.fullmatch(line.removesuffix("\n")) is not None


def without_turn_waits(stderr: str) -> str:
    """A probe's or `policy table`'s stderr without the lines saying it waited for the machine's probing turn
    (whether another run probed meanwhile is not the test's to decide); every other line as it was, in order."""
    return "".join(line for line in stderr.splitlines(keepends=True) if not is_turn_wait(line))


def probe_failures(report: dict) -> str:
    """A ``probe -o json`` report's failures in full, as an assertion's message: every probe and
    distribution not as expected with all its fields (outcome, detail, rtt, problems), the pods'
    failed self-checks, the run's timing and the prober's neighbour-table and conntrack figures. A string, so pytest prints it whole (it shortens any other object's repr)."""
    keep = {"probes": [r for r in report.get("probes", []) if not r["as_expected"]],
            "distributions": [d for d in report.get("distributions", []) if not d["as_expected"]],
            "pods": [c for c in report.get("pods", []) if not c.get("ok", True)],
            **{k: report[k] for k in ("summary", "elapsed_s", "timeout_s", "conntrack", "neighbour_table", "hints")
               if k in report}}
    return json.dumps(keep, indent=1)


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The kernel's own view, through iproute2 (read-only use in tests)."""
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def ip_json(*args: str, netns: str | None = None) -> list:
    out = ip("-j", *args, netns=netns).stdout
    return json.loads(out) if out.strip() else []


def ipv4_of(netns: str, dev: str) -> str:
    """The IPv4 address of ``dev`` in ``netns``, as `ip -j addr` shows it."""
    (link,) = ip_json("addr", "show", "dev", dev, netns=netns)
    return next(a["local"] for a in link["addr_info"] if a["family"] == "inet")


def sh(*argv: str) -> None:
    """Run a command (``ip -n NS ...``, ``bridge ...``: a test's own hand on the kernel), failing the test if it
    fails."""
    subprocess.run(list(argv), check=True, capture_output=True)


def in_netns(netns: str, *argv: str, check: bool = False, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=check,
                          timeout=timeout)


def wrapped_bridge_lab(tmp_path: Path, plugin: str, wrapper: str, lab: str, network: str) -> str:
    """A two-node VXLAN lab (n1 10.244.0.0/24, n2 10.244.1.0/24) whose conflist ``network`` is Debian's bridge
    (cni0, gateway, MTU 1450, the ipRanges capability, host-local leases in tmp_path) behind ``wrapper``, a
    script named ``plugin`` in tmp_path/bin that passes the config on to /usr/lib/cni/bridge: the topology's text
    head, up to its ``pods:`` key."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / plugin).write_text(wrapper)
    (tmp_path / "bin" / plugin).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": plugin, "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "mtu": 1450,
         "capabilities": {"ipRanges": True},
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}}]}))
    return (f"name: {lab}\nnetwork: {{mode: vxlan, cni: {{conflist: net.conflist, binDir: bin}}}}\nnodes:\n"
            "  - {name: n1, podCIDR: 10.244.0.0/24}\n  - {name: n2, podCIDR: 10.244.1.0/24}\npods:\n")


SO_NETNS_COOKIE = 71  # <asm-generic/socket.h>, Linux 5.14; Python has no name for it
COOKIE = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
          f"sys.stdout.write(str(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, {SO_NETNS_COOKIE}, 8), 'little')))")


def netns_cookie(netns: str) -> int:
    """Namespace ``netns``'s cookie (SO_NETNS_COOKIE of a socket made in it): a number the kernel gives no other
    namespace while it runs. "Made again" is a new cookie, not a new inode number: nsfs frees the inode number of a
    namespace that is gone and may give it to the next one (a rollback's re-made pod had its old number)."""
    return int(in_netns(netns, sys.executable, "-I", "-c", COOKIE, check=True).stdout)


def resolving(netns: str, dev: str) -> list[str]:
    """The addresses ``dev``'s ARP is still resolving (INCOMPLETE), as `ip -j neigh` shows them. A packet queued
    behind such an entry is dropped when its last request goes unanswered (retrans_time after it), even once the
    path is back: a test that cut a path and pings after the repair waits these out first."""
    return [n["dst"] for n in ip_json("neigh", "show", "dev", dev, netns=netns) if "INCOMPLETE" in n.get("state", [])]


def links_settled(netns: str) -> bool:
    """Every link of ``netns`` set up shows the operational state its carrier gives it (UP or UNKNOWN with a
    carrier, DOWN without), and every bridge port set up with a carrier forwards. The carrier changes at once with
    a `link set up/down` (NO-CARRIER), the operational state after it, on linkwatch's event, and the bridge turns a
    port forwarding or disabled on that event: a test that changed a link waits for this before it reads the
    link's state or sends through it."""
    links = ip_json("link", netns=netns)
    carrying = {k["ifname"] for k in links if "UP" in k.get("flags", []) and "NO-CARRIER" not in k.get("flags", [])}
    if any(("UP" in k.get("flags", [])) and ((k["ifname"] in carrying) != (k.get("operstate") in ("UP", "UNKNOWN")))
           for k in links):
        return False
    ports = json.loads(subprocess.run(["bridge", "-n", netns, "-j", "link"], capture_output=True, text=True,
                                      check=True).stdout or "[]")
    return all(p.get("state") == "forwarding" for p in ports if p["ifname"] in carrying)


def wait_for(pred, timeout: float = 5.0, step: float = 0.05) -> bool:
    """True once ``pred()`` holds, asked every ``step`` seconds for up to ``timeout``; then its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def set_port_state(netns: str, port: str, state: str) -> None:
    """`bridge link set dev PORT state STATE`, as a user would, once the kernel will leave it there.

    STP is off on a lab's bridges, yet a port the kernel enables (its bridge or its veth comes up) goes
    forwarding with the bridge's forward delay timer armed (15 s, `forward_delay 1500`: a real cni0's); when it
    expires, a port a hand set listening since goes learning, and one set learning goes forwarding. A test that
    sets those states right after an `up` would see the kernel undo them: it waits for the timer to run out.
    The kernel shows the time left, and 0 once it is past, but its timer wheel may fire a timer up to 1/8 of its
    length late (1.9 s of 15 s): that slack is waited for too, as the timer cannot be seen pending meanwhile."""
    if state in ("listening", "learning"):
        (link,) = ip_json("-d", "link", "show", "dev", port, netns=netns)
        time.sleep(float(link["linkinfo"]["info_slave_data"]["forward_delay_timer"]) + 15 / 8 + 0.1)
    subprocess.run(["bridge", "-n", netns, "link", "set", "dev", port, "state", state], check=True,
                   capture_output=True)


def write_topology(tmp_path: Path, text: str, name: str = "topo.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def write_program(path: Path, text: str, mode: int = 0o755) -> None:
    """An executable script at ``path``, written under a temporary name, closed, chmod'ed, then renamed into
    place: nothing that execs ``path`` (netlab's plugin calls, run from other threads too) meets it half written
    or open for writing in this process. A child another thread forked while the file was open keeps that
    descriptor until its own exec: the kernel refuses an exec of the file (ETXTBSY) for that instant, which
    netlab's plugin exec tries again as libcni does (cni/invoke.py)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def resolved(tmp_path: Path, text: str):
    """The topology ``text`` (written to t.yaml in ``tmp_path``, where the files it names are) as a resolved lab."""
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology

    return resolve(load_topology(write_topology(tmp_path, text, "t.yaml")))


# A lab's network.cni naming the chain write_conflist writes beside its file.
CONFLIST = "{conflist: net.conflist, binDir: bin}"


def write_conflist(folder: Path, plugins: list) -> None:
    """net.conflist, a chain of ``plugins`` (network qn), and an empty bin/ beside it: the plugins are named, never
    run (a plan, a trace or a probe of the lab reads the chain's configuration only)."""
    (folder / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "qn", "plugins": plugins}))
    (folder / "bin").mkdir(exist_ok=True)


def traced(lab: str, *args: str) -> tuple[int, dict]:
    """`netlab trace --lab LAB ARGS -o json`: its exit code (0 delivered, 1 not: a verdict, never an error) and
    its report."""
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def as_planned(lab: str) -> bool:
    """`netlab status` finds the lab as its plan says (exit 0)."""
    return netlab("status", "--lab", lab, check=False).returncode == 0


def status_details(lab: str) -> tuple[int, list[dict]]:
    """``netlab status --lab LAB -o json``: its exit and its drift's details."""
    p = netlab("status", "--lab", lab, "-o", "json", check=False)
    return p.returncode, json.loads(p.stdout)["details"]


def up_repairs(path: str, lab: str) -> list[str]:
    """``netlab up -t PATH -o json`` that changed something, after which `status` finds the lab as planned: what it
    fixed, in its words."""
    out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
    assert out["changed"], out
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    return out["fixed"]

def two_node_topology(lab: str, mode: str = "vxlan", pods_per_node: int = 2) -> str:
    """The default lab's shape (minikube / minikube-m02) under another lab name."""
    pods = []
    for i in range(pods_per_node):
        pods.append(f"  - {{name: fedora-{2 * i + 1}, node: minikube, ip: 10.244.0.{2 + i}}}")
        pods.append(f"  - {{name: fedora-{2 * i + 2}, node: minikube-m02, ip: 10.244.1.{3 + i}}}")
    return f"""name: {lab}
network:
  mode: {mode}
  underlay: {{cidr: 192.168.122.0/24, mtu: 1500}}
nodes:
  - {{name: minikube, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
  - {{name: minikube-m02, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}}
pods:
""" + "\n".join(pods) + "\n"


def two_node(base: str = "t", mode: str = "vxlan", pods_per_node: int = 2) -> dict:
    """:func:`two_node_topology` as a dict, for the pytest plugin's fixtures (they give it a unique name)."""
    import yaml

    return yaml.safe_load(two_node_topology(base, mode, pods_per_node))


def lab_namespaces(lab: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(lab + "-"))


def anything_of(lab: str, state_root: str | None = None) -> bool:
    """Whether lab ``lab`` has anything a `down` (or `down --force`) could take: its folder in the state
    directory (``state_root``, else NETLAB_STATE_DIR's), a namespace of its, its pods' files in /etc/netns.
    Without any, `down` says "not up; nothing to do": a CLI start for nothing."""
    folder = os.path.join(state_root, lab) if state_root else state_path(lab)
    return (os.path.lexists(folder) or bool(lab_namespaces(lab))
            or bool(glob.glob(f"/etc/netns/{glob.escape(lab)}-*")))


def lab_down(name: str) -> None:
    """``netlab down``, then nothing of the lab may be left."""
    netlab("down", "--lab", name, check=False)
    left = lab_namespaces(name)
    assert not left, f"lab {name} left namespaces: {left}"


def lab_down_here(name: str) -> None:
    """``lab_down`` in this process (``Lab(name).down()``), for tests of other commands than `down`: whatever it
    meets, as the CLI's exit status there, nothing of the lab may be left."""
    from netlab import Lab
    from netlab.errors import NetlabError

    try:
        Lab(name).down()
    except NetlabError:
        pass  # said by what is left, below
    left = lab_namespaces(name)
    assert not left, f"lab {name} left namespaces: {left}"


@contextlib.contextmanager
def someone_elses_etc_netns(make: tuple[str, ...] = (), leftovers: tuple[str, ...] = ()):
    """Directories under /etc/netns made as a person makes them (``make``); afterwards they go with what they hold,
    and so do ``leftovers`` (files of a lab's a person took over).

    /etc/netns itself, when it is not there, is made as netlab makes it (with its mark), so that whichever lab
    leaves it empty last removes it: labs of other tests may use it meanwhile. It goes here too, once empty."""
    import shutil

    from netlab.services import netns_files

    netns_files.make_etc_netns()
    for path in make:
        os.makedirs(path)
    try:
        yield
    finally:
        for path in make + leftovers:
            shutil.rmtree(path, ignore_errors=True)
        if netns_files.made_by_netlab(netns_files.ETC_NETNS):
            netns_files.remove_etc_netns()  # as the last lab to leave it would: only when empty


@contextlib.contextmanager
def lab_up(path: str, name: str, in_process: bool = False):
    """``netlab up -t PATH`` for the body, then always :func:`lab_down` (also when ``up`` itself failed: an ``up``
    that failed half-way, or was killed by the test's timeout, may have left namespaces). ``in_process``: up and
    down with the library in this process (:func:`up_here`, :func:`lab_down_here`: the lab as `up` makes it, without
    a CLI start), for a test not about the CLI's up or down."""
    try:
        if in_process:
            up_here(path)
        else:
            netlab("up", "-t", path)
        yield
    finally:
        (lab_down_here if in_process else lab_down)(name)


def pod_pair_topology(name: str, same_node: bool = False) -> str:
    """Pods a and b: both on n1 (``same_node``), else a on n1 and b on n2."""
    nodes, b_on = ("{name: n1}", "n1") if same_node else ("{name: n1}, {name: n2}", "n2")
    return f"name: {name}\nnodes: [{nodes}]\npods: [{{name: a, node: n1}}, {{name: b, node: {b_on}}}]\n"


@contextlib.contextmanager
def pod_pair_lab(tmp_path, prefix: str, same_node: bool = False):
    """A lab of :func:`pod_pair_topology` (a unique name of ``prefix``) up in this process for the body, always
    taken down (:func:`lab_up`, in_process): (name, topology path). For a test that breaks it by hand."""
    name = unique_lab(prefix)
    path = write_topology(tmp_path, pod_pair_topology(name, same_node))
    with lab_up(path, name, in_process=True):
        yield name, path


@contextlib.contextmanager
def module_lab(tmp_path_factory, prefix: str, topology):
    """A lab of ``topology(name)`` for the tests of a module that leave it as they found it, each one asserting
    that `status` finds it as planned again (see :func:`left_as_found`): (name, topology path). Each pytest-xdist
    worker that runs one of them builds its own (a unique name), and checks it as planned before it goes. It
    comes up in its first test's setup and goes down in its last one's teardown, which hold the machine's
    neighbour table as every root test's run does (tests/machine_table.py, conftest's pytest_runtest_protocol)."""
    lab = unique_lab(prefix)
    path = write_topology(tmp_path_factory.mktemp(lab), topology(lab), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # in this process: no test of these asks anything of up's or down's CLI
        yield lab, path
        assert as_planned_here(lab), f"a test that shares lab {lab} left it other than planned"


@contextlib.contextmanager
def left_as_found(lab: str, path: str, session):
    """The body, a test on a module's lab, as planned again after it: a test that passes asserted it (`status`
    finds it as planned); one that failed (pytest ``session``'s count went up) may have left it broken, and
    `netlab up` puts it back for the next one. Then the traffic state it made that a real node forgets only in
    time goes: its namespaces' neighbour entries (not the permanent ones the plan writes: a test's ARP entry would
    send a probe later, and the answer would make an entry that the next test deleted) and conntrack entries (a
    flow's NAT and state outlive its packets by minutes)."""
    failed = session.testsfailed
    try:
        yield
    finally:
        if session.testsfailed > failed:
            from netlab import Lab

            Lab.up(path)  # as `netlab up -t PATH` repairs it, in this process
        flush = "".join(f"ip -n {ns} neigh flush all && ip netns exec {ns} conntrack -F 2>/dev/null && "
                        for ns in lab_namespaces(lab))  # neigh flush spares permanent and noarp entries
        subprocess.run(["sh", "-c", flush + "true"], check=True, timeout=30)


def host_snapshot() -> dict:
    """The host's own network namespace: links, addresses, routes, rules, iptables, net sysctls."""
    snap: dict = {}
    for what in (["link", "show"], ["addr", "show"], ["route", "show", "table", "all"], ["rule", "show"],
                 ["neigh", "show", "nud", "permanent"]):
        snap[" ".join(what)] = ip(*what).stdout
    for tool in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run([tool], capture_output=True, text=True)
        # Drop the timestamp comments iptables-save prints.
        snap[tool] = "\n".join(l for l in proc.stdout.splitlines() if not l.startswith("#"))
    sysctls = {}
    for root, _, files in os.walk("/proc/sys/net"):
        for name in files:
            if name in VOLATILE_SYSCTLS:
                continue
            path = os.path.join(root, name)
            try:
                with open(path) as fh:
                    sysctls[path] = fh.read()
            except OSError:
                continue
    snap["sysctls"] = sysctls
    return snap


def diff_snapshots(before: dict, after: dict) -> list[str]:
    out = []
    for key in before:
        if key == "sysctls":
            for path in sorted(set(before[key]) | set(after[key])):
                if before[key].get(path) != after[key].get(path):
                    out.append(f"sysctl {path}: {before[key].get(path)!r} -> {after[key].get(path)!r}")
        elif before[key] != after[key]:
            out.append(f"{key} changed:\n--- before\n{before[key]}\n--- after\n{after[key]}")
    return out


# What `netlab plan` may load of netlab.realize: the lab's state file, read to keep the addresses a running lab of
# the file's name holds (api.topology.load); no kernel code.
STATE_READING = ("netlab.realize", "netlab.realize.state", "netlab.realize.state_dir", "netlab.realize.state_sum",
                 "netlab.realize.state_name",
                 "netlab.realize.state_schema", "netlab.realize.attachments", "netlab.realize.state_errors",
                 "netlab.realize.lab_name", "netlab.realize.lab_env", "netlab.realize.lab_folder",
                 "netlab.realize.lab_list", "netlab.realize.up_words")


# A Service whose pods a NetworkPolicy opens to app=fe pods of its own namespace only: fe (prod) may reach api, dev1
# (dev, labelled app=fe too) may not. lab.reach and probe must agree on it (test_reach_policy, test_reach_expectation).
REACH_POLICY_TOPOLOGY = {
    "name": "rpol",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "namespaces": [{"name": "prod", "labels": {"env": "prod"}}, {"name": "dev", "labels": {"env": "dev"}}],
    "pods": [
        {"name": "api", "namespace": "prod", "node": "n1", "labels": {"app": "api"},
         "containers": [{"name": "c", "ports": [{"containerPort": 8080, "name": "http"}]}]},
        {"name": "fe", "namespace": "prod", "node": "n2", "labels": {"app": "fe"}},
        {"name": "dev1", "namespace": "dev", "node": "n2", "labels": {"app": "fe"}},
    ],
    "services": [{"name": "api", "namespace": "prod", "selector": {"app": "api"},
                  "ports": [{"port": 80, "targetPort": 8080}]}],
    "networkPolicies": [
        {"name": "api-from-fe", "namespace": "prod", "spec": {
            "podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "fe"}}}], "ports": [{"port": "http"}]}]}},
    ],
}
REACH_DENIED = "policy: denied by policy prod/api-from-fe (no ingress rule allows it for pod prod/api)"


def reject_counts(netns: str) -> dict[str, int]:
    """chain -> packets its REJECT rules counted, from the kernel's own iptables-save -c."""
    out: dict[str, int] = {}
    for line in in_netns(netns, "iptables-save", "-c", "-t", "filter", check=True).stdout.splitlines():
        m = re.match(r"^\[(\d+):\d+\] -A (NETPOL-\S+) .*-j REJECT", line)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


def read_log(path) -> str:
    """A container's log as `netlab logs` reads it: past the hole a log that started over on tmpfs begins with
    (workload/echo_log.py)."""
    from netlab.workload.echo_log import LogFile

    with LogFile.open(str(path)) as fh:
        return fh.read().decode(errors="replace")


def log_start(path) -> int:
    """Where a container's log's lines begin: after that hole; 0 for a log without one."""
    from netlab.workload.echo_log import data_start

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return data_start(fd)
    finally:
        os.close(fd)


def as_planned_here(lab: str, path: str | None = None) -> bool:
    """:func:`as_planned` in this process (``Lab(lab).status()``, against the file ``path`` when given), for a
    test that checks a lab's state, not the `status` command: its verdict is the one the CLI's exit 0 says."""
    from netlab import Lab

    return Lab(lab).status(path).ok


def up_here(path: str, reconfigure: bool = False) -> None:
    """``netlab up [--reconfigure] -t PATH`` in this process (``Lab.up``), for a test that repairs or sets up a lab,
    not one of `up`'s output: as the CLI's exit 0, every part of it up, each container started."""
    from netlab import Lab

    done = Lab.up(path, reconfigure=reconfigure).last_up
    assert done is not None and done.ok, done


QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "pytest" / "quickstart.py"


def quickstart_signal_lines() -> str:
    """The README quickstart's SIGTERM and SIGHUP lines (a loop and its body), from examples/pytest/quickstart.py
    (what the README shows): a test's script sets its stop signals as the quickstart does."""
    lines = QUICKSTART.read_text().splitlines()
    (at,) = [n for n, text in enumerate(lines) if text.startswith("for stop in (signal.SIGTERM, signal.SIGHUP)")]
    return "\n".join(lines[at:at + 2]) + "\n"
