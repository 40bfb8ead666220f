"""A CNI plugin author's bench, against the CNI spec and libcni (root, Debian's bridge, host-local and loopback).

The chain is one wrapper the test writes into its tmp_path (``qcw``): it reads a mode file, may print a line on
stdout, fail, or be killed, and otherwise execs Debian's bridge plugin. Checked with the kernel's view (``ip -j``)
and real traffic (``netlab probe``):

* a DEL or CHECK that exits 0 but prints a line succeeded (libcni reads no stdout of them);
* a re-attach whose DEL fails stops there (no ADD), says so, and the plugin's bridge stays its own; a failed ADD is
  followed by DEL (the pod's veth goes), and the next ``up`` attaches the pod;
* a plugin error with newlines, and a plugin killed by SIGKILL, each on one line;
* a chain without CHECK (0.3.1, disableCheck): a route its result lists, deleted by hand, is drift, and up
  re-attaches the pod (DEL + ADD), which brings it back;
* a conflist that gives only CNI 1.1.0's ``cniVersions``: the highest netlab speaks is the list's version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import as_planned_here, ip, ip_json, lab_namespaces, netlab, up_here
from netlab import Lab
from netlab.api.lab_pods import logged_calls
from netlab.cni.retry import ADD_TRIES
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"

WRAPPER = r"""#!/bin/sh
mode=" $(cat {dir}/mode 2>/dev/null) "
pod=$(echo "$CNI_ARGS" | tr ';' '\n' | sed -n 's/^K8S_POD_NAME=//p')
want() {{ case "$mode" in *" $1:$CNI_COMMAND "*|*" $1:$CNI_COMMAND:$pod "*) return 0;; esac; return 1; }}
if want noise; then echo "debug: qcw doing $CNI_COMMAND"; fi
if want fail; then
  cat >/dev/null
  cat {dir}/error.json
  printf 'qcw stderr one\nqcw stderr two\n' >&2
  exit 1
fi
if want kill; then cat >/dev/null; kill -9 $$; fi
exec {bin}/bridge
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "cnqc", "plugins": [
    {"type": "qcw", "bridge": "qcbr0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ipRanges": True}}]}

# Go's json.Marshal of an error whose details hold iptables' lines: the newlines escaped in the JSON.
ERROR = {"cniVersion": "1.0.0", "code": 100, "msg": "iptables failed",
         "details": "running iptables: exit status 1: iptables v1.8.9: bad rule\nTry iptables -h\n"}


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def _lab(labs, tmp_path: Path, pods: str = "a b", check: bool = True, **conflist):
    lab = labs.name("cn")
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "qcw").write_text(WRAPPER.format(dir=tmp_path, bin=CNI_BIN))
    (tmp_path / "bin" / "qcw").chmod(0o755)
    (tmp_path / "error.json").write_text(json.dumps(ERROR))
    conf = {k: v for k, v in {**CONFLIST, **conflist}.items() if v is not None}  # None: the key left out
    (tmp_path / "net.conflist").write_text(json.dumps(conf))
    text = f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n" \
           "nodes: [{name: n1}]\npods:\n" + "".join(f"  - {{name: {p}, node: n1}}\n" for p in pods.split())
    if check:  # an up that works: in this process (the tests check its plugins, not `up`'s output)
        return lab, labs.up_here(text), None
    path, proc = labs.up(text, check=False)
    return lab, path, proc


def _mode(tmp_path: Path, mode: str) -> None:
    (tmp_path / "mode").write_text(mode)


def _calls(lab: str, pod: str) -> list[tuple[str, str, int | None]]:
    log = logged_calls(lab, Lab(lab).model, pod)  # `cni log -o json POD`'s calls, read in this process
    return [(c["plugin"], c["command"], c["exit_code"]) for c in log]


def _default_route(lab: str, pod: str) -> list[str]:
    return [r.get("gateway", "") for r in ip_json("route", netns=f"{lab}-{pod}") if r["dst"] == "default"]


def _probed(lab: str) -> None:
    """Real traffic: every probe of the lab as expected (exit 0), pod a to b among them."""
    out = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert out["ok"] and any(p["source"] == "a" and p["destination"] == "b" and p["protocol"] == "icmp"
                             for p in out["probes"]), out


