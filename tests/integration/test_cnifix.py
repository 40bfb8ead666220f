"""CNI labs (root, real plugins): CNI_ARGS name the pod's Kubernetes namespace, NETLAB_CNI_TIMEOUT is checked
when used, a changed pod ``ip:`` is named by status and refused by up, and bridge-port-down is refused on a
conflist lab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from breaking import assert_as_planned
from helpers import ip_json, lab_down_here, lab_namespaces, netlab, state_path, write_topology, up_here
from netlab import Lab

pytestmark = pytest.mark.root

ROOT = Path(__file__).parent.parent.parent
BASH = ROOT / "examples" / "cni" / "bash-bridge"


def _name(labs) -> str:
    lab = f"fxd{uuid.uuid4().hex[:5]}"  # 8 characters
    labs.names.append(lab)
    return lab


def cni_calls(lab: str) -> list:
    """The lab's CNI log in this process (`netlab cni log -o json`'s "calls")."""
    return list(Lab(lab).cni_log().calls)


def _topo(lab: str, ip: str) -> str:
    return f"""name: {lab}
network: {{cni: reference}}
namespaces: [{{name: x}}]
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, namespace: x, ip: {ip}}}
  - {{name: b, node: n1}}
"""


def test_reference_lab_namespace_args_timeout_and_a_changed_ip(labs):
    lab = _name(labs)
    path = labs.up_here(_topo(lab, "10.244.0.20"))
    args = {(c.pod, c.plugin): c.env["CNI_ARGS"] for c in cni_calls(lab) if c.command == "ADD"}
    assert "K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;" in args[("a", "bridge")]
    assert "K8S_POD_NAMESPACE=default;K8S_POD_NAME=b;" in args[("b", "bridge")]

    for bad in ("abc", "0", "-1"):
        proc = netlab("status", "--lab", lab, check=False, env={"NETLAB_CNI_TIMEOUT": bad})
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "NETLAB_CNI_TIMEOUT" in proc.stderr and "positive number of seconds" in proc.stderr
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_CNI_TIMEOUT": "abc"})
    assert proc.returncode == 2 and "NETLAB_CNI_TIMEOUT" in proc.stderr and "Traceback" not in proc.stderr

    assert netlab("status", "--lab", lab, check=False).returncode == 0  # the pods' first CHECKs, recorded (first_check)
    state_before = json.loads(Path(state_path(lab, "state.json")).read_text())
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50"), Path(path).name)
    status = netlab("status", "-t", path, check=False)
    assert status.returncode == 1 and "pod a has 10.244.0.20" in status.stdout and "10.244.0.50" in status.stdout
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 2 and "pod a's ip changes from 10.244.0.20 to 10.244.0.50" in proc.stderr
    after = json.loads(Path(state_path(lab, "state.json")).read_text())
    assert after["topology"] == state_before["topology"] and after["extra"] == state_before["extra"]
    addrs = [a["local"] for a in ip_json("addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]]
    assert addrs == ["10.244.0.20"]
    assert_as_planned(lab)  # the running lab is as it was

    # the way the refusal names: out of the file, up; back with the new ip, up
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50").replace(
        "  - {name: a, node: n1, namespace: x, ip: 10.244.0.50}\n", ""), Path(path).name)
    up_here(path)  # the library's up, the CLI's same call: what the refusal names is the way, not the command
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50"), Path(path).name)
    up_here(path)
    addrs = [a["local"] for a in ip_json("addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]]
    assert addrs == ["10.244.0.50"]
    assert_as_planned(lab)


def test_conflist_lab_refuses_bridge_port_down(labs, tmp_path):
    lab = _name(labs)
    for f in ("bash-bridge", "bash-bridge.conflist"):
        shutil.copy2(BASH / f, tmp_path / f)
    assert os.access(tmp_path / "bash-bridge", os.X_OK)
    labs.up_here(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ./bash-bridge.conflist, binDir: .}}}}
nodes: [{{name: n1}}]
pods:
  - {{name: p1, node: n1}}
  - {{name: p2, node: n1}}
""")
    proc = netlab("break", "bridge-port-down", "--lab", lab, "--target", "p2", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "conflist" in proc.stderr
    assert_as_planned(lab)  # nothing changed


def _bash_bridge_lab(labs, tmp_path: Path) -> tuple[str, str]:
    """A lab of examples/cni/bash-bridge (copied beside its file), two pods on one node: (name, file)."""
    lab = _name(labs)
    for f in ("bash-bridge", "bash-bridge.conflist"):
        shutil.copy2(BASH / f, tmp_path / f)
    path = labs.up_here(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ./bash-bridge.conflist, binDir: .}}}}
