"""netlab doctor's judgement and report, against a fake machine (the real one: tests/integration/test_doctor_live.py).

The facts (what the kernel probe saw, which binaries exist, the state
directory) are faked here; what is tested is the verdict per lab, the line
format with its fix, the exit code, and what ``up`` is refused with. The doctor's lines check by check
(each kernel feature, module and tool) are test_doctor_checks.py's.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from netlab import doctor, doctor_netfilter, doctor_verdict
from netlab.cni import check as cni_check, conf as cni_conf
from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.kernel import caps, features, fstype, taskstats
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.model.load import load_topology, parse_yaml, validate_source
from netlab.plan.sysctls import KERNEL_DEVCONF, devconf_keys
from netlab.probe import neighbours, turns
from netlab.realize import netfilter, state_dir
from netlab.services import lifecycle as services_lifecycle
from netlab.workload import echo_log
from netlab.kernel import netns as nsmod, procsys

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(ok  |warn|FAIL|info)  (kernel|tool|host) [^:]+: \S.*$")


def lab_of(path: str | None = None, text: str | None = None):
    if text is not None:
        return resolve(validate_source(parse_yaml(text, "t.yaml")))
    return resolve(load_topology(path))


DEFAULT = lab_of()
HOST_GW = lab_of(str(ROOT / "topologies/host-gw-3node.yaml"))
SERVICES = lab_of(str(ROOT / "topologies/services.yaml"))
NFT_MODE = lab_of(str(ROOT / "tests/unit/golden/kube_proxy/sync_proxy_rules_repeated.yaml"))


# A CNI plugin in miniature: it logs how it was asked, then answers VERSION as Debian's plugins do.
PLUGIN = """#!/bin/sh
echo "$CNI_COMMAND $(cat)" >> "$(dirname "$0")/asked"
[ "$CNI_COMMAND" = VERSION ] || exit 1
echo '{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}'
"""


def fake_plugins(directory: Path, names=cni_check.DEBIAN_PLUGINS, text: str = PLUGIN) -> Path:
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    return directory


class Machine:
    """What the fake machine has; every check passes until a test takes something away."""

    def __init__(self, tmp_path: Path):
        self.missing: set[str] = set()  # kernel features and tool commands
        self.loadable: set[str] = set()  # kernel features whose module is on disk, not loaded
        self.fresh_links: tuple[str, ...] = ()
        # the IPv4 all/default settings a new namespace gets: the kernel's own
        self.devconf = {name: value for key, values in KERNEL_DEVCONF.items()
                        for name, value in zip(devconf_keys(key), values)}
        self.iptables_version = (0, "iptables-restore v1.8.9 (nf_tables)")
        self.thresholds = {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}
        self.entries = 4  # in the machine's neighbour table now
        self.prober: str | None = None  # who holds the probing turn
        self.taskstats = (True, "generic netlink family TASKSTATS (31)")
        self.dir = features.DirFacts("/run/netlab", True, False, True, os.geteuid(), 0o700, "/run/netlab",
                                     1 << 30, False)
        self.br_netfilter = tmp_path / "bridge"
        self.br_netfilter.mkdir()
        self.ipv6 = tmp_path / "ipv6"  # /proc/sys/net/ipv6: the kernel has IPv6 (rmdir: booted without it)
        self.ipv6.mkdir()
        self.probes: list[tuple[set[str], dict]] = []
        self.inputs: list[dict] = []  # each probe: the text fed to its commands' stdin
        self.devconf_asked: list[bool] = []  # each probe: were the host's IPv4 settings read
        self.cni = fake_plugins(tmp_path / "cni")  # Debian's /usr/lib/cni
        self.no_modules: str | None = None  # why modprobe cannot help here (None: it can)
        self.tree_lacks = False  # the kernel loads modules, its tree is here, without the module asked for
        self.nft_json = (0, '{"nftables": [{"metainfo": {"json_schema_version": 1}}]}')  # `nft -j list tables`
        self.library_json: str | None = None  # why libnftables cannot list as JSON (None: it can)
        self.log_cut: int | None = echo_log.FALLOC_FL_PUNCH_HOLE  # how a log starts over in the state folder (tmpfs)

    def probe_kernel(self, wanted, commands=None, timeout=None, devconf=False, inputs=None):
        wanted = set(wanted) | {"netns"}
        self.probes.append((wanted, dict(commands or {})))
        self.inputs.append(dict(inputs or {}))
        self.devconf_asked.append(devconf)
        probe = features.KernelProbe(scratch_netns="net:[1]", fresh_links=self.fresh_links,
                                     devconf=dict(self.devconf) if devconf else None)
        for name in wanted:
            if name in self.loadable:
                probe.features[name] = features.Feature(name, None, f"module for {name} is on disk but not loaded")
            elif name in self.missing:
                probe.features[name] = features.Feature(name, False, "not in this kernel (EOPNOTSUPP: ...)")
            else:
                probe.features[name] = features.Feature(name, True, "created one in a throwaway namespace")
        for name in commands or {}:
            probe.outputs[name] = self.iptables_version
        if "nft-json" in (commands or {}):
            probe.outputs["nft-json"] = self.nft_json
        if "sctp" in (commands or {}):  # iptables-restore --noflush of the SCTP rules (doctor_netfilter.SCTP_RULES)
            probe.outputs["sctp"] = ((2, "iptables-restore v1.8.9 (legacy): Couldn't load match `sctp':No such file "
                                         "or directory") if "xt_sctp" in self.missing else (0, ""))
        return probe

    def binary(self, name: str) -> str:
        if name in self.missing:
            raise EnvironmentNotReady(f"{name} is not installed; run scripts/setup.sh")
        return f"/usr/sbin/{name}"

    def tools(self, backend=None):
        return self.binary("iptables-save"), self.binary("iptables-restore")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def install_machine(tmp_path, monkeypatch) -> Machine:
    """The fake machine, in place of the real one's facts for the doctor (undone by ``monkeypatch``)."""
    m = Machine(tmp_path)
    monkeypatch.setattr(features, "probe_kernel", m.probe_kernel)
    monkeypatch.setattr(features, "directory", lambda path: m.dir)
    monkeypatch.setattr(nsmod, "binary", m.binary)
    monkeypatch.setattr(netfilter, "tools", m.tools)
    monkeypatch.setattr(neighbours, "read_thresholds", lambda: dict(m.thresholds))
    monkeypatch.setattr(neighbours, "table_stats", lambda: neighbours.TableStats(m.entries, 0, 0))
    monkeypatch.setattr(turns, "holder", lambda: m.prober)
    monkeypatch.setattr(taskstats, "available", lambda: m.taskstats)
    monkeypatch.setattr(doctor_netfilter, "library_json", lambda: m.library_json)
    monkeypatch.setattr(doctor_verdict, "BR_NETFILTER_DIR", str(m.br_netfilter))
    monkeypatch.setattr(features, "module_unavailable", lambda module, files=None: m.no_modules)
    monkeypatch.setattr(features, "module_tree_lacks", lambda module, files=None: m.tree_lacks)
    monkeypatch.setattr(procsys, "IPV6_DIR", str(m.ipv6))
    monkeypatch.setattr(state_dir, "STATE_ROOT", "/run/netlab")
    monkeypatch.setattr(echo_log, "log_cut", lambda folder: m.log_cut)  # no file made in the machine's /run/netlab
    monkeypatch.setattr(fstype, "fs_type", lambda path: "tmpfs")
    monkeypatch.setattr(cni_conf, "CNI_BIN_DIR", str(m.cni))
    status = tmp_path / "proc-self-status"  # root with every capability, whoever runs the tests
    status.write_text("Name:\tnetlab\nCapEff:\t000001ffffffffff\n")
    monkeypatch.setattr(caps, "STATUS", str(status))
    monkeypatch.delenv(doctor.MISSING_HOOK, raising=False)
    return m


