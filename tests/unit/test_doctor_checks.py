"""netlab doctor's lines, check by check, against the fake machine of test_doctor.py (the real one:
tests/integration/test_doctor_live.py): every kernel feature and tool present, one missing (needed or not), a
module on disk or not loadable, the iptables backend, sock_diag's advice, a qdisc an impairment asks for, and
the lines' JSON. test_doctor.py has what a lab needs and what ``up`` is refused with.
"""

from __future__ import annotations

import pytest

from netlab import doctor, doctor_needs, doctor_netfilter, doctor_nft, doctor_verdict
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from test_doctor import DEFAULT, HOST_GW, LINE, by_name, install_machine


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


# --- the report ---------------------------------------------------------------------------------

def test_all_present_every_line_ok(machine):
    checks = doctor.report(DEFAULT, for_this_lab=False)
    # what only CNI plugins use, only for a lab whose conflist makes them (test_doctor_conflist_needs.py)
    assert [c.name for c in checks] == [name for name in doctor.CHECKS if name not in doctor.CNI_FEATURES]
    assert {c.status for c in checks} == {doctor.OK, doctor.INFO}
    for check in checks:
        assert LINE.match(check.line()), check.line()
        assert "\n" not in check.line() and "; fix:" not in check.line()
    lines = by_name(checks)
    assert lines["iptables-restore"].line() == (
        "ok    tool iptables-restore: /usr/sbin/iptables-restore, v1.8.9, nft backend")
    assert lines["fallback-tunnels"].line() == "info  host fallback tunnels: a new namespace holds only lo"
    assert lines["ipv6"].line() == ("info  host IPv6: in this kernel; netlab turns it off in every lab namespace "
                                    "(disable_ipv6 = 1)")
    assert lines["host-devconf"].line() == ("info  host IPv4 settings: a new namespace gets the kernel's IPv4 "
                                            "all/default settings")
    # One visit to a throwaway namespace for every kernel feature, with iptables-restore --version run there too.
    # And kube-proxy's nftables objects committed there by nft (the nf_tables line says they load), and nft's JSON
    # listing (status reads a lab's tables so).
    tried = set(features.FEATURES) - set(doctor.CNI_FEATURES)  # what only CNI plugins use: not without a conflist
    assert machine.probes == [(tried, {"iptables-restore": ["/usr/sbin/iptables-restore",
                                                                             "--version"],
                                                        # its backend's tables made (judged for legacy)
                                                        "iptables-tables": ["/usr/sbin/iptables-restore", "--noflush"],
                                                        "dnsmasq-version": ["/usr/sbin/dnsmasq", "--version"],
                                                        "nft-kube-proxy": ["/usr/sbin/nft",
                                                                           doctor_nft.KUBE_PROXY_SHAPE],
                                                        "nf_netdev": ["/usr/sbin/nft", doctor_nft.NETDEV_SHAPE],
                                                        "nft-json": ["/usr/sbin/nft", "-j", "list", "tables"],
                                                        "sctp": ["/usr/sbin/iptables-restore", "--noflush"],
                                                        **{f"hostport:{part}": ["/usr/sbin/iptables-restore",
                                                                                "--noflush"]
                                                           for part in doctor_netfilter.HOSTPORT_RULES}})]
    assert machine.inputs[0]["iptables-tables"] == doctor_netfilter.TABLES_RULES
    assert machine.inputs[0]["sctp"] == doctor_netfilter.SCTP_RULES  # the SCTP rules loaded for real in the namespace
    # and portmap's rules for hostPorts, each part on its own
    assert machine.inputs[0]["hostport:DNAT"] == doctor_netfilter.hostport_input("DNAT")
    assert "kube-proxy's nftables objects (verdict maps, numgen" in lines["nf_tables"].line()


