"""netlab doctor on this machine, checked against iproute2's own answers; and `up` refusing to start.

Each kernel line of the report is compared with the same question asked by
iproute2 (``ip link add`` / ``tc qdisc add``) inside a throwaway namespace of
its own (``unshare -n``). `up` must stop with exit 3 and the doctor's very line
before it creates anything when the machine lacks what its topology needs:
once for real (a symlinked state directory), and for a missing tool or kernel
feature through the documented test hook NETLAB_DOCTOR_MISSING (binary()
looks in fixed directories, so PATH cannot hide a tool).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

from helpers import STATE_ROOT, lab_namespaces, netlab, two_node_topology, write_topology
from netlab import doctor, doctor_netfilter, doctor_nft
from netlab.kernel import features
from netlab.plan.sysctls import DEVCONF_SYSCTLS, to_restore

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<status>ok  |warn|FAIL|info)  (?P<title>(kernel|tool|host) [^:]+): (?P<detail>\S.*)$")
# The same question, asked with iproute2 in a namespace `unshare -n` makes for that one command.
IPROUTE2 = {
    "veth": ["ip", "link", "add", "x", "type", "veth", "peer", "name", "y"],
    "bridge": ["ip", "link", "add", "x", "type", "bridge"],
    "vxlan": ["ip", "link", "add", "x", "type", "vxlan", "id", "1", "dstport", "4789"],
    "tbf": ["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "10kb", "latency", "50ms"],
    "htb": ["tc", "qdisc", "add", "dev", "lo", "root", "htb"],
    "netem": ["tc", "qdisc", "add", "dev", "lo", "root", "netem"],
}


def report_lines(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict[str, re.Match]]:
    proc = netlab("doctor", *args, check=False, env=env)
    *checks, summary = proc.stdout.splitlines()
    assert re.fullmatch(r"\d+ ok, \d+ warnings?, \d+ failed \(checked for .+\)", summary), proc.stdout
    lines = {}
    for text in checks:
        match = LINE.match(text)
        assert match, f"not a doctor line: {text!r}"
        lines[match["title"]] = match
    # what only CNI plugins use: only for a lab whose conflist asks for it
    assert list(lines) == [doctor.TITLES[name] for name in doctor.CHECKS
                           if name not in doctor.CNI_FEATURES or doctor.TITLES[name] in lines], proc.stdout
    return proc, lines


def in_fresh_netns(argv: list[str]) -> bool:
    return subprocess.run(["unshare", "-n", *argv], capture_output=True).returncode == 0


def test_doctor_on_this_machine():
    proc, lines = report_lines()
    failed = [m.group(0) for m in lines.values() if m["status"] == "FAIL"]
    assert proc.returncode == 0 and not failed, proc.stdout + proc.stderr  # the suite runs here: nothing is missing
    for name, argv in IPROUTE2.items():
        line = lines[doctor.TITLES[name]]
        if "not loaded" in line["detail"]:
            continue  # a module on disk: neither the doctor nor this test loads it
        has_it = in_fresh_netns(argv)
        assert (line["status"] == "ok  ") == has_it, f"iproute2 says {name} is {'' if has_it else 'not '}there: {line[0]}"
    # Loss impairments' netdev chains (ingress and egress hooks, numgen), asked of nft in a namespace of its own.
    netdev = lines[doctor.TITLES["nf_netdev"]]
    assert (netdev["status"] == "ok  ") == in_fresh_netns(["nft", doctor_nft.NETDEV_SHAPE]), netdev[0]
    # portmap's rules for a builtin lab's hostPorts: each part asked of iptables-restore in a namespace of its own
    hostport = lines[doctor.TITLES["hostport"]]
    takes = [subprocess.run(["unshare", "-n", "iptables-restore", "--noflush"], text=True, capture_output=True,
                            input=doctor_netfilter.hostport_input(p)).returncode == 0
             for p in doctor_netfilter.HOSTPORT_RULES]
    assert (hostport["status"] == "ok  ") == all(takes), (hostport[0], takes)
    # The internet gateway's multipath hash sysctls and a route of two nexthops, asked of sysctl and ip in a namespace
    # of their own
    multipath = lines[doctor.TITLES["multipath"]]
    routed = subprocess.run(["unshare", "-n", "sh", "-ec", "sysctl -qw net.ipv4.fib_multipath_hash_policy=3 "
                             "net.ipv4.fib_multipath_hash_fields=55; ip link add name mpa type veth peer name mpb; "
                             "ip link set mpa up; ip addr add 10.9.0.1/24 dev mpa; ip route add 198.51.100.9/32 "
                             "nexthop via 10.9.0.2 dev mpa nexthop via 10.9.0.3 dev mpa"], capture_output=True, text=True)
    assert (multipath["status"] == "ok  ") == (routed.returncode == 0), (multipath[0], routed.stderr)
    netem = lines["kernel qdisc netem"]
    if not in_fresh_netns(IPROUTE2["netem"]):  # this machine: a kernel without CONFIG_NET_SCH_NETEM
        assert netem[0].startswith("warn  kernel qdisc netem: not in this kernel (ENOENT: No such file or directory); "
                                   "needed only for delay and jitter impairments (impair: delay; loss is an nftables "
                                   "netdev rule); fix: "), netem[0]
        # modprobe only where this kernel can load modules at all (this VM's was built without: no /proc/modules)
        can_load = os.path.exists("/proc/modules") and os.path.isdir(f"/lib/modules/{os.uname().release}")
        assert ("fix: modprobe sch_netem (" in netem[0]) == can_load, netem[0]
        if not os.path.exists("/proc/modules"):
            assert netem[0].endswith("fix: boot a kernel with CONFIG_NET_SCH_NETEM (modprobe cannot help: this kernel "
                                     "was built without loadable module support (no /proc/modules))"), netem[0]
    assert (lines["kernel br_netfilter"]["status"] == "ok  ") == os.path.isdir("/proc/sys/net/bridge")
    # sock_diag: ss in a fresh namespace lists its (no) TCP and UDP sockets when the kernel has the dumps
    diag = lines["kernel sock_diag"]
    if "not loaded" not in diag["detail"]:
        ss = subprocess.run(["unshare", "-n", "ss", "-Htuln"], capture_output=True, text=True)
        assert (diag["status"] == "ok  ") == (ss.returncode == 0 and not ss.stderr), (diag[0], ss.stderr)
    version = subprocess.run(["iptables-restore", "--version"], capture_output=True, text=True).stdout
    backend = "nft" if "(nf_tables)" in version else "legacy"
    assert lines["tool iptables-restore"]["detail"].endswith(f", {backend} backend")
    born_with = subprocess.run(["unshare", "-n", "ip", "-o", "link"], capture_output=True, text=True).stdout
    if len(born_with.splitlines()) == 1:
        assert lines["host fallback tunnels"][0] == "info  host fallback tunnels: a new namespace holds only lo"
    # IPv6: the kernel has it when /proc/sys has net/ipv6; lab namespaces have it off either way.
    assert lines["host IPv6"]["detail"].startswith("in this kernel" if os.path.isdir("/proc/sys/net/ipv6")
                                                   else "not in this kernel")
    # The IPv4 all/default settings a new namespace copies from this host, as `unshare -n` finds them.
    read = "; ".join(f"echo {name} $(cat /proc/sys/{name.replace('.', '/')})" for name in DEVCONF_SYSCTLS)
    fresh = subprocess.run(["unshare", "-n", "sh", "-c", read], capture_output=True, text=True).stdout
    differ = to_restore(dict(line.split() for line in fresh.splitlines() if len(line.split()) == 2))
    detail = lines["host IPv4 settings"]["detail"]
    assert (detail == "a new namespace gets the kernel's IPv4 all/default settings") == (not differ), detail
    assert all(f" {key} " in detail for key in differ), detail
    thresholds = [Path(f"/proc/sys/net/ipv4/neigh/default/gc_thresh{i}").read_text().strip() for i in (1, 2, 3)]
    assert f"gc_thresh1/2/3 = {'/'.join(thresholds)} " in lines["host neighbour table"]["detail"]
    assert lines["host state directory"]["detail"].startswith(STATE_ROOT)
    family = subprocess.run(["genl", "ctrl", "get", "name", "TASKSTATS"], capture_output=True, text=True)
    assert (lines["host taskstats"]["status"] == "ok  ") == (family.returncode == 0), (lines["host taskstats"][0],
                                                                                        family.stdout + family.stderr)
    # A pidfd keeps its process's exit status from Linux 6.15 (the kernel's own version, against the line).
    release = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    assert (lines["host pidfd exit status"]["status"] == "ok  ") == (release >= (6, 15)), \
        (lines["host pidfd exit status"][0], release)
    # The same report as JSON.
    data = json.loads(netlab("doctor", "-o", "json").stdout)
    assert data["ok"] is True and data["needs"] == "everything"
    assert [(c["title"], c["status"]) for c in data["checks"]] == [(t, m["status"].strip()) for t, m in lines.items()]


def test_the_settings_a_tuned_host_gives_new_namespaces_are_named():
    # The test hook gives each new namespace such a host's values, the doctor's throwaway one too.
    _, lines = report_lines(env={"NETLAB_TEST_HOST_DEVCONF": "1"})
    assert lines["host IPv4 settings"][0] == (
        "info  host IPv4 settings: a new namespace gets this host's all/default proxy_arp 1/1 (the kernel's: 0/0), "
        "route_localnet 1/1 (the kernel's: 0/0), send_redirects 0/0 (the kernel's: 1/1); every lab namespace sets "
        "them back to the kernel's")


def test_probe_leaves_no_namespace_behind():
    threads = threading.active_count()
    probe = features.probe_kernel()
    ns = probe.scratch_netns
    assert ns and ns != os.readlink("/proc/self/ns/net")
    assert threading.active_count() == threads
    holders = [p for p in Path("/proc/self/task").glob("*/ns/net") if os.readlink(p) == ns]
    holders += [p for p in Path("/proc/self/fd").iterdir() if os.path.exists(p) and os.readlink(p) == ns]
    assert not holders, f"{ns} is still held by {holders}"
    inode = ns.split("[")[1].rstrip("]")
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f"net:[{inode}]" in line]
    named = []  # other engineers' labs come and go meanwhile: look for this namespace, not for changes
    for entry in Path("/run/netns").glob("*") if Path("/run/netns").is_dir() else []:
        try:
            if entry.stat().st_ino == int(inode):
                named.append(entry)
        except OSError:
            pass
    assert not named, f"{ns} got a name: {named}"


def services_topology(lab: str) -> str:
    text = (ROOT / "topologies/services.yaml").read_text()
    return re.sub(r"(?m)^name: svc$", f"name: {lab}", text)


def test_missing_tool_stops_up_before_any_change(labs, tmp_path):
    lab = labs.name("dr")
    path = write_topology(tmp_path, services_topology(lab))
    env = {doctor.MISSING_HOOK: "dnsmasq"}
    proc = netlab("up", "-t", path, check=False, env=env)
    doctor_proc, lines = report_lines("-t", path, env=env)
    assert doctor_proc.returncode == 3
    line = lines["tool dnsmasq"][0]
    assert line == (f"FAIL  tool dnsmasq: reported missing by {doctor.MISSING_HOOK} (a test hook); "
                    "fix: apt-get install dnsmasq-base (or sudo ./scripts/setup.sh)")
    assert (proc.returncode, proc.stderr) == (3, f"netlab: {line}\n"), proc.stdout + proc.stderr
    assert lab_namespaces(lab) == []
    assert not os.path.lexists(os.path.join(STATE_ROOT, lab))


def test_a_kernel_without_multipath_routes_stops_a_load_balancer_lab_before_any_change(labs, tmp_path):
    lab = labs.name("mp")
    path = write_topology(tmp_path, services_topology(lab))
    proc = netlab("up", "-t", path, check=False, env={doctor.MISSING_HOOK: "multipath"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"netlab: FAIL  kernel multipath routes: reported missing by {doctor.MISSING_HOOK} (a test "
                           "hook); asked for by LoadBalancer Service default/web-lb; fix: boot a kernel >= 5.12 with "
                           "CONFIG_IP_ROUTE_MULTIPATH"), line
    assert lab_namespaces(lab) == []
    assert not os.path.lexists(os.path.join(STATE_ROOT, lab))


def test_up_checks_what_its_topology_needs(labs, tmp_path):
    """Without vxlan, a host-gw lab comes up (it needs no vxlan device) and a vxlan lab does not start."""
    env = {doctor.MISSING_HOOK: "vxlan,netem,tcpdump"}
    hostgw = labs.name("dr")
    labs.up(two_node_topology(hostgw, mode="host-gw", pods_per_node=1), "hostgw.yaml", env=env)
    assert netlab("status", "--lab", hostgw).returncode == 0
    vxlan = labs.name("dr")
    path, proc = labs.up(two_node_topology(vxlan, pods_per_node=1), "vxlan.yaml", check=False, env=env)
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"netlab: FAIL  kernel vxlan: reported missing by {doctor.MISSING_HOOK}"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1  # netem, tcpdump: not needed, not checked
    assert lab_namespaces(vxlan) == []


def test_symlinked_state_directory_stops_up_with_the_doctors_line(labs, tmp_path):
    """For real, no hook: the state directory netlab would write to is a symlink. The doctor says it in its line;
    `up`, as every command, refuses that folder up front in the state folder's own line (realize/state_dir, before
    any lab is judged: QA q28 3), exit 3, nothing made."""
    lab = labs.name("dr")
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(target)
    env = {"NETLAB_STATE_DIR": str(link)}
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1))
    proc = netlab("up", "-t", path, check=False, env=env)
    doctor_proc, lines = report_lines("-t", path, env=env)
    line = lines["host state directory"][0]
    # NETLAB_STATE_DIR names it: the user's symlink (it could be /proc/self) is theirs, not for netlab to rm
    assert line == (f"FAIL  host state directory: {link} is a symlink; netlab refuses to use it; fix: point "
                    "NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode 0700, if it is not there)")
    assert doctor_proc.returncode == 3
    assert (proc.returncode, proc.stderr) == (3, f"netlab: {link} is a symlink; refusing to use it (point "
                                              "NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode "
                                              "0700, if it is not there) and retry)\n"), proc.stdout + proc.stderr
    assert lab_namespaces(lab) == [] and list(target.iterdir()) == []


def test_doctor_reports_this_machines_cni_plugins():
    """`netlab doctor -o json` finds Debian's plugins in /usr/lib/cni, each answering VERSION as it answers when
    run by hand the way libcni runs it (CNI_COMMAND=VERSION, the config's cniVersion on stdin)."""
    data = json.loads(netlab("doctor", "-o", "json").stdout)
    (check,) = [c for c in data["checks"] if c["name"] == "cni-plugins"]
    assert (check["title"], check["status"], check["needed"], check["fix"]) == ("tool CNI plugins", "ok", True, "")
    assert check["detail"] == ("loopback, bridge, host-local, portmap in /usr/lib/cni answer VERSION and speak "
                               "cniVersion 1.0.0")
    assert [item["name"] for item in check["items"]] == ["loopback", "bridge", "host-local", "portmap"]
    for item in check["items"]:
        assert (item["path"], item["state"], item["error"]) == (f"/usr/lib/cni/{item['name']}", "ok", "")
        by_hand = subprocess.run([item["path"]], input='{"cniVersion": "1.0.0"}', env={"CNI_COMMAND": "VERSION"},
                                 capture_output=True, text=True, check=True, timeout=10)
        assert json.loads(by_hand.stdout)["supportedVersions"] == item["supportedVersions"]
        assert "1.0.0" in item["supportedVersions"]


def test_up_of_a_cni_lab_without_plugins_stops_with_the_doctors_line(labs, tmp_path):
    lab = labs.name("dr")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1).replace(
        "  mode: vxlan\n", "  mode: vxlan\n  cni: reference\n", 1))
    env = {doctor.MISSING_HOOK: "cni-plugins"}
    proc = netlab("up", "-t", path, check=False, env=env)
    doctor_proc, lines = report_lines("-t", path, env=env)
    line = lines["tool CNI plugins"][0]
    assert line == (f"FAIL  tool CNI plugins: loopback, bridge, host-local reported missing by {doctor.MISSING_HOOK} "
                    "(a test hook); fix: apt-get install containernetworking-plugins (or sudo ./scripts/setup.sh)")
    assert doctor_proc.returncode == 3
    assert (proc.returncode, proc.stderr) == (3, f"netlab: {line}\n"), proc.stdout + proc.stderr
    assert lab_namespaces(lab) == [] and not os.path.lexists(os.path.join(STATE_ROOT, lab))