def test_a_del_or_check_that_prints_a_line_and_exits_0_succeeds(labs, tmp_path):
    _mode(tmp_path, "noise:CHECK noise:DEL")
    lab, path, _ = _lab(labs, tmp_path, "a b c")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and "CHECK" not in status.stdout, status.stdout  # it said CHECK failed
    again = netlab("up", "-t", path)
    assert "re-attached" not in again.stdout + again.stderr  # every pod was DELed and ADDed again
    assert ("qcw", "CHECK", 0) in _calls(lab, "a")
    # Pod c taken out: its DEL prints a line and exits 0; loopback's DEL runs after it (it was skipped).
    Path(path).write_text(Path(path).read_text().replace("  - {name: c, node: n1}\n", ""))
    removed = netlab("up", "-t", path)
    assert "warning" not in removed.stderr, removed.stderr
    assert _calls(lab, "c")[-2:] == [("qcw", "DEL", 0), ("loopback", "DEL", 0)]
    results = Path(os.environ.get("NETLAB_STATE_DIR") or "/run/netlab", lab, "cni", "results")
    assert sorted(p.name.split("-")[0] for p in results.iterdir()) == ["cni", "cni", "cnqc", "cnqc"]  # a's, b's
    _probed(lab)
    down = netlab("down", "--lab", lab)
    assert "warning" not in down.stderr, down.stderr  # three "CNI DEL ... its output is not JSON"
    assert not lab_namespaces(lab)


