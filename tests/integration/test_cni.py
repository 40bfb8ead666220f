"""Pods attached through the real CNI (root, real plugins, real namespaces).

``network.cni: reference``: Debian's loopback, bridge and host-local, configured
as Flannel delegates them, over netlab's VXLAN overlay. A user's conflist:
examples/cni/bash-bridge (bash, ip and jq), and plugins that fail or hang.
Every test checks the kernel's own view (``ip -j``) and real traffic (probe,
trace), and that nothing is left: no namespace, no host-local lease outside
the lab's state directory, nothing in /var/lib/cni.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from helpers import NETLAB, as_planned_here, ip, ip_json, lab_namespaces, netlab, state_path, up_here, write_topology
from netlab import Lab
from netlab.api.lab_pods import logged_calls
from netlab.cni.retry import ADD_TRIES

pytestmark = pytest.mark.root

ROOT = Path(__file__).parent.parent.parent
DEFAULT = (ROOT / "topologies" / "default-2node.yaml").read_text()
SERVICES = (ROOT / "topologies" / "services.yaml").read_text()
BASH = ROOT / "examples" / "cni" / "bash-bridge"
CNI_BIN = "/usr/lib/cni"
VAR_LIB_CNI = "/var/lib/cni"


def with_cni(text: str, lab: str, cni: str, old_name: str = "demo") -> str:
    text = text.replace(f"name: {old_name}\n", f"name: {lab}\n", 1)
    if "network:\n" in text:
        return text.replace("network:\n", f"network:\n  cni: {cni}\n", 1)
    return text.replace(f"name: {lab}\n", f"name: {lab}\nnetwork:\n  cni: {cni}\n", 1)


def var_lib_cni() -> list[str]:
    out = []
    for base, dirs, files in os.walk(VAR_LIB_CNI):
        out += [os.path.join(base, f) for f in files]
    return sorted(out)


def calls(lab: str, pod: str | None = None) -> list[dict]:
    """The lab's (or pod's) CNI calls, the ``calls`` of `cni log -o json` (the function it prints, in this process;
    the command itself is test_cni_log_names_its_lab_and_keeps_the_calls_of_a_pod_taken_out's)."""
    return logged_calls(lab, Lab(lab).model, pod)


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def test_reference_lab_is_the_tutorials_and_comes_down_clean(var_lib_cni_alone, labs):
    before = var_lib_cni()
    lab = labs.name("cn")
    labs.up_here(with_cni(DEFAULT, lab, "reference"))
    assert as_planned_here(lab)  # the plan and every plugin's CHECK agree
    probe = netlab("probe", "--lab", lab)
    assert "60/60 probes as expected" in probe.stdout
    trace = netlab("trace", "--lab", lab, "fedora-1", "fedora-2")
    assert "result: delivered to fedora-2" in trace.stdout
    for pod, gw in (("fedora-1", "10.244.0.1"), ("fedora-3", "10.244.0.1"), ("fedora-2", "10.244.1.1")):
        routes = ip_json("route", netns=f"{lab}-{pod}")
        assert sorted((r["dst"], r.get("gateway") or "", r["dev"], r.get("protocol") or "") for r in routes) == sorted([
            ("default", gw, "eth0", ""),
            (gw.rsplit(".", 1)[0] + ".0/24", "", "eth0", "kernel"),
            ("10.244.0.0/16", gw, "eth0", "")]), pod
    # The plugin made the pod: a veth named by the bridge plugin, the planned address from runtimeConfig.ips.
    link = ip_json("-d", "link", "show", "eth0", netns=f"{lab}-fedora-1")[0]
    host = [ln for ln in ip_json("-d", "link", netns=f"{lab}-minikube") if ln["ifname"].startswith("veth")]
    assert len(host) == 2 and all(len(h["ifname"]) == 12 for h in host)  # veth + 8 hex: the plugin's names
    assert link["mtu"] == 1450
    assert [a["local"] for a in ip_json("addr", "show", "eth0", netns=f"{lab}-fedora-4")[0]["addr_info"]] == \
        ["10.244.1.2"]
    # Every call recorded; loopback first, then bridge; host-local's leases in the lab's state dir, the node's own.
    seq = [(c["plugin"], c["command"]) for c in calls(lab, "fedora-1")]
    assert seq[:2] == [("loopback", "ADD"), ("bridge", "ADD")]
    leases = Path(state_path(lab, "cni", "networks", "minikube", "cbr0"))
    assert (leases / "10.244.0.2").read_text().startswith(calls(lab, "fedora-1")[1]["env"]["CNI_CONTAINERID"])
    assert sorted(os.listdir(state_path(lab, "cni", "networks"))) == ["minikube", "minikube-m02"]
    inspect = json.loads(netlab("inspect", "--lab", lab, "fedora-1", "-o", "json").stdout)
    assert inspect["cni"]["ips"][0]["address"] == "10.244.0.2/24"
    # A route deleted by hand: netlab's drift and the plugin's CHECK both say so; up repairs it.
    ip("route", "del", "10.244.0.0/16", netns=f"{lab}-fedora-1")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    assert f"missing: route 10.244.0.0/16 via 10.244.0.1 dev eth0 in {lab}-fedora-1" in status.stdout
    assert "cni: CHECK of pod fedora-1 failed: pod fedora-1: CNI plugin bridge CHECK: failed" in status.stdout
    assert "fedora-3" not in status.stdout
    up_here(str(labs.tmp_path / "topo.yaml"))
    assert as_planned_here(lab)
    # down DELs every pod (bridge, then loopback), and twice is fine.
    netlab("down", "--lab", lab)
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
    assert not os.path.exists(state_path(lab))  # the leases and the cache went with the state dir
    assert var_lib_cni() == before


def test_services_example_with_reference_cni(labs):
    lab = labs.name("cn")
    labs.up_here(with_cni(SERVICES, lab, "reference", old_name="svc"))
    assert as_planned_here(lab)
    probe = netlab("probe", "--lab", lab)
    assert "probes as expected" in probe.stdout and "FAIL" not in probe.stdout
    for svc, want in (("svc/web", "delivered"),):
        assert want in netlab("trace", "--lab", lab, "client", svc, "--proto", "tcp", "--port", "80").stdout
    dns = netlab("exec", "--lab", lab, "client", "--", "getent", "hosts", "web.default.svc.cluster.local")
    assert dns.stdout.split()[0].startswith("10.96.")


# Every plugin answers VERSION, as the spec asks: up asks it first (the doctor's CNI plugins line), as CRI-O's
# libcni ValidateNetworkList does before any pod; ``body`` handles the other commands.
VERSION = ('[ "$CNI_COMMAND" = VERSION ] && { cat >/dev/null; '
           'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\'; exit 0; }\n')


def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    p = bindir / name
    p.write_text("#!/bin/sh\n" + VERSION + body)
    p.chmod(0o755)
    (tmp_path / f"{name}.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "broken", "plugins": [{"type": name}]}))
    return bindir


def _two_pods(lab: str, plugin: str) -> str:
    return (f"name: {lab}\nnetwork:\n  cni: {{conflist: {plugin}.conflist, binDir: bin}}\n"
            "nodes: [{name: n1}, {name: n2}]\n"
            "pods: [{name: p1, node: n1}, {name: p2, node: n2}]\n")


def test_a_failing_add_fails_up_with_the_plugins_msg_and_leaves_nothing(labs, tmp_path):
    marker = tmp_path / "dels"
    _plugin(tmp_path, "failing", f'cat >/dev/null\nif [ "$CNI_COMMAND" = DEL ]; then echo "$CNI_IFNAME" >> {marker}; '
                                 'exit 0; fi\n'
                                 'echo \'{"cniVersion":"1.0.0","code":7,"msg":"no IPs left in 10.244.0.0/24"}\'\n'
                                 'echo "failing: out of addresses" >&2\nexit 1\n')
    lab = labs.name("cn")
    _, proc = labs.up(_two_pods(lab, "failing"), check=False)
    assert proc.returncode == 4, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "CNI plugin failing ADD: failed (exit 1): no IPs left in 10.244.0.0/24 [code 7]" in line
    assert "stderr: failing: out of addresses" in line and "rolled back" in line and "pod p" in line
    assert f"its ADD was tried {ADD_TRIES} times, each a new sandbox after the DEL of the one before" in line, line
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))
    assert marker.read_text().split() == ["eth0"] * (2 * ADD_TRIES)  # every sandbox of both pods is DELed