def test_a_missing_feature_fails_when_needed_and_warns_when_not(machine):
    machine.missing |= {"vxlan", "netem", "nft"}
    for_vxlan = by_name(doctor.report(DEFAULT, for_this_lab=True))
    assert for_vxlan["vxlan"].line() == ("FAIL  kernel vxlan: not in this kernel (EOPNOTSUPP: ...); "
                                         "fix: modprobe vxlan (CONFIG_VXLAN), or use network.mode: host-gw")
    for_host_gw = by_name(doctor.report(HOST_GW, for_this_lab=True))
    assert for_host_gw["vxlan"].status == doctor.WARN
    assert for_host_gw["vxlan"].line().endswith("; this lab does not need it; fix: modprobe vxlan (CONFIG_VXLAN), "
                                                "or use network.mode: host-gw")
    # netem: only a lab with a delay needs it; others get a warning that says so and how to get it.
    netem = for_vxlan["netem"]
    assert netem.status == doctor.WARN and netem.line() == (
        "warn  kernel qdisc netem: not in this kernel (EOPNOTSUPP: ...); needed only for delay and jitter "
        "impairments (impair: delay; loss is an nftables netdev rule); fix: modprobe sch_netem (CONFIG_NET_SCH_NETEM; "
        "on Ubuntu in linux-modules-extra-$(uname -r))")
    delayed = resolve(Topology.model_validate({"name": "d", "nodes": [{"name": "n"}], "pods": [
        {"name": "p", "node": "n", "impair": {"eth0": {"delay": "20ms"}}}]}))
    netem = by_name(doctor.report(delayed, for_this_lab=True))["netem"]
    assert netem.status == doctor.FAIL and netem.needed
    with pytest.raises(EnvironmentNotReady, match="FAIL  kernel qdisc netem: not in this kernel"):
        doctor.require_for(delayed, only=("tbf", "netem"))
    assert for_vxlan["nft"].line() == ("warn  tool nft: nft is not installed (netlab looks in /usr/sbin, /usr/bin, /sbin, "
                                       "/bin, /usr/local/sbin and /usr/local/bin, not $PATH); needed only for "
                                       "kube-proxy's nftables "
                                       "mode (cluster.kubeProxyMode: nftables) and loss impairments; tests and "
                                       "learners run it too; fix: "
                                       "apt-get install nftables (or sudo ./scripts/setup.sh)")


def test_a_kernel_that_cannot_load_the_module_is_told_to_be_another(machine):
    """modprobe is no fix on a kernel without module support (this VM's), with loading switched off, or whose
    modules are not on the machine: the doctor says which kernel option the feature needs, and why."""
    machine.missing |= {"vxlan", "netem"}
    machine.no_modules = "this kernel was built without loadable module support (no /proc/modules)"
    checks = by_name(doctor.report(DEFAULT, for_this_lab=True))
    assert checks["vxlan"].fix == ("boot a kernel with CONFIG_VXLAN (modprobe cannot help: this kernel was built "
                                   "without loadable module support (no /proc/modules)), or use network.mode: host-gw")
    assert checks["netem"].fix == ("boot a kernel with CONFIG_NET_SCH_NETEM (modprobe cannot help: this kernel was "
                                   "built without loadable module support (no /proc/modules))")
    # A module the kernel's modules.dep does not list may still come in Ubuntu's extra modules package.
    machine.no_modules = "this kernel has no module sch_netem (/lib/modules/R/modules.dep does not list it)"
    machine.tree_lacks = True
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["netem"].fix == (
        "boot a kernel with CONFIG_NET_SCH_NETEM (modprobe cannot help: this kernel has no module sch_netem "
        "(/lib/modules/R/modules.dep does not list it); on Ubuntu in linux-modules-extra-$(uname -r))")


def test_plain_doctor_requires_every_feature(machine):
    machine.missing.add("dnsmasq")
    checks = by_name(doctor.report(DEFAULT, for_this_lab=False))  # the default lab has no DNS pod...
    assert checks["dnsmasq"].status == doctor.FAIL  # ...but plain `netlab doctor` asks for every feature
    assert checks["dnsmasq"].fix == "apt-get install dnsmasq-base (or sudo ./scripts/setup.sh)"
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["dnsmasq"].status == doctor.WARN


def test_a_loadable_module_is_ok_and_not_tried(machine):
    machine.loadable.add("vxlan")
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["vxlan"]
    assert check.status == doctor.OK and "not loaded" in check.detail


