"""The kernel features a lab's CNI conflist needs, read from its plugins' types (Debian's containernetworking-plugins;
a third party's type is not guessed at): the mapping, the lab's needs, the doctor's lines and `up`'s refusal,
against the fake machine of test_doctor.py. The real kernel: tests/integration/test_doctor_cni_links.py (root)."""

from __future__ import annotations

import json

import pytest

from test_doctor import DEFAULT, PLUGIN, by_name, fake_plugins, install_machine
from netlab import doctor
from netlab.doctor_needs import Asker, conflist_needs
from netlab.errors import EnvironmentNotReady
from netlab.model.lab import resolve
from netlab.model.load import load_topology

HOST_LOCAL = {"type": "host-local"}
BANDWIDTH = {"type": "bandwidth", "capabilities": {"bandwidth": True}}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


EGRESS = ("ifb", "tbf", "ingress", "u32", "mirred")  # an ifb, the host veth's ingress qdisc, u32 + mirred to it


def A(plugin: str, field: str = "", pods: tuple[str, ...] = ()) -> Asker:
    return Asker(plugin, field, pods)


@pytest.mark.parametrize("plugins, needs", [
    ([{"type": "macvlan", "master": "eth0", "ipam": HOST_LOCAL}], {"macvlan": [A("macvlan")]}),
    ([{"type": "ipvlan", "ipam": HOST_LOCAL}], {"ipvlan": [A("ipvlan")]}),
    ([{"type": "vlan", "master": "eth0", "vlanId": 5}], {"vlan": [A("vlan")]}),
    ([{"type": "ptp", "ipam": HOST_LOCAL}], {"veth": [A("ptp")]}),
    ([{"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": True}}],
     {"bridge": [A("bridge")], "veth": [A("bridge")], "iptables-restore": [A("portmap")], "conntrack": [A("portmap")],
      "nf_tables": [A("portmap")]}),
    ([{"type": "ptp"}, {"type": "firewall"}, {"type": "portmap"}],
     {"veth": [A("ptp")], "iptables-restore": [A("firewall"), A("portmap")],
      "nf_tables": [A("firewall"), A("portmap")], "conntrack": [A("portmap")]}),
    ([{"type": "ptp"}, {"type": "tuning", "sysctl": {}}, {"type": "host-device"}],
     {"veth": [A("ptp")]}),
    ([{"type": "my-vendor-cni", "master": "eth0"}, {"type": "macvlan-ish"}], {}),  # not Debian's: not guessed
    ([{"type": "ptp"}, BANDWIDTH], {"veth": [A("ptp")]}),  # no pod annotated: bandwidth shapes nothing
    ([{"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 100000}], {"tbf": [A("bandwidth", "ingressRate")]}),
    ([{"type": "bandwidth", "egressRate": 1000000, "egressBurst": 100000}],
     {name: [A("bandwidth", "egressRate")] for name in EGRESS}),
    # vrf: a vrf device in the pod; sbr: policy routing rules there
    ([{"type": "ptp"}, {"type": "vrf", "vrfname": "blue"}], {"veth": [A("ptp")], "vrf": [A("vrf")]}),
    ([{"type": "ptp"}, {"type": "sbr"}], {"veth": [A("ptp")], "fib_rules": [A("sbr")]}),
    # the bridge's vlan or vlanTrunk: a VLAN-filtering bridge; vlan 0 is none, preserveDefaultVlan alone asks nothing
    ([{"type": "bridge", "vlan": 100}],
     {"bridge": [A("bridge")], "veth": [A("bridge")], "vlan_filtering": [A("bridge", "vlan")]}),
    ([{"type": "bridge", "vlanTrunk": [{"minID": 10, "maxID": 20}], "preserveDefaultVlan": False}],
     {"bridge": [A("bridge")], "veth": [A("bridge")], "vlan_filtering": [A("bridge", "vlanTrunk")]}),
    ([{"type": "bridge", "vlan": 0, "preserveDefaultVlan": False}], {"bridge": [A("bridge")], "veth": [A("bridge")]}),
])
def test_each_plugin_type_and_field_asks_for_what_it_makes(plugins, needs):
    assert conflist_needs(plugins) == needs


def test_bandwidth_asks_by_the_pods_annotations_only_when_it_declares_the_capability():
    pods = {"a": None, "b": {"ingressRate": 0, "ingressBurst": 0, "egressRate": 10_000_000, "egressBurst": 4294967295},
            "c": {"ingressRate": 0, "egressRate": 5000}}
    assert conflist_needs([BANDWIDTH], pods) == {name: [A("bandwidth", "egressRate", ("b", "c"))] for name in EGRESS}
    assert conflist_needs([{"type": "bandwidth"}], pods) == {}  # no capability: containerd hands it nothing
    assert conflist_needs([BANDWIDTH], {"a": {"ingressRate": 5000, "egressRate": 0}}) == {
        "tbf": [A("bandwidth", "ingressRate", ("a",))]}
    both = conflist_needs([{**BANDWIDTH, "egressRate": 8000, "egressBurst": 8000}], pods)
    assert both["mirred"] == [A("bandwidth", "egressRate"), A("bandwidth", "egressRate", ("b", "c"))]


def test_an_askers_words_name_its_plugin_field_and_pods():
    assert A("vrf").words() == "the vrf plugin"
    assert A("bridge", "vlan").words() == "the bridge plugin's vlan"
    assert A("bandwidth", "egressRate", ("a",)).words() == (
        "the bandwidth plugin's egressRate (the kubernetes.io/egress-bandwidth of pod a)")
    assert A("bandwidth", "ingressRate", tuple("abcde")).words() == (
        "the bandwidth plugin's ingressRate (the kubernetes.io/ingress-bandwidth of pods a, b, c and 2 more)")
    assert A("bandwidth", "egressRate", ("a",)).to_json() == {"plugin": "bandwidth", "field": "egressRate",
                                                              "pods": ["a"]}


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
    assert check.line() == (f"FAIL  kernel ipvlan: not in this kernel (EOPNOTSUPP: ...); asked for by the ipvlan "
                            f"plugin of {tmp_path / 'n.conflist'}; fix: modprobe ipvlan (CONFIG_IPVLAN)")
    with pytest.raises(EnvironmentNotReady) as exc:
        doctor.require_for(lab)
    assert str(exc.value) == check.line() + ("; without it `up` would fail at that plugin's ADD (use other plugins, "
                                             "or a kernel that has it)")


def test_an_egress_rate_annotation_needs_the_ifb_and_the_redirect_to_it(tmp_path, machine):
    machine.missing |= {"ifb", "mirred"}
    lab = conflist_lab(tmp_path, [{"type": "ptp", "ipam": HOST_LOCAL}, BANDWIDTH],
                       ", annotations: {kubernetes.io/egress-bandwidth: 10M}")
    assert {"ifb", "tbf", "ingress", "u32", "mirred"} <= doctor.needs(lab)
    checks = by_name(doctor.report(lab, for_this_lab=True))
    who = ("asked for by the bandwidth plugin's egressRate (the kubernetes.io/egress-bandwidth of pod a) of "
           f"{tmp_path / 'n.conflist'}")
    assert checks["mirred"].line() == (f"FAIL  kernel tc action mirred: not in this kernel (EOPNOTSUPP: ...); {who}; "
                                       "fix: modprobe act_mirred (CONFIG_NET_CLS_ACT, CONFIG_NET_ACT_MIRRED)")
    assert checks["u32"].line() == f"ok    kernel tc filter u32: created one in a throwaway namespace; {who}"
    assert checks["ingress"].status == doctor.OK and checks["ingress"].title == "kernel qdisc ingress"
    assert checks["u32"].to_json()["items"] == [{"plugin": "bandwidth", "field": "egressRate", "pods": ["a"]}]
    with pytest.raises(EnvironmentNotReady) as exc:
        doctor.require_for(lab)
    ifb, mirred = str(exc.value).splitlines()
    assert ifb.startswith("FAIL  kernel ifb: ") and "CONFIG_IFB" in ifb and who in ifb
    assert mirred == checks["mirred"].line() + ("; without it `up` would fail at that plugin's ADD (leave out "
                                                "egressRate, or use a kernel that has it)")


def test_a_vlan_bridge_needs_vlan_filtering_which_no_module_gives(tmp_path, machine):
    machine.missing |= {"vlan_filtering"}
    machine.no_modules = "this kernel was built without loadable module support (no /proc/modules)"
    lab = conflist_lab(tmp_path, [{"type": "bridge", "vlan": 100, "ipam": HOST_LOCAL}])
    check = by_name(doctor.report(lab, for_this_lab=True))["vlan_filtering"]
    assert check.line() == (f"FAIL  kernel bridge VLAN filtering: not in this kernel (EOPNOTSUPP: ...); asked for by "
                            f"the bridge plugin's vlan of {tmp_path / 'n.conflist'}; fix: boot a kernel with "
                            "CONFIG_BRIDGE_VLAN_FILTERING and CONFIG_VLAN_8021Q (modprobe cannot help: VLAN "
                            "filtering is an option the bridge was built with, not a module)")
    with pytest.raises(EnvironmentNotReady, match=r"ADD \(leave out vlan, or use a kernel that has it\)$"):
        doctor.require_for(lab)
    plain = conflist_lab(tmp_path, [{"type": "bridge", "preserveDefaultVlan": False, "ipam": HOST_LOCAL}])
    assert "vlan_filtering" not in by_name(doctor.report(plain, for_this_lab=True))
    doctor.require_for(plain)


def test_vrf_and_sbr_need_the_vrf_device_and_policy_rules(tmp_path, machine):
    machine.missing |= {"vrf"}
    machine.no_modules = "this kernel was built without loadable module support (no /proc/modules)"
    lab = conflist_lab(tmp_path, [{"type": "ptp", "ipam": HOST_LOCAL}, {"type": "vrf", "vrfname": "blue"},
                                  {"type": "sbr"}])
    checks = by_name(doctor.report(lab, for_this_lab=True))
    assert checks["vrf"].status == doctor.FAIL and checks["vrf"].fix == (
        "boot a kernel with CONFIG_NET_VRF (modprobe cannot help: this kernel was built without loadable module "
        "support (no /proc/modules))")
    assert checks["fib_rules"].line() == ("ok    kernel policy routing rules: created one in a throwaway namespace; "
                                          "created one in a throwaway namespace; asked for by the sbr plugin of "
                                          f"{tmp_path / 'n.conflist'}")  # the fake's words for the IPv4 and IPv6 rules
    assert not {"vrf", "fib_rules", "vlan_filtering", "ingress", "u32", "mirred"} & set(
        by_name(doctor.report(DEFAULT, for_this_lab=False)))
    with pytest.raises(EnvironmentNotReady) as exc:
        doctor.require_for(lab)
    assert str(exc.value).startswith("FAIL  kernel vrf: ") and "asked for by the vrf plugin of" in str(exc.value)


def test_sbr_without_ipv6_rules_is_a_warning_that_says_so(tmp_path, machine):
    """sbr adds a rule for each of a pod's addresses, an IPv6 one too: the doctor tried IPv4 rules only, so a kernel
    without IPv6 policy routing (CONFIG_IPV6_MULTIPLE_TABLES, or booted with ipv6.disable=1) looked whole."""
    lab = conflist_lab(tmp_path, [{"type": "ptp", "ipam": HOST_LOCAL}, {"type": "sbr"}])
    checks = by_name(doctor.report(lab, for_this_lab=True))
    assert checks["fib_rules"].line() == ("ok    kernel policy routing rules: created one in a throwaway namespace; "
                                          "created one in a throwaway namespace; asked for by the sbr plugin of "
                                          f"{tmp_path / 'n.conflist'}")  # the fake's words for both tries
    assert "fib_rules6" in machine.probes[-1][0]  # tried beside the IPv4 rule
    machine.missing |= {"fib_rules6"}
    check = by_name(doctor.report(lab, for_this_lab=True))["fib_rules"]
    assert check.line() == (
        "warn  kernel policy routing rules: created one in a throwaway namespace; IPv6 rules missing: an IPv6 rule "
        "(from fd00::1 lookup 100): not in this kernel (EOPNOTSUPP: ...), so the sbr plugin's ADD fails for a pod "
        f"given an IPv6 address (an IPv4 one works); asked for by the sbr plugin of {tmp_path / 'n.conflist'}; fix: "
        "boot a kernel with CONFIG_IPV6_MULTIPLE_TABLES and IPv6 (no ipv6.disable=1) (modprobe cannot help: IPv6 "
        "policy routing is part of the kernel's IPv6 routing, not a module)")
    assert check.needed and "fib_rules6" not in by_name(doctor.report(lab, for_this_lab=True))  # no line of its own
    doctor.require_for(lab)  # the lab's pods are IPv4: up goes on
    machine.missing |= {"fib_rules"}  # no rules at all: the IPv4 failure is the line, as before
    assert by_name(doctor.report(lab, for_this_lab=True))["fib_rules"].status == doctor.FAIL


TRUNK = {"type": "bridge", "vlanTrunk": [{"minID": 10, "maxID": 20}], "ipam": HOST_LOCAL}


def binned_lab(tmp_path, plugins, bridge: str = PLUGIN):
    """A conflist lab whose plugins come from its own binDir (first in CNI_PATH): fakes, the bridge's text given."""
    fake_plugins(tmp_path / "bin", ("loopback", "host-local"))
    fake_plugins(tmp_path / "bin", ("bridge",), bridge)
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": plugins}))
    path = tmp_path / "t.yaml"
    path.write_text("name: cn\nnetwork:\n  cni: {conflist: n.conflist, binDir: bin}\nnodes: [{name: n1}]\n"
                    "pods: [{name: a, node: n1}]\n")
    return resolve(load_topology(str(path)))


def test_a_vlan_trunk_the_bridge_plugin_does_not_read_asks_for_nothing_and_is_said(tmp_path, machine):
    """Debian 12's bridge (1.1.1) has no vlanTrunk (upstream's since v1.3.0): it makes a plain bridge whatever the
    trunk says. The doctor counted the field as needing VLAN filtering and refused the conflist on a kernel
    without it, for a feature the plugin would never use. The fake bridge, like 1.1.1's, has no
    `json:"vlanTrunk"` tag; the real plugin: tests/integration/test_doctor_cni_needs_live.py."""
    machine.missing |= {"vlan_filtering"}
    machine.no_modules = "this kernel was built without loadable module support (no /proc/modules)"
    lab = binned_lab(tmp_path, [TRUNK])
    checks = by_name(doctor.report(lab, for_this_lab=True))
    assert "vlan_filtering" not in checks and "vlan_filtering" not in doctor.needs(lab)
    assert checks["cni-plugins"].line() == (
        f"warn  tool CNI plugins: loopback, bridge, host-local in {tmp_path / 'bin'} answer VERSION and speak "
        f"cniVersion 1.0.0; the bridge plugin {tmp_path / 'bin' / 'bridge'} reads no vlanTrunk (added in "
        f"containernetworking-plugins v1.3.0; its binary has no json:\"vlanTrunk\" tag: an older build): the vlanTrunk "
        f"of {tmp_path / 'n.conflist'} has no "
        "effect, its pods' ports get no VLANs and the bridge no VLAN filtering; fix: leave out vlanTrunk, or put a "
        "bridge plugin "
        "of containernetworking-plugins v1.3.0 or newer in network.cni.binDir")
    doctor.require_for(lab)  # up goes on: nothing it needs is missing
    # vlan, which 1.1.1 reads, still needs VLAN filtering beside it
    both = binned_lab(tmp_path, [{**TRUNK, "vlan": 100}])
    check = by_name(doctor.report(both, for_this_lab=True))["vlan_filtering"]
    assert check.status == doctor.FAIL and check.items == ({"plugin": "bridge", "field": "vlan", "pods": []},)
    with pytest.raises(EnvironmentNotReady, match=r"ADD \(leave out vlan, or use a kernel that has it\)$"):
        doctor.require_for(both)


def test_a_vlan_beside_an_unread_trunk_is_not_fixed_by_a_newer_bridge_alone(tmp_path, machine):
    """A bridge that reads vlanTrunk refuses it beside a vlan ("cannot set vlan and vlanTrunk at the same time"):
    the fix said to put a newer one in binDir, which fails every ADD of this conflist."""
    check = by_name(doctor.report(binned_lab(tmp_path, [{**TRUNK, "vlan": 100}]), for_this_lab=True))["cni-plugins"]
    assert check.status == doctor.WARN and "refuses it beside a vlan" in check.detail, check.detail
    assert check.fix == ("leave out vlanTrunk, or leave out vlan and put a bridge plugin of containernetworking-plugins "
                         "v1.3.0 or newer in network.cni.binDir")


def test_a_bridge_plugin_that_reads_vlan_trunk_needs_vlan_filtering_for_it(tmp_path, machine):
    machine.missing |= {"vlan_filtering"}
    lab = binned_lab(tmp_path, [TRUNK], PLUGIN + '# type NetConf struct { Vlans []*VlanTrunk `json:"vlanTrunk"` }\n')
    checks = by_name(doctor.report(lab, for_this_lab=True))
    assert checks["cni-plugins"].status == doctor.OK
    assert checks["vlan_filtering"].status == doctor.FAIL and "the bridge plugin's vlanTrunk of" in \
        checks["vlan_filtering"].detail
    with pytest.raises(EnvironmentNotReady, match=r"ADD \(leave out vlanTrunk, or use a kernel that has it\)$"):
        doctor.require_for(lab)


def test_reads_field_finds_a_go_struct_tag(tmp_path):
    from netlab.cni.fields import reads_field

    (tmp_path / "new").write_bytes(b'\0\0`json:"vlan"`\0`json:"vlanTrunk,omitempty"`\0')
    (tmp_path / "old").write_bytes(b'\0\0`json:"vlan"`\0`json:"hairpinMode"`\0')
    (tmp_path / "empty").write_bytes(b"")
    assert reads_field(str(tmp_path / "new"), "vlanTrunk") is True
    assert reads_field(str(tmp_path / "old"), "vlanTrunk") is False and reads_field(str(tmp_path / "old"), "vlan")
    assert reads_field(str(tmp_path / "empty"), "vlan") is None and reads_field(str(tmp_path / "nope"), "vlan") is None