def by_name(checks) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


# --- what a lab needs ---------------------------------------------------------------------------

def test_needs_follow_the_plan():
    assert {"netns", "veth", "bridge", "vxlan", "br_netfilter", "iptables-restore", "conntrack"} \
        <= doctor.needs(DEFAULT)
    assert "vxlan" not in doctor.needs(HOST_GW)  # routes, no overlay device
    assert "dnsmasq" not in doctor.needs(DEFAULT) and "conntrack-tool" not in doctor.needs(DEFAULT)
    assert {"dnsmasq", "conntrack"} <= doctor.needs(SERVICES)  # the cluster DNS pod, UDP conntrack cleanup (ctnetlink)
    assert "conntrack-tool" not in doctor.needs(SERVICES)  # no lab needs the program: netlab never runs it
    assert not doctor.needs(SERVICES) & {"tbf", "htb", "netem", "nft", "tcpdump"}  # nothing uses them yet


def test_a_lab_in_nftables_mode_needs_nf_tables_and_nft_even_with_legacy_iptables(machine):
    assert {"nf_tables", "nft", "conntrack"} <= doctor.needs(NFT_MODE)
    machine.iptables_version = (0, "iptables-restore v1.8.9 (legacy)")
    machine.missing |= {"nft"}
    checks = by_name(doctor.report(NFT_MODE, for_this_lab=True))
    assert checks["nft"].status == doctor.FAIL and checks["nf_tables"].needed


