"""The kernel features a lab's CNI conflist needs, read from its plugins' types (Debian's containernetworking-plugins;
a third party's type is not guessed at): the mapping, the lab's needs, the doctor's lines and `up`'s refusal,
against the fake machine of test_doctor.py. The real kernel: tests/integration/test_doctor_cni_links.py (root)."""

from __future__ import annotations

import json

import pytest

from test_doctor import DEFAULT, by_name, install_machine
from netlab import doctor
from netlab.doctor_needs import conflist_needs
from netlab.errors import EnvironmentNotReady
from netlab.model.lab import resolve
from netlab.model.load import load_topology

HOST_LOCAL = {"type": "host-local"}
BANDWIDTH = {"type": "bandwidth", "capabilities": {"bandwidth": True}}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


@pytest.mark.parametrize("plugins, needs", [
    ([{"type": "macvlan", "master": "eth0", "ipam": HOST_LOCAL}], {"macvlan": ["macvlan"]}),
    ([{"type": "ipvlan", "ipam": HOST_LOCAL}], {"ipvlan": ["ipvlan"]}),
    ([{"type": "vlan", "master": "eth0", "vlanId": 5}], {"vlan": ["vlan"]}),
    ([{"type": "ptp", "ipam": HOST_LOCAL}], {"veth": ["ptp"]}),
    ([{"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": True}}],
     {"bridge": ["bridge"], "veth": ["bridge"], "iptables-restore": ["portmap"], "conntrack": ["portmap"],
      "nf_tables": ["portmap"]}),
    ([{"type": "ptp"}, {"type": "firewall"}, {"type": "portmap"}],
     {"veth": ["ptp"], "iptables-restore": ["firewall", "portmap"], "nf_tables": ["firewall", "portmap"],
      "conntrack": ["portmap"]}),
    ([{"type": "ptp"}, {"type": "tuning", "sysctl": {}}, {"type": "host-device"}, {"type": "sbr"}],
     {"veth": ["ptp"]}),
    ([{"type": "my-vendor-cni", "master": "eth0"}, {"type": "macvlan-ish"}], {}),  # not Debian's: not guessed
    ([{"type": "ptp"}, BANDWIDTH], {"veth": ["ptp"]}),  # no pod annotated: bandwidth shapes nothing
    ([{"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 100000}], {"tbf": ["bandwidth"]}),
    ([{"type": "bandwidth", "egressRate": 1000000, "egressBurst": 100000}],
     {"ifb": ["bandwidth"], "tbf": ["bandwidth"]}),
])
def test_each_plugin_type_asks_for_the_links_and_rules_it_makes(plugins, needs):
    assert conflist_needs(plugins) == needs


def test_bandwidth_asks_by_the_pods_annotations_only_when_it_declares_the_capability():
    pods = [None, {"ingressRate": 0, "ingressBurst": 0, "egressRate": 10_000_000, "egressBurst": 4294967295}]
    assert conflist_needs([BANDWIDTH], pods) == {"ifb": ["bandwidth"], "tbf": ["bandwidth"]}
    assert conflist_needs([{"type": "bandwidth"}], pods) == {}  # no capability: containerd hands it nothing
    assert conflist_needs([BANDWIDTH], [{"ingressRate": 5000, "egressRate": 0}]) == {"tbf": ["bandwidth"]}


def conflist_lab(tmp_path, plugins, annotations: str = ""):
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": plugins}))
    path = tmp_path / "t.yaml"
    path.write_text("name: cn\nnetwork:\n  cni: {conflist: n.conflist}\nnodes: [{name: n1}]\n"
                    f"pods: [{{name: a, node: n1{annotations}}}]\n")
    return resolve(load_topology(str(path)))


def test_a_lab_needs_what_its_conflist_makes_and_plain_doctor_checks_none_of_it(tmp_path, machine):
    lab = conflist_lab(tmp_path, [{"type": "ipvlan", "master": "eth0", "ipam": HOST_LOCAL}])
    assert "ipvlan" in doctor.needs(lab) and not {"macvlan", "vlan", "ifb"} & doctor.needs(lab)
    assert not {"macvlan", "ipvlan", "vlan", "ifb"} & doctor.needs(DEFAULT)
    assert not {"macvlan", "ipvlan", "vlan", "ifb"} & set(by_name(doctor.report(DEFAULT, for_this_lab=False)))
    checks = by_name(doctor.report(lab, for_this_lab=True))
    assert checks["ipvlan"].status == doctor.OK and checks["ipvlan"].needed
    assert not {"macvlan", "vlan", "ifb"} & set(checks)


def test_a_kernel_without_the_link_kind_fails_its_line_and_up_refuses_with_it(tmp_path, machine):
    machine.missing |= {"ipvlan"}
    lab = conflist_lab(tmp_path, [{"type": "ipvlan", "master": "eth0", "ipam": HOST_LOCAL}])
    check = by_name(doctor.report(lab, for_this_lab=True))["ipvlan"]
    assert check.status == doctor.FAIL and check.line().startswith("FAIL  kernel ipvlan: ")
    assert "CONFIG_IPVLAN" in check.fix
    with pytest.raises(EnvironmentNotReady) as exc:
        doctor.require_for(lab)
    assert str(exc.value) == check.line() + (f"; asked for by the ipvlan plugin of {tmp_path / 'n.conflist'}: "
                                             "without it `up` would fail at that plugin's ADD (use other plugins, "
                                             "or a kernel that has it)")


def test_an_egress_rate_annotation_needs_ifb(tmp_path, machine):
    machine.missing |= {"ifb"}
    lab = conflist_lab(tmp_path, [{"type": "ptp", "ipam": HOST_LOCAL}, BANDWIDTH],
                       ", annotations: {kubernetes.io/egress-bandwidth: 10M}")
    with pytest.raises(EnvironmentNotReady) as exc:
        doctor.require_for(lab)
    assert str(exc.value).startswith("FAIL  kernel ifb: ") and "CONFIG_IFB" in str(exc.value)
    assert "asked for by the bandwidth plugin of" in str(exc.value)
