"""A backend switch (vxlan <-> host-gw) on a running lab says what it does to the running pods' MTU (QA 62k).

netlab's `up` converges a running lab to its file, so it sets the running pods' eth0 (and their host veths) to
the new backend's MTU in place. A real cluster does not: a pod keeps the MTU its CNI ADD gave until it is
recreated; only new pods get the new one. `up` said only "set mtu of link eth0 in NS": now one warning names
the pods, both MTUs and how a real cluster differs. A repair of one pod's MTU set by hand is no switch: no
warning."""

from __future__ import annotations

from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir

TOPO = """name: lbsw
network: {{mode: {mode}}}
nodes:
  - {{name: n1, ip: 192.168.122.2, podCIDR: 10.244.0.0/24}}
  - {{name: n2, ip: 192.168.122.3, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - {{name: b, node: n2, ip: 10.244.1.2}}
"""


def _lab(mode: str):
    return resolve(validate_source(parse_yaml(TOPO.format(mode=mode), "t.yaml")))


def _up(k: FakeKernel, mode: str):
    return lab_up.up(_lab(mode), k, features=(), journal=Journal(k))


def _mtu_warnings(result) -> list[str]:
    return [w for w in result.warnings if "MTU" in w]


def test_a_backend_switch_says_the_running_pods_mtu_changed_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    k = FakeKernel()
    _up(k, "vxlan")
    result = _up(k, "host-gw")
    assert _mtu_warnings(result) == [
        "pods a, b: eth0's MTU set from 1450 to 1500 in place (the backend changed from vxlan to host-gw); on a "
        "real cluster a running pod keeps the MTU its CNI ADD gave until it is recreated, and only new pods get "
        "1500"], result.warnings
    back = _up(k, "vxlan")
    assert _mtu_warnings(back) == [
        "pods a, b: eth0's MTU set from 1500 to 1450 in place (the backend changed from host-gw to vxlan); on a "
        "real cluster a running pod keeps the MTU its CNI ADD gave until it is recreated, and only new pods get "
        "1450"], back.warnings


def test_a_repair_of_one_pods_mtu_is_no_switch(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    k = FakeKernel()
    _up(k, "vxlan")
    k.ns["lbsw-a"].links["eth0"].mtu = 1400
    result = _up(k, "vxlan")
    assert any("mtu" in line for line in result.fixed) and _mtu_warnings(result) == [], result