def test_the_neighbour_figure_is_what_all_pairs_traffic_makes(labs):
    """doctor's and up's figure for all-pairs traffic, against the kernel's count after every pod and node pinged
    every pod of a two-node VXLAN lab: the nodes resolve each other on the underlay too (it left those out)."""
    from netlab.api import load
    from netlab.probe.neighbours import full_mesh_entries

    lab = labs.name("nb")
    path, _ = labs.up(two_node_topology(lab))
    model = load(path).lab
    for src in [p.netns for p in model.pods] + [n.netns for n in model.nodes]:
        for pod in model.pods:
            subprocess.run(["ip", "netns", "exec", src, "ping", "-c1", "-W2", str(pod.ip)], check=True,
                           capture_output=True)
    dynamic = 0
    for ns in lab_namespaces(lab):
        entries = json.loads(subprocess.run(["ip", "-n", ns, "-j", "neigh", "show"], check=True, capture_output=True,
                                            text=True).stdout)
        dynamic += sum(1 for e in entries if not {"PERMANENT", "NOARP"} & set(e.get("state", [])))
    assert dynamic == full_mesh_entries(model) == 14


def test_the_hook_makes_br_netfilter_missing_and_up_stops_before_any_change(labs, tmp_path):
    """br_netfilter is read from the host (/proc/sys/net/bridge), not tried: the hook reached every check but
    this one, and `up` of a lab whose bridges set bridge-nf-call-iptables went ahead."""
    lab = labs.name("dr")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=2))
    env = {doctor.MISSING_HOOK: "br_netfilter"}
    proc = netlab("up", "-t", path, check=False, env=env)
    doctor_proc, lines = report_lines("-t", path, env=env)
    line = lines["kernel br_netfilter"][0]
    assert doctor_proc.returncode == 3 and line.startswith(
        f"FAIL  kernel br_netfilter: reported missing by {doctor.MISSING_HOOK} (a test hook); same-node Service")
    assert (proc.returncode, proc.stderr) == (3, f"netlab: {line}\n"), proc.stdout + proc.stderr
    assert lab_namespaces(lab) == []
    assert not os.path.lexists(os.path.join(STATE_ROOT, lab))
    checks = {c["name"]: c for c in json.loads(netlab("doctor", "-t", path, "-o", "json", check=False).stdout)["checks"]}
    assert checks["capabilities"]["needed"] is True and checks["open-files"]["needed"] is True