def test_nf_tables_fails_for_nftables_mode_when_kube_proxys_objects_do_not_load(machine, monkeypatch):
    real = machine.probe_kernel

    def probe(wanted, commands=None, **kw):
        out = real(wanted, commands, **kw)
        out.outputs["nft-kube-proxy"] = (1, "Error: Could not process rule: No such file or directory")
        return out

    monkeypatch.setattr(features, "probe_kernel", probe)
    line = by_name(doctor.report(NFT_MODE, for_this_lab=True))["nf_tables"].line()
    assert line.startswith("FAIL  kernel nf_tables: ") and "kube-proxy's nftables objects do not load (`nft`: " \
        "Error: Could not process rule: No such file or directory)" in line
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["nf_tables"].status == doctor.WARN


LOSSY = resolve(Topology.model_validate({"name": "l", "nodes": [{"name": "n"}], "pods": [
    {"name": "p", "node": "n", "impair": {"eth0": {"loss": "1%"}}}]}))


def test_a_loss_needs_nf_tables_netdev_hooks_and_nft_and_is_refused_up_front_without_them(machine, monkeypatch):
    """A loss is an nftables netdev chain on a device's ingress or egress hook (plan/impair.py): the doctor commits
    such chains in its throwaway namespace, and a lab with a loss is refused before any change where they do not
    load (exit 3, the doctor's line); a lab without one is only warned."""
    assert {"nf_netdev", "nft"} <= doctor.needs(LOSSY) and "nf_netdev" not in doctor.needs(DEFAULT)
    assert "conntrack" not in doctor.needs(LOSSY) - doctor.needs(DEFAULT)  # no kube-proxy table: nothing more
    real = machine.probe_kernel

    def probe(wanted, commands=None, **kw):
        out = real(wanted, commands, **kw)
        if "nf_netdev" in (commands or {}):
            out.outputs["nf_netdev"] = (1, "Error: Could not process rule: Operation not supported")
        return out

    monkeypatch.setattr(features, "probe_kernel", probe)
    line = by_name(doctor.report(LOSSY, for_this_lab=True))["nf_netdev"].line()
    assert line.startswith("FAIL  kernel nf_tables netdev hooks: nft refuses netdev ingress/egress chains with "
                           "numgen (Error: Could not process rule: Operation not supported); needed only for loss "
                           "impairments"), line
    with pytest.raises(EnvironmentNotReady, match="FAIL  kernel nf_tables netdev hooks"):
        doctor.require_for(LOSSY, only=("tbf", "netem", "nf_netdev", "nft"))
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["nf_netdev"].status == doctor.WARN
    doctor.require_for(DEFAULT, only=("tbf", "netem", "nf_netdev", "nft"))  # not needed: not asked


def test_everything_is_what_some_lab_needs():
    labs = [DEFAULT, HOST_GW, SERVICES, NFT_MODE]
    assert set().union(*(doctor.needs(lab) for lab in labs)) <= doctor.EVERYTHING
    assert set(doctor.CHECKS) == set(doctor.TITLES)


# --- up: require_for ----------------------------------------------------------------------------

def test_require_for_raises_the_doctors_lines(machine):
    machine.missing |= {"vxlan", "dnsmasq"}
    expected = [c.line() for c in doctor.report(SERVICES, for_this_lab=True) if c.status == doctor.FAIL]
    assert len(expected) == 2
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(SERVICES)
    assert str(info.value).splitlines() == expected
    assert info.value.exit_code == EXIT_ENVIRONMENT == 3


