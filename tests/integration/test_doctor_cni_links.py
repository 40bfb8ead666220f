"""The link kinds a conflist's plugins make, tried in the doctor's throwaway namespace (root, the real kernel):
the VM netlab is tested on has macvlan and no ipvlan (`ip link add ... type ipvlan`: not supported). An ipvlan
conflist: the doctor's FAIL line, and `up` refuses with it (exit 3) before it makes anything, where it used to
fail at the plugin's ADD and roll back; a macvlan one: ok."""

from __future__ import annotations

import json
import os

import pytest

from helpers import STATE_ROOT, lab_namespaces, netlab, write_topology

pytestmark = pytest.mark.root


def _lab(tmp_path, lab: str, kind: str) -> str:
    mode = "l2" if kind == "ipvlan" else "bridge"
    (tmp_path / f"{kind}.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": f"{kind}-net", "plugins": [
        {"type": kind, "master": "eth0", "mode": mode, "capabilities": {"ips": True},
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}}]}))
    return write_topology(tmp_path, f"name: {lab}\nnetwork: {{cni: {{conflist: {kind}.conflist}}}}\n"
                                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods: [{name: a, node: n1}]\n",
                          f"{kind}.yaml")


def _doctor(path: str) -> tuple[int, dict]:
    proc = netlab("doctor", "-t", path, "-o", "json", check=False)
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def test_an_ipvlan_conflist_on_a_kernel_without_ipvlan_stops_up_before_any_change(labs, tmp_path):
    lab = labs.name("dk")
    path = _lab(tmp_path, lab, "ipvlan")
    code, checks = _doctor(path)
    ipvlan = checks["ipvlan"]
    assert (code, ipvlan["status"], ipvlan["needed"]) == (3, "FAIL", True), ipvlan
    assert ipvlan["detail"] == ("not in this kernel (ENOTSUP: Operation not supported); asked for by the ipvlan plugin "
                                f"of {tmp_path / 'ipvlan.conflist'}"), ipvlan
    assert "CONFIG_IPVLAN" in ipvlan["fix"]
    assert not {"macvlan", "vlan", "ifb"} & set(checks)
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("netlab: FAIL  kernel ipvlan: not in this kernel") and "ipvlan plugin of" in line, line
    assert lab_namespaces(lab) == [] and not os.path.lexists(os.path.join(STATE_ROOT, lab))


def test_a_macvlan_conflist_passes_the_check(tmp_path, labs):
    code, checks = _doctor(_lab(tmp_path, labs.name("dk"), "macvlan"))
    macvlan = checks["macvlan"]
    assert (code, macvlan["status"], macvlan["needed"]) == (0, "ok", True), macvlan
    assert macvlan["detail"] == ("created one on a veth in a throwaway namespace; asked for by the macvlan plugin of "
                                 f"{tmp_path / 'macvlan.conflist'}")
    assert "ipvlan" not in checks