def test_a_hanging_plugin_times_out_and_the_lab_is_rolled_back(labs, tmp_path):
    _plugin(tmp_path, "hanging", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\nsleep 300 &\nsleep 300\n')
    lab = labs.name("cn")
    t0 = time.monotonic()
    _, proc = labs.up(_two_pods(lab, "hanging"), check=False, env={"NETLAB_CNI_TIMEOUT": "2"})
    assert proc.returncode == 4 and "CNI plugin hanging ADD: timed out" in proc.stderr
    assert time.monotonic() - t0 < 60
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))


def test_bash_bridge_example_passes_probe(labs, tmp_path, capsys):
    lab = labs.name("cn")
    text = (BASH / "topology.yaml").read_text().replace("name: bashcni", f"name: {lab}")
    text = text.replace("./bash-bridge.conflist", str(BASH / "bash-bridge.conflist")).replace(
        "binDir: .", f"binDir: {BASH}")
    labs.up_here(text)
    assert as_planned_here(lab)
    assert "36/36 probes as expected" in netlab("probe", "--lab", lab).stdout
    # The README's Lab.cni_log example, written for this lab, runs as it stands (it named a plugin "chain")
    readme = (BASH.parents[2] / "README.md").read_text()
    (example,) = re.findall(r"What a plugin author checks\n.*?\n\n```python\n(.*?)^```$", readme, re.S | re.M)
    capsys.readouterr()
    exec(compile(example, "README.md", "exec"), {"lab": Lab(lab)})
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "bash-net ['10.244.0.2/24']", printed
    assert any(line.startswith("bash-bridge ADD eth0 0 ") for line in printed), printed
    trace = netlab("trace", "--lab", lab, "web-1", "web-2").stdout
    assert "result: delivered to web-2" in trace
    # The pods' gateway is named by what the plugin's results say (a bridge beside the veth, the pods' gateway).
    # (Its neighbour row: "ARP entry: ..." of an entry web-1 had, or "no ARP entry for ... before the packet" and
    # the who-has trace's capture saw, on a first trace.)
    assert re.search(r"ARP entry(: | for )10\.244\.0\.1 \(node-1 bashbr0\)", trace), trace
    # The plugin made the pod side: its bridge and veth in the node, the address from CNI_ARGS IP=.
    names = {ln["ifname"] for ln in ip_json("link", netns=f"{lab}-node-1")}
    assert "bashbr0" in names and "cni0" not in names
    assert ip_json("route", "show", "default", netns=f"{lab}-web-1")[0]["gateway"] == "10.244.0.1"
    # Its CHECK catches a deleted route; up re-attaches the pod (DEL + ADD).
    ip("route", "del", "default", netns=f"{lab}-web-3")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "CHECK of pod web-3 failed" in status.stdout
    assert "the pod has no default route via 10.244.0.1" in status.stdout
    up = netlab("up", "-t", labs.tmp_path / "topo.yaml")
    assert "re-attached pod web-3 through CNI" in up.stdout
    assert as_planned_here(lab)
    seq = [(c["command"], c["exit_code"]) for c in calls(lab, "web-3") if c["plugin"] == "bash-bridge"]
    # ADD; status: CHECK fails; up: CHECK fails, DEL, ADD, CHECK of that ADD passes; status: CHECK passes.
    assert seq[0] == ("ADD", 0) and seq[-6:] == [("CHECK", 1), ("CHECK", 1), ("DEL", 0), ("ADD", 0), ("CHECK", 0),
                                                 ("CHECK", 0)]