def test_br_netfilter_is_its_sysctl_directory(machine):
    machine.br_netfilter.rmdir()
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["br_netfilter"]
    assert check.status == doctor.FAIL
    assert "same-node Service traffic and NetworkPolicies between pods of one node cannot pass iptables" in \
        check.detail
    assert check.fix.startswith("modprobe br_netfilter (CONFIG_BRIDGE_NETFILTER; note: this also makes the host's "
                                "own bridges call iptables")


@pytest.mark.parametrize("version,backend,needs_nf_tables", [
    ("iptables-restore v1.8.9 (nf_tables)", "nft", True),
    ("iptables-restore v1.8.7 (legacy)", "legacy", False),
])
def test_iptables_backend_decides_whether_nf_tables_is_needed(machine, version, backend, needs_nf_tables):
    machine.iptables_version = (0, version)
    machine.missing.add("nf_tables")
    checks = by_name(doctor.report(DEFAULT, for_this_lab=True))
    assert checks["iptables-restore"].detail.endswith(f"{backend} backend")
    assert checks["nf_tables"].status == (doctor.FAIL if needs_nf_tables else doctor.WARN)
    assert doctor_netfilter.iptables_backend(version) == backend


def test_missing_iptables_restore(machine):
    machine.missing.add("iptables-restore")
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["iptables-restore"]
    assert check.line() == ("FAIL  tool iptables-restore: iptables-restore is not installed; "
                            "fix: apt-get install iptables (or sudo ./scripts/setup.sh)")
    assert "iptables-restore" not in machine.probes[0][1]  # nothing to ask its version


def test_a_bad_backend_choice_says_so(machine, monkeypatch):
    monkeypatch.undo()  # the real netfilter.tools(), which reads NETLAB_IPTABLES
    monkeypatch.setenv("NETLAB_IPTABLES", "bogus")
    check, argv = doctor_netfilter.iptables_check(True, set())
    assert argv is None and check.line() == (
        "FAIL  tool iptables-restore: NETLAB_IPTABLES='bogus': use nft or legacy (or unset it for the system default); "
        "fix: unset NETLAB_IPTABLES (the system's default backend), or set it to nft or legacy")


# --- module files (read-only) -------------------------------------------------------------------

def test_would_load_module_only_when_on_disk_and_not_loaded(tmp_path, monkeypatch):
    (tmp_path / "modules").write_text("vxlan 1234 0 - Live 0x0\nbridge 1 0 - Live 0x0\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/modules.dep").write_text(
        "kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst\n"
        "kernel/net/sched/sch_netem.ko.xz:\nkernel/drivers/net/veth.ko:\n")
    (tmp_path / "lib/modules.builtin").write_text("kernel/drivers/net/veth.ko\n")
    monkeypatch.setattr(features, "PROC_MODULES", str(tmp_path / "modules"))
    monkeypatch.setattr(features, "MODULES_DIR", str(tmp_path / "lib"))
    monkeypatch.setattr(features, "MODULES_DISABLED", str(tmp_path / "disabled"))
    assert features.would_load_module("netem") == "sch_netem"  # on disk, not loaded: trying it would load it
    assert features.would_load_module("vxlan") is None  # loaded
    assert features.would_load_module("veth") is None  # built in
    assert features.would_load_module("htb") is None  # not on disk: nothing to load
    (tmp_path / "disabled").write_text("1\n")
    assert features.would_load_module("netem") is None
    monkeypatch.setattr(features, "PROC_MODULES", str(tmp_path / "absent"))  # no module support at all
    (tmp_path / "disabled").write_text("0\n")
    assert features.would_load_module("netem") is None