def test_a_reattach_whose_del_fails_stops_and_a_failed_add_is_deleted(labs, tmp_path):
    lab, path, _ = _lab(labs, tmp_path)
    ip("route", "del", "default", netns=f"{lab}-a")  # bridge's CHECK now fails for a
    _mode(tmp_path, "fail:DEL:a")
    before = len(_calls(lab, "a"))
    proc = netlab("up", "-t", path, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 4 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("netlab: CNI DEL of pod a: CNI plugin qcw DEL: failed (exit 1): iptables failed ")
    assert "so pod a was not re-attached (CHECK said: " in lines[0] and "Expected Route" in lines[0]
    assert [c[:2] for c in _calls(lab, "a")[before:]] == [("loopback", "CHECK"), ("qcw", "CHECK"), ("qcw", "DEL")]
    assert [ln["ifname"] for ln in ip_json("link", "show", "qcbr0", netns=f"{lab}-n1")] == ["qcbr0"]
    status = netlab("status", "--lab", lab, check=False)
    assert "extra" not in status.stdout and "CHECK of pod a failed" in status.stdout, status.stdout
    _mode(tmp_path, "")
    fixed = netlab("up", "-t", path)  # DEL again, then ADD
    assert "re-attached pod a through CNI" in fixed.stdout and "del link" not in fixed.stdout, fixed.stdout
    assert _default_route(lab, "a") == ["10.244.0.1"]  # the plugin's route back

    # Now the ADD fails: the DEL that follows takes the pod's veth and lease; the bridge stays the plugin's.
    ip("route", "del", "default", netns=f"{lab}-a")
    _mode(tmp_path, "fail:ADD:a")
    before = len(_calls(lab, "a"))
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 4 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    # Each new sandbox's ADD fails (cni/retry.py), then the ADD with the config a had (the same) too: a is left
    # detached, and the line says so
    assert proc.stderr.strip().endswith(
        f"its DEL ran: pod a is not attached (its ADD was tried {ADD_TRIES} times, each a new sandbox after the DEL of "
        "the one before, as the kubelet creates a pod's sandbox again after a FailedCreatePodSandBox; every try failed "
        "so); then its ADD with the config it had before failed too: CNI plugin qcw "
        "ADD: failed (exit 1): iptables failed (running iptables: exit status 1: iptables v1.8.9: bad rule | Try "
        "iptables -h) [code 100]; stderr: qcw stderr one qcw stderr two; rolled back, but for pod a, left detached "
        f"(no eth0: the DEL before its ADD cannot be undone; `{netlab_command(f'up --lab {lab}')}` attaches it again)"), \
        proc.stderr
    failed_add = [("loopback", "ADD"), ("qcw", "ADD"), ("qcw", "DEL"), ("loopback", "DEL")]  # each DELed
    assert [c[:2] for c in _calls(lab, "a")[before:]] == [
        ("loopback", "CHECK"), ("qcw", "CHECK"), ("qcw", "DEL"), ("loopback", "DEL")] + failed_add * (ADD_TRIES + 1)
    assert [ln["ifname"] for ln in ip_json("link", "show", netns=f"{lab}-a")] == ["lo"]  # eth0 went with DEL
    status = netlab("status", "--lab", lab, check=False)
    assert "extra" not in status.stdout and "pod a is not attached through CNI" in status.stdout, status.stdout
    _mode(tmp_path, "")
    up_here(path)
    assert _default_route(lab, "a") == ["10.244.0.1"]
    assert as_planned_here(lab)
    _probed(lab)


@pytest.mark.parametrize("mode,said", [
    ("fail:ADD:b", "CNI plugin qcw ADD: failed (exit 1): iptables failed (running iptables: exit status 1: "
                   "iptables v1.8.9: bad rule | Try iptables -h) [code 100]; stderr: qcw stderr one qcw stderr two"),
    ("kill:ADD:b", "CNI plugin qcw ADD: failed (killed by SIGKILL)")])
def test_a_plugins_error_is_one_line(labs, tmp_path, mode, said):
    _mode(tmp_path, mode)
    lab, _, proc = _lab(labs, tmp_path, check=False)
    assert proc.returncode == 4 and proc.stderr.splitlines() == [
        f"netlab: pod b: {said}; its DEL ran: pod b is not attached (its ADD was tried {ADD_TRIES} times, each a new "
        "sandbox after the DEL of the one before, as the kubelet creates a pod's sandbox again after a "
        "FailedCreatePodSandBox; every try failed so); rolled back (and the lab's CNI log with it: "
        "NETLAB_CNI_LOG=FILE keeps a copy of this run's calls)"], proc.stderr
    assert not lab_namespaces(lab)


def _routes_in(data) -> list:
    """Every route object (a dict with a "dst") anywhere in a JSON document."""
    if isinstance(data, dict):
        return ([data] if "dst" in data else []) + [r for v in data.values() for r in _routes_in(v)]
    return [r for v in data for r in _routes_in(v)] if isinstance(data, list) else []


@pytest.mark.parametrize("conflist,why", [({"cniVersion": "0.3.1"}, "cniVersion 0.3.1 has no CHECK"),
                                          ({"disableCheck": True}, "its conflist sets disableCheck")])
def test_a_route_the_result_lists_is_checked_on_a_chain_without_check(labs, tmp_path, conflist, why):
    lab, path, _ = _lab(labs, tmp_path, **conflist)
    inspect = json.loads(netlab("inspect", "--lab", lab, "a", "--section", "cni", "-o", "json").stdout)
    assert {"dst": "0.0.0.0/0", "gw": "10.244.0.1"} in _routes_in(inspect)  # the result lists the route
    ip("route", "del", "default", netns=f"{lab}-a")
    status = netlab("status", "--lab", lab, check=False)
    said = f"it differs from its chain's cached ADD result: it lacks the route default via 10.244.0.1 ({why})"
    assert status.returncode == 1 and f"cni: pod a: {said}" in status.stdout, status.stdout  # "all as planned"
    before = len(_calls(lab, "a"))
    fixed = netlab("up", "-t", path)
    assert f"re-attached pod a through CNI ({said})" in fixed.stdout, fixed.stdout  # "nothing to change"
    assert [c[:2] for c in _calls(lab, "a")[before:]] == [  # cni-loopback's chain has CHECK; the pod's has none
        ("loopback", "CHECK"), ("qcw", "DEL"), ("loopback", "DEL"), ("loopback", "ADD"), ("qcw", "ADD"),
        ("loopback", "CHECK")]  # the re-attach CHECKed once (the pod's chain: netlab's comparison, no call)
    assert _default_route(lab, "a") == ["10.244.0.1"]
    assert as_planned_here(lab)
    _probed(lab)


def test_a_conflist_with_only_cniversions_runs_at_the_highest_version_netlab_speaks(labs, tmp_path):
    lab, _, _ = _lab(labs, tmp_path, cniVersion=None, cniVersions=["0.4.0", "1.0.0", "9.9.9"])
    log = logged_calls(lab, Lab(lab).model, "a")  # `cni log -o json a`'s calls, read in this process
    add = next(c for c in log if (c["plugin"], c["command"]) == ("qcw", "ADD"))
    assert add["stdin"]["cniVersion"] == "1.0.0" and "cniVersions" not in add["stdin"]
    assert as_planned_here(lab)  # 1.0.0 has CHECK: each plugin agrees
    log = logged_calls(lab, Lab(lab).model, None)
    assert {c["command"] for c in log} == {"ADD", "CHECK"}  # netlab sends no STATUS or GC (README)
    _probed(lab)