def test_ptp_pods_have_host_routes_and_no_bridge(labs, tmp_path):
    """Debian's ptp: a veth per pod with a /32 route to it in the node, no bridge, over netlab's VXLAN."""
    leases = tmp_path / "leases"
    (tmp_path / "ptp.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "ptp-net", "plugins": [
        {"type": "ptp", "mtu": 1450, "ipMasq": False, "capabilities": {"ips": True, "ipRanges": True},
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(leases)}}]}))
    lab = labs.name("cn")
    labs.up_here(f"name: {lab}\nnetwork:\n  cni: {{conflist: ptp.conflist}}\n"
                 "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
                 "pods: [{name: p1, node: n1}, {name: p2, node: n2}, {name: p3, node: n1}]\n")
    assert as_planned_here(lab)
    assert "36/36 probes as expected" in netlab("probe", "--lab", lab).stdout
    links = ip_json("-d", "link", netns=f"{lab}-n1")
    assert not [ln for ln in links if (ln.get("linkinfo") or {}).get("info_kind") == "bridge"]
    host_routes = {r["dst"]: r["dev"] for r in ip_json("route", netns=f"{lab}-n1") if r["dst"].startswith("10.244.0.")}
    assert set(host_routes) == {"10.244.0.2", "10.244.0.3"} and all(d.startswith("veth") for d in host_routes.values())
    trace = netlab("trace", "--lab", lab, "p1", "p2").stdout
    assert "result: delivered to p2" in trace and "cni0" not in trace
    p2_veth = next(r["dev"] for r in ip_json("route", netns=f"{lab}-n2") if r["dst"] == "10.244.1.2")
    assert f"matched: 10.244.1.2 dev {p2_veth} scope host" in trace  # the host route to the veth
    assert f"arrives from {p2_veth} in {lab}-n2 (its veth peer)" in trace
    netlab("down", "--lab", lab)
    assert not [f for f in os.listdir(leases / "ptp-net") if f.startswith("10.")]  # DEL released every lease