def test_why_modprobe_cannot_help(tmp_path, monkeypatch):
    (tmp_path / "modules").write_text("vxlan 1234 0 - Live 0x0\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/modules.dep").write_text("kernel/net/sched/sch_netem.ko.xz:\n")
    (tmp_path / "lib/modules.builtin").write_text("kernel/drivers/net/veth.ko\n")
    monkeypatch.setattr(features, "PROC_MODULES", str(tmp_path / "modules"))
    monkeypatch.setattr(features, "MODULES_DIR", str(tmp_path / "lib"))
    monkeypatch.setattr(features, "MODULES_DISABLED", str(tmp_path / "disabled"))
    for module in ("sch_netem", "vxlan", "veth"):  # on disk, loaded, built in
        assert features.module_unavailable(module) is None
    assert features.module_unavailable("sch_htb") == (f"this kernel has no module sch_htb ({tmp_path}/lib/modules.dep "
                                                      "does not list it)")
    (tmp_path / "disabled").write_text("1\n")
    assert features.module_unavailable("sch_netem") == ("module loading is off until the next boot "
                                                        "(kernel.modules_disabled = 1)")
    (tmp_path / "disabled").write_text("0\n")
    monkeypatch.setattr(features, "MODULES_DIR", str(tmp_path / "gone"))
    assert features.module_unavailable("sch_netem") == (f"this kernel's modules are not on this machine "
                                                        f"({tmp_path}/gone is missing)")
    assert features.module_unavailable("vxlan") is None  # loaded all the same
    monkeypatch.setattr(features, "PROC_MODULES", str(tmp_path / "absent"))
    assert features.module_unavailable("vxlan") == ("this kernel was built without loadable module support "
                                                    "(no /proc/modules)")


def test_sock_diag_is_advice_its_probe_says_which_dump_the_kernel_lacks(monkeypatch):
    """trace's word on a refused packet and inspect's sockets need the kernel's socket dumps; netlab runs
    without them, so the doctor warns, naming what they are for, and never fails a lab for them."""
    from netlab.kernel import sockdiag

    assert "sock_diag" in doctor.ADVISORY and "sock_diag" in doctor.KERNEL
    assert features._probe_sock_diag().available  # this kernel lists them (ss works, unprivileged too)
    monkeypatch.setattr(sockdiag, "bound", lambda conn, proto: None if proto == "udp" else [])
    fact = features._probe_sock_diag()
    assert not fact.available and fact.detail == "the kernel lists no UDP sockets over sock_diag"
    check = doctor_verdict.verdict("sock_diag", False, fact.detail, False, "modprobe inet_diag")
    assert check.status == doctor.WARN and "needed only for trace to say what listens" in check.detail


def test_a_missing_qdisc_says_which_interfaces_ask_for_it_and_what_works_without(machine):
    """Refusing a delay named the kernel module, not the pod and interface that asked for it (nor that loss and
    rate work without netem)."""
    machine.missing |= {"netem"}
    lab = resolve(Topology.model_validate({"name": "d", "nodes": [{"name": "n", "impair": {"cni0": {"rate": "1mbit"}}}],
                                           "pods": [{"name": "p1", "node": "n",
                                                     "impair": {"eth0": {"delay": "10ms", "jitter": "2ms"}}},
                                                    {"name": "p2", "node": "n", "impair": {"eth0": {"loss": "1%"}}}]}))
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(lab, only=("tbf", "netem"))
    (line,) = str(info.value).splitlines()
    assert line.startswith("FAIL  kernel qdisc netem: not in this kernel")
    assert line.endswith("; asked for by p1:eth0 delay 10ms jitter 2ms: without netem, leave out delay and jitter "
                         "(rate and loss need no netem)"), line
    assert doctor_needs.asked_by(lab, "tbf") == ("; asked for by n:cni0 rate 1mbit: without tbf, leave out rate "
                                                 "(delay, jitter and loss need no tbf)")
    assert doctor_needs.asked_by(lab, "vxlan") == ""


def test_the_sctp_check_not_tried_for_a_bad_backend_choice_gives_that_fix_not_apt_get(machine, monkeypatch):
    """QA qr2 4: `warn kernel SCTP rules: not tried: no iptables-restore ...; fix: apt-get install iptables`
    where iptables is installed and NETLAB_IPTABLES named no backend."""
    monkeypatch.undo()  # the real netfilter.tools(), which reads NETLAB_IPTABLES
    monkeypatch.setenv("NETLAB_IPTABLES", "bogus")
    check = doctor_netfilter.sctp_check(features.KernelProbe(), False, set())
    assert check.status == doctor.WARN and check.detail.startswith(
        "not tried: no iptables-restore to load the rules with (NETLAB_IPTABLES='bogus': use nft or legacy"), check
    assert check.fix == "unset NETLAB_IPTABLES (the system's default backend), or set it to nft or legacy"
