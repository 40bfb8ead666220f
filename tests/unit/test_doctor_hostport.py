"""The doctor's "kernel hostPort rules": a builtin lab's hostPorts are portmap's nat rules, which netlab writes
(plan/portmap_rules.py): its multiport dispatch, addrtype jumps, mark match and MARK target, MASQUERADE and DNAT.
The doctor (and up's required checks) loads each in the throwaway namespace when a lab plans them, and a kernel
that lacks one is a line naming what is missing and which pods ask for it, before up changes anything (fake
machine: no root)."""

from __future__ import annotations

import pytest

from netlab import doctor, doctor_netfilter
from netlab.doctor_needs import needs
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features

from test_doctor import DEFAULT, by_name, install_machine, lab_of

HOSTPORTS = lab_of(text="name: hdr\nnodes: [{name: n1}, {name: n2}]\npods:\n"
                        "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, "
                        "hostPort: 18080}, {containerPort: 53, protocol: UDP, hostPort: 5353}]}]}\n"
                        "  - {name: b, node: n2}\n")
PARTS = ("multiport", "addrtype", "mark", "MASQUERADE", "DNAT")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def test_a_lab_with_host_ports_needs_the_rules_and_one_without_does_not():
    assert {"hostport", "iptables-restore"} <= needs(HOSTPORTS)
    assert "hostport" not in needs(DEFAULT)


def test_the_rules_are_loaded_each_on_its_own_in_the_throwaway_namespace(machine):
    checks = by_name(doctor.report(HOSTPORTS, for_this_lab=True))
    assert checks["hostport"].status == doctor.OK, checks["hostport"].line()
    assert checks["hostport"].line() == ("ok    kernel hostPort rules: iptables-restore takes portmap's nat rules "
                                         "(multiport, addrtype, mark and MARK, MASQUERADE, DNAT)")
    _, commands = machine.probes[-1]
    for part in PARTS:
        assert commands[f"hostport:{part}"] == ["/usr/sbin/iptables-restore", "--noflush"]
        text = machine.inputs[-1][f"hostport:{part}"]
        assert text.startswith("*nat\n") and text.endswith("COMMIT\n"), text
    assert "-m multiport --destination-ports" in machine.inputs[-1]["hostport:multiport"]
    assert "-j DNAT --to-destination" in machine.inputs[-1]["hostport:DNAT"]


def test_the_test_hook_fails_up_naming_the_pods_that_ask(machine, monkeypatch):
    monkeypatch.setenv(doctor.MISSING_HOOK, "hostport")
    line = by_name(doctor.report(HOSTPORTS, for_this_lab=True))["hostport"].line()
    assert line.startswith("FAIL  kernel hostPort rules: reported missing by NETLAB_DOCTOR_MISSING (a test hook); "
                           "asked for by pod a's hostPorts 18080/tcp, 5353/udp; fix: modprobe -a xt_multiport xt_addrtype "
                           "xt_mark xt_MASQUERADE xt_nat (CONFIG_NETFILTER_XT_MATCH_MULTIPORT, "), line
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(HOSTPORTS)
    [said] = str(info.value).splitlines()
    assert said.startswith("FAIL  kernel hostPort rules: ") and "pod a's hostPorts 18080/tcp, 5353/udp" in said
    assert said.endswith("; without it `up` cannot write portmap's rules for them (leave out the hostPorts, or run "
                         "on a kernel that has it)"), said
    doctor.require_for(DEFAULT)  # no hostPort: not asked for, not checked
    plain = by_name(doctor.report(DEFAULT, for_this_lab=False))["hostport"]
    assert plain.status == doctor.WARN and "needed only for pods' hostPorts in a builtin lab" in plain.detail