def test_kill_9_during_add_then_down_leaves_nothing(labs, tmp_path):
    """netlab dies mid-ADD: the write-ahead record makes down DEL the pods, and the plugin still
    running in the node's namespace is stopped with the lab's other processes."""
    pids, dels = tmp_path / "pids", tmp_path / "dels"
    _plugin(tmp_path, "slow", f'cat >/dev/null\nif [ "$CNI_COMMAND" = DEL ]; then echo "$CNI_CONTAINERID" >> {dels}; '
                              f'exit 0; fi\necho $$ >> {pids}\nexec sleep 300\n')
    lab = labs.name("cn")
    path = write_topology(tmp_path, _two_pods(lab, "slow"))
    proc = subprocess.Popen(NETLAB + ["up", "-t", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(pids.read_text().split() if pids.exists() else []) < 2:
            time.sleep(0.1)
        plugin_pids = [int(p) for p in pids.read_text().split()]
        assert len(plugin_pids) == 2
    finally:
        proc.kill()
        proc.wait()
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))
    assert len(set(dels.read_text().split())) == 2  # both pods DELed, by their sandbox ids
    for pid in plugin_pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_a_missing_plugin_stops_up_before_any_change(labs, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "gone.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n",
                                                        "plugins": [{"type": "gone"}]}))
    lab = labs.name("cn")
    path, proc = labs.up(_two_pods(lab, "gone"), check=False)
    bindir = tmp_path / "bin"
    line = (f"FAIL  tool CNI plugins: plugin 'gone' not found in {bindir}:/usr/lib/cni (or not executable); loopback "
            f"in /usr/lib/cni answer VERSION and speak cniVersion 1.0.0; fix: put an executable gone that answers "
            f"VERSION for cniVersion 1.0.0 in {bindir} (network.cni.binDir)")
    # a plugin of the file's own (its binDir's) is the file's problem, as validate says it, not the machine's
    # (QA 61 1: up said the doctor's line below, exit 3, with no file or line)
    said = f"{path}:3: network.cni.conflist: plugin 'gone' not found in {bindir}:/usr/lib/cni (or not executable)\n"
    assert (proc.returncode, proc.stderr) == (2, said), proc.stderr
    validate = netlab("validate", "-t", path, check=False)
    assert (validate.returncode, validate.stderr) == (2, said), validate.stderr
    doctor = netlab("doctor", "-t", path, check=False)  # the doctor's line of it, with the fix
    assert doctor.returncode == 3 and line in doctor.stdout.splitlines()
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))


def test_cni_log_names_its_lab_and_keeps_the_calls_of_a_pod_taken_out(labs):
    """`cni log -o json` has the lab's name, as every command's JSON; a pod taken out of the topology is gone from
    the lab but not from its log: `cni log POD` still shows its ADD and the DEL `up` ran when it went; a name neither
    in the lab nor in its log is one line, exit 2."""
    lab = labs.name("hca")
    one = f"name: {lab}\nnetwork: {{cni: reference}}\nnodes: [{{name: n1}}]\npods:\n  - {{name: a, node: n1}}\n"
    path = labs.up_here(one + "  - {name: b, node: n1}\n")
    data = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)
    assert data["lab"] == lab and data["pod"] is None
    assert {c["pod"] for c in data["calls"] if c["command"] == "ADD"} == {"a", "b"}
    write_topology(Path(path).parent, one, Path(path).name)  # b taken out: up runs its plugins' DEL
    up_here(path)
    assert f"{lab}-b" not in lab_namespaces(lab)
    data = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json", "b").stdout)
    assert data["lab"] == lab and data["pod"] == "b"  # the lab's name, as every command's JSON gives it
    gone = data["calls"]  # from the log, though the lab has no pod b any more
    assert [(c["plugin"], c["command"], c["exit_code"]) for c in gone] == [
        ("loopback", "ADD", 0), ("bridge", "ADD", 0), ("bridge", "DEL", 0), ("loopback", "DEL", 0)]
    shown = netlab("cni", "log", "--lab", lab, "b")
    assert "pod b: bridge DEL" in shown.stdout and f"pod b is no longer in lab {lab}" in shown.stderr
    kept = [c["command"] for c in calls(lab, "a")]
    assert kept[:2] == ["ADD", "ADD"] and "DEL" not in kept  # a stays attached
    proc = netlab("cni", "log", "--lab", lab, "zz", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert f"lab {lab} has no pod 'zz', and its CNI log holds no call for one (pods: a; in the log only: b)" \
        in proc.stderr, proc.stderr