nodes: [{{name: n1}}]
pods:
  - {{name: p1, node: n1}}
  - {{name: p2, node: n1}}
""")
    return lab, path


def _on_del(tmp_path: Path, shell: str) -> None:
    """From now on the lab's bash-bridge runs ``shell`` first on DEL (then the real plugin, unless it exits)."""
    shutil.move(tmp_path / "bash-bridge", tmp_path / "bash-bridge.real")
    (tmp_path / "bash-bridge").write_text(f"#!/bin/sh\nif [ \"$CNI_COMMAND\" = DEL ]; then {shell}; fi\n"
                                         f"exec {tmp_path / 'bash-bridge.real'}\n")
    (tmp_path / "bash-bridge").chmod(0o755)


def test_a_del_that_fails_on_down_is_a_warning_and_the_lab_still_goes(labs, tmp_path):
    """A plugin whose DEL fails: up of a file without a pod, and down, say so, one warning per pod (what the
    plugin made may be left, in a node that goes anyway), still delete the pods and exit 0; `down -o json` lists
    the same lines under problems."""
    lab, path = _bash_bridge_lab(labs, tmp_path)
    # From now on the plugin refuses DEL, as a plugin whose IPAM store is gone does (CNI's error format).
    refuse = tmp_path / "refuse-del"
    refuse.touch()
    _on_del(tmp_path, f"if [ -e {refuse} ]; then cat >/dev/null; echo '{{\"cniVersion\":\"1.0.0\",\"code\":11,"
                      "\"msg\":\"lease store unreadable\"}'; exit 1; fi")
    text = Path(path).read_text()
    Path(path).write_text(text.replace("  - {name: p2, node: n1}\n", ""))
    proc = netlab("up", "-t", path)
    removed = [ln for ln in proc.stderr.splitlines() if ln.startswith("netlab: warning: CNI DEL of pod p2: ")]
    assert removed and removed[0].startswith("netlab: warning: CNI DEL of pod p2: CNI plugin bash-bridge DEL: failed "
                                             "(exit 1): lease store unreadable [code 11]; "), proc.stderr
    assert "the next up or down runs DEL again" in removed[0] and f"{lab}-p2" not in lab_namespaces(lab)
    # The pod's record is kept, so the next up runs its DEL again: once the plugin takes it, p2 is made anew.
    refuse.unlink()
    Path(path).write_text(text)
    netlab("up", "-t", path)
    assert f"{lab}-p2" in lab_namespaces(lab)
    refuse.touch()
    proc = netlab("down", "--lab", lab)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("netlab: warning: CNI DEL of pod ")]
    assert sorted(warnings) == [f"netlab: warning: CNI DEL of pod {pod}: CNI plugin bash-bridge DEL: failed (exit 1): "
                                "lease store unreadable [code 11]; the lab goes with its nodes and state directory, "
                                "and what its plugins kept goes with them" for pod in ("p1", "p2")], proc.stderr
    assert f"lab {lab} is down (4 namespaces removed)" in proc.stdout  # the node, two pods, the underlay
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))

    labs.up_here(Path(path).read_text())  # again, and down as JSON
    done = json.loads(netlab("down", "--lab", lab, "-o", "json").stdout)
    assert sorted(done["problems"]) == sorted(ln.removeprefix("netlab: warning: ") for ln in warnings)
    assert done["was_up"] and len(done["removed_netns"]) == 4 and not lab_namespaces(lab)