def test_require_for_checks_only_what_the_lab_needs(machine):
    machine.missing |= {"vxlan", "netem", "nft", "tcpdump", "dnsmasq", "conntrack"}
    machine.thresholds = {"gc_thresh1": 1, "gc_thresh2": 1, "gc_thresh3": 1}
    machine.fresh_links = ("sit0",)
    # A page free: the doctor warns (under 1 MiB), up goes on (only a full folder, 0 B, FAILs and gates it)
    machine.dir = features.DirFacts(**{**machine.dir.__dict__, "free_bytes": 4096})
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(HOST_GW)  # needs conntrack for its NAT rules; none of the rest
    assert [line.split(":")[0] for line in str(info.value).splitlines()] == ["FAIL  kernel conntrack"]
    wanted, commands = machine.probes[-1]
    assert not wanted & {"vxlan", "tbf", "htb", "netem"}  # not even tried
    machine.missing.discard("conntrack")
    doctor.require_for(HOST_GW)


def test_the_checks_of_an_up_run_once_for_it_and_again_for_the_next(machine):
    """doctor.required: up's features (Services' preflight) do not try the kernel again within one up;
    a check that failed is not remembered, and the next up checks afresh."""
    with doctor.required(SERVICES):
        tried = len(machine.probes)
        assert tried == 1
        services_lifecycle.preflight(SERVICES)
        doctor.require_for(SERVICES)
        assert len(machine.probes) == tried
    machine.missing |= {"dnsmasq"}
    with pytest.raises(EnvironmentNotReady):
        services_lifecycle.preflight(SERVICES)  # outside the block: tried again, and it fails
    with pytest.raises(EnvironmentNotReady):
        with doctor.required(SERVICES):
            pass


def test_the_nft_line_says_how_transactions_reach_nft(machine, monkeypatch):
    from netlab.kernel import libnftables

    def nft_line():
        return by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"].line()

    monkeypatch.setenv("NETLAB_NFT", "process")
    assert nft_line() == "ok    tool nft: /usr/sbin/nft; transactions run the program (NETLAB_NFT=process)"
    monkeypatch.delenv("NETLAB_NFT")
    monkeypatch.setattr(libnftables, "load", lambda: None)
    monkeypatch.setattr(libnftables, "load_error", lambda: "libnftables.so.1: cannot open shared object file")
    assert nft_line().endswith("; libnftables.so.1 does not load (libnftables.so.1: cannot open shared object file): "
                               "transactions run the program")


def test_a_bad_nft_choice_fails_the_nft_line_with_its_fix(machine, monkeypatch):
    """Every command on a lab refuses NETLAB_NFT=bogus up front (realize/backend.settings): the doctor fails it too,
    exit 3, on a lab that writes no nft rules and with no nft found, as it does NETLAB_IPTABLES=bogus."""
    monkeypatch.setenv("NETLAB_NFT", "bogus")
    bad = ("NETLAB_NFT='bogus': use library or process (or unset it: the library when it can be loaded, else the "
           "nft program)")
    fix = "unset NETLAB_NFT (the library when it loads, else the nft program), or set it to library or process"
    for lab in (NFT_MODE, DEFAULT):
        line = by_name(doctor.report(lab, for_this_lab=True))["nft"].line()
        assert line == f"FAIL  tool nft: /usr/sbin/nft; {bad}; fix: {fix}"
    machine.missing.add("nft")
    line = by_name(doctor.report(DEFAULT, for_this_lab=True))["nft"].line()
    assert line.startswith("FAIL  tool nft: ") and line.endswith(f"; {bad}; fix: apt-get install nftables "
                                                                "(or sudo ./scripts/setup.sh); " + fix)


def test_services_preflight_is_the_doctors(machine):
    from netlab.services import lifecycle

    machine.missing.add("dnsmasq")
    with pytest.raises(EnvironmentNotReady) as info:
        lifecycle.preflight(SERVICES)
    assert str(info.value) == by_name(doctor.report(SERVICES, for_this_lab=True))["dnsmasq"].line()
    lifecycle.preflight(DEFAULT)  # no DNS pod: dnsmasq is not asked for
    machine.br_netfilter.rmdir()
    with pytest.raises(EnvironmentNotReady, match="^FAIL  kernel br_netfilter: not loaded"):
        lifecycle.preflight(DEFAULT)


