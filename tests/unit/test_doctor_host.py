"""netlab doctor's lines on the host itself, against a fake machine (test_doctor.py has the lab's needs; the real
machine: tests/integration/test_doctor_live.py): the shared neighbour table, taskstats, IPv6, the fallback
tunnels, the state directory, and the IPv4 settings the host gives new namespaces.

The facts (what the kernel probe saw, which binaries exist, the state
directory) are faked here; what is tested is the verdict per lab, the line
format with its fix, the exit code, and what ``up`` is refused with.
"""

from __future__ import annotations

import pytest

from netlab import doctor
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features
from netlab.probe import neighbours
from test_doctor import DEFAULT, by_name, install_machine, lab_of


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def test_neighbour_table_is_sized_with_the_lab(machine):
    pods = "".join(f"  - {{name: p{i}, node: a}}\n" for i in range(40))
    big = lab_of(text=f"name: big\nnodes: [{{name: a}}]\npods:\n{pods}")
    assert neighbours.full_mesh_entries(big) == 40 * 39 + 80
    check = by_name(doctor.report(big, for_this_lab=True))["neighbours"]
    assert check.status == doctor.WARN
    assert "gc_thresh1/2/3 = 128/512/1024" in check.detail and "lab big needs up to 1640 entries" in check.detail
    assert check.fix == ("sudo sysctl -w net.ipv4.neigh.default.gc_thresh3=4096 net.ipv4.neigh.default.gc_thresh2=2048 "
                         "net.ipv4.neigh.default.gc_thresh1=512")
    machine.thresholds = {"gc_thresh1": 512, "gc_thresh2": 2048, "gc_thresh3": 4096}
    assert by_name(doctor.report(big, for_this_lab=True))["neighbours"].status == doctor.OK


def test_the_neighbour_check_says_how_full_the_table_is_now_and_who_is_probing(machine):
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["neighbours"]
    # 14: the nodes' 2 on the underlay too
    assert check.status == doctor.OK and check.detail.endswith("needs up to 14 entries; 4 entries in it now")
    machine.prober = "pid 77 (netlab probe of lab other)"
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["neighbours"]
    assert check.status == doctor.OK
    assert check.detail.endswith("; 4 entries in it now; pid 77 (netlab probe of lab other) holds the probing turn "
                                 "now: other probes wait for it")
    machine.entries = 600  # past gc_thresh2: somebody's traffic is making the kernel evict entries
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["neighbours"]
    assert check.status == doctor.WARN and not check.fix
    assert "; 600 entries in it now (past gc_thresh2: the kernel is evicting entries to make room)" in check.detail


def test_taskstats_is_advice_for_the_watcher(machine):
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["taskstats"]
    assert check.line() == ("ok    host taskstats: generic netlink family TASKSTATS (31): up --watch reads how "
                            "containers it did not start exited")
    machine.taskstats = (False, "the kernel has no TASKSTATS family (CONFIG_TASKSTATS)")
    checks = doctor.report(DEFAULT, for_this_lab=False)
    check = by_name(checks)["taskstats"]
    assert check.status == doctor.WARN and check.fix == "a kernel built with CONFIG_TASKSTATS"
    assert "restartPolicy OnFailure restarts them whatever their exit status" in check.detail
    assert not [c for c in checks if c.status == doctor.FAIL]  # up and doctor go on without it
    doctor.require_for(DEFAULT)  # up is never stopped for it


def test_a_kernel_without_ipv6_is_information(machine):
    machine.ipv6.rmdir()
    checks = doctor.report(DEFAULT, for_this_lab=False)
    check = by_name(checks)["ipv6"]
    assert check.line() == ("info  host IPv6: not in this kernel (booted with ipv6.disable=1, or built without it): "
                            "lab namespaces have none, as netlab wants them")
    assert not [c for c in checks if c.status in (doctor.FAIL, doctor.WARN)]
    doctor.require_for(DEFAULT)  # up goes on: nothing to fix


def test_fallback_tunnels_are_information(machine):
    machine.fresh_links = ("gre0", "sit0", "tunl0")
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["fallback-tunnels"]
    assert check.status == doctor.INFO
    assert "a new namespace already holds gre0, sit0, tunl0 besides lo" in check.line()


@pytest.mark.parametrize("facts,expect,fix", [
    (dict(symlink=True, is_dir=False), "/run/netlab is a symlink; netlab refuses to use it", "remove it (rm /run/netlab)"),
    (dict(is_dir=False), "/run/netlab is not a directory", "remove it (rm /run/netlab)"),
    (dict(uid=1000), "/run/netlab is owned by uid 1000, not by root", "remove it (rm -r /run/netlab) and let netlab make it"),
    (dict(mode=0o777), "/run/netlab is group- or world-writable (mode 0777)", "chmod 700 /run/netlab"),
    (dict(read_only=True), "/run/netlab is on a read-only filesystem", "point NETLAB_STATE_DIR to a writable directory"),
])
def test_state_directory_must_be_safe_to_use(machine, facts, expect, fix):
    machine.dir = features.DirFacts(**{**machine.dir.__dict__, **facts})
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["state-dir"]
    assert (check.status, check.detail, check.fix) == (doctor.FAIL, expect, fix)


ELSEWHERE = "point NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode 0700, if it is not there)"