def test_down_detaches_pods_side_by_side(labs, tmp_path):
    """down ran the pods' DELs one after the other (up attaches as many at once as there are cores): a plugin that
    hangs cost its deadline once per pod. Each DEL here writes when it began and ended: they overlap."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: one DEL at a time")
    lab, path = _bash_bridge_lab(labs, tmp_path)
    times = tmp_path / "del-times"
    _on_del(tmp_path, f"echo begin >> {times}; sleep 1; echo end >> {times}")  # then the real DEL
    netlab("down", "--lab", lab)
    marks = [line.split()[0] for line in times.read_text().splitlines()]
    assert marks[:2] == ["begin", "begin"], marks  # the second DEL began before the first ended
    assert not lab_namespaces(lab)


def test_services_follow_the_address_a_conflists_ipam_gives_in_the_same_up(labs, tmp_path):
    """Debian's ptp and host-local with a range of their own (from .100), called by a plugin that leaves out the
    `IP=` of CNI_ARGS (as an IPAM that picks addresses itself does): the pods get other addresses than the
    topology's, and the one `up` makes the Service's rules point at them."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "own-ipam").write_text(
        "#!/bin/sh\nCNI_ARGS=$(printf '%s' \"$CNI_ARGS\" | tr ';' '\\n' | grep -v '^IP=' | paste -sd ';')\n"
        "export CNI_ARGS\nexec /usr/lib/cni/ptp\n")
    (tmp_path / "bin" / "own-ipam").chmod(0o755)
    (tmp_path / "ptp.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "ptp-own", "plugins": [
        {"type": "own-ipam", "mtu": 1450, "ipMasq": False,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"), "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.100"}]]}}]}))
    lab = _name(labs)
    text = f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ptp.conflist, binDir: bin}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}, containers: [{{name: http, ports: [{{containerPort: 8080}}]}}]}}
  - {{name: client, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
    path, proc = labs.up(text, "topo.yaml", "-o", "json")
    web, client = (ip_json("addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0]["local"]
                   for pod in ("web", "client"))
    assert int(web.rsplit(".", 1)[1]) >= 100 and int(client.rsplit(".", 1)[1]) >= 100, (web, client)
    assert f"attached pod web through CNI ({web}; the topology gives 10.244.0.2: what names the pod follows)" in \
        json.loads(proc.stdout)["fixed"], proc.stdout
    assert not proc.stderr, proc.stderr
    rules = subprocess.run(["ip", "netns", "exec", f"{lab}-n1", "iptables-save", "-t", "nat"], check=True,
                           capture_output=True, text=True).stdout
    assert f"--to-destination {web}:8080" in rules, rules
    # The kubelet's hosts file, written before the plugins ran, names the address they gave too.
    assert netlab("exec", "--lab", lab, "web", "--", "hostname", "-i").stdout == f"{web}\n"
    assert_as_planned(lab)
    trace = netlab("trace", "--lab", lab, "client", "10.96.0.20", "--port", "80", check=False)
    assert trace.returncode == 0 and "result: delivered to web" in trace.stdout, trace.stdout + trace.stderr
    assert "nothing to change" in netlab("up", "-t", path).stdout  # nothing for a second up
    lab_down_here(lab)
    proc = labs.up(text)[1]  # up's hint pings an address a pod has, not the topology's
    [hint] = [ln for ln in proc.stdout.splitlines() if ln.startswith(f"try: sudo ip netns exec {lab}-web ping -c1 ")]
    others = [ns for ns in lab_namespaces(lab) if ns not in {f"{lab}-n1", f"{lab}-underlay", f"{lab}-web"}]
    assert len(others) == 2 and hint.rsplit(" ", 1)[1] in {  # the client and kube-dns
        ip_json("addr", "show", "eth0", netns=ns)[0]["addr_info"][0]["local"] for ns in others}, proc.stdout
    lab_down_here(lab)


@pytest.mark.parametrize("version, no_check", [("0.3.1", "cniVersion 0.3.1 has no CHECK"),
                                               ("1.0.0", "its conflist sets disableCheck")])
def test_a_chain_without_check_is_compared_with_its_cached_result(labs, tmp_path, version, no_check):
    """cniVersion 0.3.1 (Flannel's own conflist's) has no CHECK, and a conflist may disable it: status compares the
    pod with the chain's cached ADD result instead, names a deleted eth0, and up re-attaches the pod (DEL + ADD),
    never calling CHECK. With disableCheck nothing looked at the pod: status said "all as planned"."""
    (tmp_path / "old.conflist").write_text(json.dumps({
        "cniVersion": version, "name": "old-net", **({"disableCheck": True} if version == "1.0.0" else {}),
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"), "routes": [{"dst": "0.0.0.0/0"}],
                      "ranges": [[{"subnet": "10.244.0.0/24"}]]}}]}))
    lab = _name(labs)
    path = labs.up_here(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: old.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}]
""")
    assert_as_planned(lab)
    subprocess.run(["ip", "-n", f"{lab}-a", "link", "del", "eth0"], check=True)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    assert (f"cni: pod a: it differs from its chain's cached ADD result: its eth0 is gone ({no_check})"
            in status.stdout), status.stdout
    up = netlab("up", "-t", path)
    assert "re-attached pod a through CNI (it differs from its chain's cached ADD result: its eth0 is gone" in \
        up.stdout, up.stdout
    assert_as_planned(lab)
    [addr] = ip_json("addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]
    assert addr["local"].startswith("10.244.0.")
    commands = [c.command for c in cni_calls(lab) if c.plugin == "bridge"]  # netlab's loopback network is 1.0.0's
    assert commands == ["ADD", "ADD", "DEL", "ADD"], commands