def test_hook_can_only_make_checks_fail(machine, monkeypatch):
    monkeypatch.setenv(doctor.MISSING_HOOK, "dnsmasq, vxlan,no-such-check")
    checks = by_name(doctor.report(SERVICES, for_this_lab=True))
    assert checks["dnsmasq"].line() == (f"FAIL  tool dnsmasq: reported missing by {doctor.MISSING_HOOK} (a test hook); "
                                        "fix: apt-get install dnsmasq-base (or sudo ./scripts/setup.sh)")
    assert checks["vxlan"].status == doctor.FAIL
    assert {c.status for n, c in checks.items() if n not in ("dnsmasq", "vxlan")} <= {doctor.OK, doctor.INFO}
    machine.missing.add("tcpdump")
    monkeypatch.setenv(doctor.MISSING_HOOK, "")
    assert by_name(doctor.report(SERVICES, for_this_lab=True))["tcpdump"].status == doctor.WARN


def test_json_has_every_field(machine):
    data = [c.to_json() for c in doctor.report(DEFAULT, for_this_lab=False)]
    json.dumps(data)
    assert {frozenset(c) for c in data} == {frozenset({"title", "name", "status", "detail", "fix", "needed", "items"})}
    assert data[0]["title"] == "kernel network namespaces" and data[0]["needed"] is True


def test_a_state_folder_whose_file_system_cannot_cut_a_log_is_a_warning_up_never_refuses(machine):
    machine.log_cut = None  # NFSv3, 9p: neither collapse nor punch (tried for real: test_echo_log_cut.py)
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["container-logs"]
    assert check.line() == (
        "warn  host container logs: tmpfs (/run/netlab) cannot cut a log's oldest part (no FALLOC_FL_COLLAPSE_RANGE "
        "nor PUNCH_HOLE): a command container's log grows without bound; fix: point NETLAB_STATE_DIR to a folder "
        "on tmpfs, ext4 or XFS")
    doctor.require_for(DEFAULT)  # up goes ahead (it says it once itself as it starts a command container)
    machine.log_cut = echo_log.FALLOC_FL_PUNCH_HOLE
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["container-logs"].line() == (
        "ok    host container logs: tmpfs (/run/netlab): a log past 10 MiB starts over, its oldest part punched into "
        "a hole (FALLOC_FL_PUNCH_HOLE)")


def test_nft_missing_under_netlab_nft_process_names_unsetting_it_where_the_library_loads(machine, monkeypatch):
    """QA mf63 defect 7: with NETLAB_NFT=process and libnftables loading, the fix named only apt-get install
    nftables; unset NETLAB_NFT does too (netlab then needs no program: without_program)."""
    from netlab.kernel import libnftables

    monkeypatch.setenv("NETLAB_NFT", "process")
    monkeypatch.setattr(libnftables, "load", lambda: object())
    machine.missing.add("nft")
    check = by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"]
    assert check.status == doctor.FAIL
    assert check.fix == ("apt-get install nftables (or sudo ./scripts/setup.sh), or unset NETLAB_NFT (netlab then "
                         "writes and reads nftables through libnftables.so.1, which loads here)"), check.fix
    monkeypatch.setattr(libnftables, "load", lambda: None)  # no library either: the program is the one way
    assert by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"].fix == \
        "apt-get install nftables (or sudo ./scripts/setup.sh)"


def test_every_iptables_tool_missing_names_iptables_restore_on_its_line(monkeypatch):
    """QA mf63 defect 7: the line titled `tool iptables-restore` said "iptables-save is not installed"."""
    from netlab.kernel import iptables

    monkeypatch.delenv("NETLAB_IPTABLES", raising=False)
    monkeypatch.setattr(iptables, "find_tool", lambda name: None)  # no iptables tool at all
    monkeypatch.setattr(nsmod, "find_tool", lambda name: None)
    check, argv = doctor_netfilter.iptables_check(True, set())
    assert argv is None and check is not None and check.status == doctor.FAIL
    assert check.detail.startswith("iptables-restore is not installed"), check.detail