@pytest.mark.parametrize("facts", [dict(symlink=True, is_dir=False), dict(is_dir=False), dict(uid=1000)])
def test_a_state_directory_the_user_named_is_never_to_be_removed(machine, monkeypatch, facts):
    """NETLAB_STATE_DIR=/proc/self (a symlink), =/etc/passwd, =$HOME: the fix was `rm /proc/self`, `rm /etc/passwd`,
    `rm -r $HOME`. What the user named is theirs; the fix is to name another directory (QA "qc", defect 10)."""
    from netlab.realize import state_dir

    monkeypatch.setattr(state_dir, "STATE_ROOT", "/proc/self")
    machine.dir = features.DirFacts(**{**machine.dir.__dict__, "path": "/proc/self", **facts})
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["state-dir"]
    assert check.status == doctor.FAIL and check.detail.startswith("/proc/self ")
    assert check.fix == ELSEWHERE and "rm" not in check.fix


def test_state_directory_others_may_read(machine):
    assert by_name(doctor.report(DEFAULT, True))["state-dir"].detail == "/run/netlab, root-only (mode 0700)"
    machine.dir = features.DirFacts(**{**machine.dir.__dict__, "mode": 0o755})
    check = by_name(doctor.report(DEFAULT, True))["state-dir"]
    assert (check.status, check.detail) == (doctor.OK, "/run/netlab, writable only by root (mode 0755)")


def test_state_directory_to_be_made_and_free_space(machine):
    machine.dir = features.DirFacts("/run/netlab", False, measured="/run", free_bytes=10 << 20, read_only=False)
    checks = by_name(doctor.report(DEFAULT, for_this_lab=True))
    assert checks["state-dir"].line() == "ok    host state directory: /run/netlab will be made (mode 0700) on /run"
    assert checks["state-space"].status == doctor.WARN and checks["state-space"].detail.startswith("10.0 MiB free on /run")
    # Under 1 MiB a lab may still fit (a small one is up with 64 KiB; an up that runs out is rolled back): a warning,
    # which `up` does not refuse; full (under a page: not even the first state write fits), a FAIL, and up refuses
    # with it (QA q50 4: the doctor FAILed under 1 MiB and `up` went ahead and worked).
    machine.dir = features.DirFacts("/run/netlab", False, measured="/run", free_bytes=4096, read_only=False)
    space = by_name(doctor.report(DEFAULT, for_this_lab=True))["state-space"]
    assert space.status == doctor.WARN and "an up that runs out of space fails and is rolled back" in space.detail
    doctor.require_for(DEFAULT)
    machine.dir = features.DirFacts("/run/netlab", False, measured="/run", free_bytes=1000, read_only=False)
    space = by_name(doctor.report(DEFAULT, for_this_lab=True))["state-space"]
    assert space.line() == ("FAIL  host state free space: 1000 B free on /run (full: not even a lab's first state write "
                            "fits); fix: free space there, or point NETLAB_STATE_DIR to a larger filesystem")
    with pytest.raises(EnvironmentNotReady, match="^FAIL  host state free space: 1000 B free on /run"):
        doctor.require_for(DEFAULT)


def test_settings_a_host_gives_new_namespaces_are_information(machine):
    machine.devconf["net.ipv4.conf.all.route_localnet"] = "1"  # kube-proxy's, on a Kubernetes node
    del machine.devconf["net.ipv4.conf.all.arp_evict_nocarrier"]  # a kernel before 5.16: not judged
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["host-devconf"]
    assert check.line() == ("info  host IPv4 settings: a new namespace gets this host's all/default route_localnet "
                            "1/0 (the kernel's: 0/0); every lab namespace sets them back to the kernel's")
    assert "host-devconf" in doctor.ADVISORY  # never gates `up`


def test_no_namespace_no_settings(machine, monkeypatch):
    monkeypatch.setattr(features, "probe_kernel", lambda *a, **k: features.KernelProbe())
    check = by_name(doctor.diagnose(DEFAULT, set(), ["host-devconf"]))["host-devconf"]
    assert check.line() == "info  host IPv4 settings: unknown: no new namespace could be made"


def test_an_up_makes_one_throwaway_namespace_for_its_checks_and_its_host_settings(machine, monkeypatch):
    """doctor.required (an up's checks) reads what a new namespace gets from the host in its probe's namespace, and
    up's own reading inside the block answers from it: no second throwaway namespace a moment later. Outside the
    block (the next up), a namespace is made again."""
    from netlab.plan.sysctls import DEVCONF_SYSCTLS, FORWARD_SYSCTL

    made: list[str] = []

    def throwaway(body, timeout=None):
        made.append("namespace")
        return {key: "9" for key in DEVCONF_SYSCTLS}

    monkeypatch.setattr(features, "in_throwaway_netns", throwaway)
    machine.devconf["net.ipv4.conf.all.route_localnet"] = "1"
    machine.devconf[FORWARD_SYSCTL] = "0"  # every key up reads (the fake's probe answers the keys it has)
    with doctor.required(DEFAULT):
        assert machine.devconf_asked == [True]
        got = features.inherited_devconf(DEVCONF_SYSCTLS)
        assert made == []
        assert got == {key: machine.devconf.get(key) for key in DEVCONF_SYSCTLS}
        assert got["net.ipv4.conf.all.route_localnet"] == "1"
    assert features.inherited_devconf(DEVCONF_SYSCTLS) == {key: "9" for key in DEVCONF_SYSCTLS}
    assert made == ["namespace"]


def test_the_host_settings_are_read_for_the_report_not_for_ups_preflight(machine):
    doctor.require_for(DEFAULT)  # `up`'s checks: the line is advisory, so its 44 files are not read
    doctor.report(DEFAULT, for_this_lab=False)
    assert machine.devconf_asked == [False, True]