def test_a_kernel_without_some_parts_is_told_which_and_their_modules(machine, monkeypatch):
    real = machine.probe_kernel

    def refusing(*args, **kwargs):
        probe = real(*args, **kwargs)
        for part, what in (("multiport", "match `multiport'"), ("MASQUERADE", "target `MASQUERADE'")):
            if f"hostport:{part}" in probe.outputs:
                probe.outputs[f"hostport:{part}"] = (2, f"iptables-restore v1.8.9 (nf_tables): Couldn't load {what}:"
                                                        "No such file or directory\n\nError occurred at line: 3")
        return probe

    monkeypatch.setattr(features, "probe_kernel", refusing)
    check = by_name(doctor.report(HOSTPORTS, for_this_lab=True))["hostport"]
    assert check.status == doctor.FAIL
    assert check.detail.startswith("iptables-restore refuses portmap's nat rules: the multiport match "
                                   "(iptables-restore v1.8.9 (nf_tables): Couldn't load match `multiport':No such "
                                   "file or directory), the MASQUERADE target ("), check.detail
    assert "asked for by pod a's hostPorts" in check.detail
    assert check.fix == ("modprobe -a xt_multiport xt_MASQUERADE (CONFIG_NETFILTER_XT_MATCH_MULTIPORT, "
                         "CONFIG_NETFILTER_XT_TARGET_MASQUERADE)"), check.fix
    assert not any(m in check.fix for m in ("xt_addrtype", "xt_mark", "xt_nat")), check.fix
    assert set(doctor_netfilter.HOSTPORT_RULES) == set(PARTS)


def test_a_kernel_that_loads_no_module_is_told_to_boot_one_built_with_them(machine, monkeypatch):
    machine.no_modules = "this kernel was built without loadable module support (no /proc/modules)"
    monkeypatch.setenv(doctor.MISSING_HOOK, "hostport")
    check = by_name(doctor.report(HOSTPORTS, for_this_lab=True))["hostport"]
    assert check.fix == ("boot a kernel with CONFIG_NETFILTER_XT_MATCH_MULTIPORT, CONFIG_NETFILTER_XT_MATCH_ADDRTYPE, "
                         "CONFIG_NETFILTER_XT_MARK, CONFIG_NETFILTER_XT_TARGET_MASQUERADE, CONFIG_NETFILTER_XT_NAT "
                         "(modprobe cannot help: this kernel was built without loadable module support (no "
                         "/proc/modules))"), check.fix


def test_the_modules_fixes_are_merged_one_modprobe_and_one_kernel_each_reason_said_once(monkeypatch):
    """hostport_fix merges kernel_fix's data for several parts: the modules modprobe can load in one `modprobe -a`,
    the others in one `boot a kernel with`, each reason why modprobe cannot help said once, in the parts' order."""
    dep = "/lib/modules/R/modules.dep"
    gone = {"xt_multiport": f"this kernel has no module xt_multiport ({dep} does not list it)",
            "xt_mark": "module loading is off until the next boot (kernel.modules_disabled = 1)",
            "xt_nat": "module loading is off until the next boot (kernel.modules_disabled = 1)"}
    monkeypatch.setattr(features, "module_unavailable", lambda module, files=None: gone.get(module))
    monkeypatch.setattr(features, "module_tree_lacks", lambda module, files=None: False)
    assert doctor_netfilter.hostport_fix(list(PARTS)) == (
        "modprobe -a xt_addrtype xt_MASQUERADE (CONFIG_NETFILTER_XT_MATCH_ADDRTYPE, "
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE); boot a kernel with CONFIG_NETFILTER_XT_MATCH_MULTIPORT, "
        f"CONFIG_NETFILTER_XT_MARK, CONFIG_NETFILTER_XT_NAT (modprobe cannot help: {gone['xt_multiport']}; "
        f"{gone['xt_mark']})")
    assert doctor_netfilter.hostport_fix(["DNAT", "multiport"]) == (
        "boot a kernel with CONFIG_NETFILTER_XT_NAT, CONFIG_NETFILTER_XT_MATCH_MULTIPORT (modprobe cannot help: "
        f"{gone['xt_nat']}; {gone['xt_multiport']})")
    assert doctor_netfilter.hostport_fix(["addrtype"]) == "modprobe -a xt_addrtype (CONFIG_NETFILTER_XT_MATCH_ADDRTYPE)"
