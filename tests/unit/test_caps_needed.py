"""Root without CAP_SYS_PTRACE, CAP_NET_RAW or dnsmasq's CAP_NET_BIND_SERVICE/CAP_SETGID (Docker's default
capabilities plus SYS_ADMIN and NET_ADMIN, a `--cap-drop ALL` container), QA report caps57 defects 1 and 3, on fake
facts; the real CLI under `setpriv`: tests/integration/test_caps_ptrace_live.py.

Without CAP_SYS_PTRACE /proc/PID/ns/net of a process that is not dumpable (dnsmasq) is EACCES, which was read as
"gone": the doctor said ok, `status` said kube-dns exited, a repair `up` started a second dnsmasq, `down` left it.
Without CAP_NET_RAW the doctor said ok and probe/trace/capture failed with PermissionError or "run it with sudo".
"""

from __future__ import annotations

import errno
import os

import pytest
from cli_inprocess import run_cli
from test_capless_root_and_state_dir import cap_eff, no_live_kernel
from test_doctor import DEFAULT, SERVICES, install_machine, lab_of

from netlab import doctor
from netlab.errors import EnvironmentNotReady
from netlab.kernel import caps, processes

FULL = "000001ffffffffff"
NO_PTRACE = "000001fffff7ffff"  # setpriv --bounding-set=-sys_ptrace: bit 19
NO_RAW = "000001ffffffdfff"  # bit 13
NO_SETGID = "000001ffffffffbf"  # bit 6
DOCKER_PLUS = "00000000a82435fb"  # Docker's default set, plus SYS_ADMIN and NET_ADMIN (the doctor's old fix)
NO_SERVICES = lab_of(text="name: nosvc\nnodes:\n  - {name: n1}\npods:\n  - {name: p1, node: n1}\n")


def test_sys_ptrace_is_not_every_commands_but_up_and_downs(tmp_path, monkeypatch):
    cap_eff(tmp_path, monkeypatch, NO_PTRACE)
    assert caps.missing() == []  # list, validate, exec, probe ... read no other process (QA caps58 defect 1)
    assert caps.missing(caps.PROCESSES) == ["CAP_SYS_PTRACE"]
    cap_eff(tmp_path, monkeypatch, DOCKER_PLUS)
    assert caps.missing() == []
    assert caps.missing(caps.BITS) == ["CAP_SYS_PTRACE"]  # Docker's defaults have NET_RAW, NET_BIND_SERVICE, SETGID


def test_the_doctor_fails_sys_ptrace_naming_dockers_cap_add_runs_the_rest_and_up_refuses(tmp_path, monkeypatch):
    machine = install_machine(tmp_path, monkeypatch)
    cap_eff(tmp_path, monkeypatch, NO_PTRACE)
    checks = {c.name: c for c in doctor.report(SERVICES, for_this_lab=True)}
    assert checks["capabilities"].status == doctor.FAIL
    assert [c.name for c in checks.values() if c.status == doctor.FAIL] == ["capabilities"]
    line = checks["capabilities"].line()
    assert line.startswith("FAIL  host capabilities: root without CAP_SYS_PTRACE (CapEff"), line
    assert "dnsmasq" in line and "--cap-add SYS_PTRACE" in line and "no other check was run" not in line, line
    assert machine.probes  # the other checks enter namespaces, which needs no CAP_SYS_PTRACE: they ran
    with pytest.raises(EnvironmentNotReady) as caught:
        doctor.require_for(SERVICES)
    assert str(caught.value).startswith(line)


@pytest.mark.parametrize("words", [("down", "--lab", "fk"), ("up", "--lab", "fk"), ("break", "--lab", "fk",
                                   "endpoint-pod-down"), ("break", "--lab", "fk", "dns-pod-stopped"),
                                   ("quiz", "--lab", "fk")], ids=lambda w: "-".join(w[:1] + w[3:]))
def test_up_down_break_and_quiz_refuse_root_without_sys_ptrace_up_front(words, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, NO_PTRACE)
    no_live_kernel(monkeypatch)
    got = run_cli(*words)
    assert got.returncode == 3 and got.stderr.count("\n") == 1, got
    assert "host capabilities: root without CAP_SYS_PTRACE" in got.stderr and "sudo" not in got.stderr, got


def test_a_break_that_stops_no_container_needs_no_sys_ptrace_and_the_apis_break_asks_as_the_cli(tmp_path,
                                                                                               monkeypatch):
    """`break` refused every scenario without CAP_SYS_PTRACE: only those that stop a pod's containers read other
    processes (catalogue.Scenario.processes); the others go on (here to the lab, which is not up)."""
    from netlab import Lab

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, NO_PTRACE)
    no_live_kernel(monkeypatch)
    got = run_cli("break", "--lab", "fk", "ip-forward-off")
    assert "CAP_SYS_PTRACE" not in got.stderr and "lab 'fk' is not up" in got.stderr, got
    with pytest.raises(EnvironmentNotReady, match="root without CAP_SYS_PTRACE"):
        Lab("fk").break_("dns-pod-stopped")
    with pytest.raises(Exception) as other:
        Lab("fk").break_("ip-forward-off")
    assert "CAP_SYS_PTRACE" not in str(other.value) and "'fk' is not up" in str(other.value), other.value


def test_without_net_raw_plain_doctor_fails_a_labs_doctor_warns_and_up_goes_on(tmp_path, monkeypatch):
    install_machine(tmp_path, monkeypatch)
    cap_eff(tmp_path, monkeypatch, NO_RAW)
    plain = {c.name: c for c in doctor.report(DEFAULT, for_this_lab=False)}
    assert plain["capabilities"].status == doctor.FAIL and len(plain) > 1  # the other checks ran
    assert "root without CAP_NET_RAW" in plain["capabilities"].line()
    assert "probe, trace and capture" in plain["capabilities"].line()
    assert "--cap-add NET_RAW" in plain["capabilities"].line()
    lab = {c.name: c for c in doctor.report(SERVICES, for_this_lab=True)}
    assert lab["capabilities"].status == doctor.WARN and "root without CAP_NET_RAW" in lab["capabilities"].detail
    doctor.require_for(SERVICES)  # up does without it: not refused


def test_without_setgid_up_of_a_lab_with_kube_dns_is_refused_and_one_without_is_not(tmp_path, monkeypatch):
    install_machine(tmp_path, monkeypatch)
    cap_eff(tmp_path, monkeypatch, NO_SETGID)
    with pytest.raises(EnvironmentNotReady) as caught:
        doctor.require_for(SERVICES)
    assert "root without CAP_SETGID" in str(caught.value) and "--cap-add SETGID" in str(caught.value)
    doctor.require_for(NO_SERVICES)
    assert {c.name: c for c in doctor.report(NO_SERVICES, for_this_lab=True)}["capabilities"].status == doctor.OK


@pytest.mark.parametrize("words", [("probe", "--lab", "fk"), ("trace", "--lab", "fk", "a", "b"),
                                   ("capture", "--lab", "fk", "a:eth0")], ids=lambda w: w[0])
def test_probe_trace_and_capture_refuse_root_without_net_raw_in_one_line(words, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, NO_RAW)
    no_live_kernel(monkeypatch)
    got = run_cli(*words)
    assert got.returncode == 3 and got.stderr.count("\n") == 1, got
    assert "host capabilities: root without CAP_NET_RAW" in got.stderr and "sudo" not in got.stderr, got


def test_a_permission_error_to_root_without_net_raw_names_it_not_sudo(tmp_path, monkeypatch):
    from netlab.kernel import caps

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, NO_RAW)
    text = caps.denied(PermissionError(1, "Operation not permitted"))
    assert "sudo" not in text and "root without CAP_NET_RAW" in text and "--cap-add NET_RAW" in text, text


def _stat_denied(monkeypatch, code: int) -> None:
    def denied(path, *args, **kwargs):
        raise PermissionError(code, os.strerror(code), path) if code in (errno.EACCES, errno.EPERM) else \
            FileNotFoundError(code, os.strerror(code), path)

    monkeypatch.setattr(processes.os, "stat", denied)


def test_a_namespace_root_may_not_read_is_cannot_tell_never_gone(monkeypatch):
    _stat_denied(monkeypatch, errno.EACCES)
    with pytest.raises(PermissionError) as caught:
        processes.ns_identity("/proc/4242/ns/net")
    assert "CAP_SYS_PTRACE" in str(caught.value) and caught.value.filename == "/proc/4242/ns/net"
    _stat_denied(monkeypatch, errno.ENOENT)
    assert processes.ns_identity("/proc/4242/ns/net") is None  # gone is gone


def test_an_environment_root_may_not_read_is_cannot_tell(monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(PermissionError):
        processes.environ_entries(4242)


def test_the_sweep_of_every_process_cannot_tell_without_sys_ptrace_and_skips_what_an_lsm_hides(tmp_path,
                                                                                                monkeypatch):
    _stat_denied(monkeypatch, errno.EACCES)
    monkeypatch.setattr(processes, "_tasks", lambda pid: [str(pid)])
    cap_eff(tmp_path, monkeypatch, NO_PTRACE)
    with pytest.raises(PermissionError):
        processes.namespace_of(4242, {(1, 2): "lab-p1"})
    cap_eff(tmp_path, monkeypatch, FULL)  # a sandbox's init that root with CAP_SYS_PTRACE may not read: not ours
    assert processes.namespace_of(4242, {(1, 2): "lab-p1"}) is None


def in_user_namespace(tmp_path, monkeypatch, uid_map: str = "         0       1000          1\n") -> None:
    """This process as root of a user namespace of its own: its user namespace is not the initial one (a file's
    inode stands for it), its uid_map maps one id."""
    (tmp_path / "userns").write_text("")
    (tmp_path / "uid_map").write_text(uid_map)
    monkeypatch.setattr(caps, "SELF_USER_NS", str(tmp_path / "userns"))
    monkeypatch.setattr(caps, "UID_MAP", str(tmp_path / "uid_map"))


def test_root_of_a_user_namespace_is_not_the_hosts_whatever_its_capabilities(tmp_path, monkeypatch):
    assert caps.user_namespace() is None  # the tests run as the host's root (as netlab must)
    in_user_namespace(tmp_path, monkeypatch)
    said = caps.user_namespace()
    assert said is not None and said.startswith("root of a user namespace, not the host's (uid_map 0 1000 1: "), said


def test_the_doctor_fails_root_of_a_user_namespace_first_and_up_refuses(tmp_path, monkeypatch):
    machine = install_machine(tmp_path, monkeypatch)  # CapEff full, as unshare -Ur gives it
    in_user_namespace(tmp_path, monkeypatch)
    checks = doctor.report(DEFAULT, for_this_lab=True)
    assert [(c.name, c.status) for c in checks] == [("capabilities", doctor.FAIL)]
    line = checks[0].line()
    assert "root of a user namespace" in line and "no other check was run" in line and "--privileged" in line
    assert machine.probes == []
    with pytest.raises(EnvironmentNotReady):
        doctor.require_for(DEFAULT)


@pytest.mark.parametrize("words", [("list",), ("status", "--lab", "fk"), ("down", "--lab", "fk"), ("doctor",)],
                         ids=" ".join)
def test_every_command_refuses_root_of_a_user_namespace_in_one_line_not_sudo(words, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, FULL)
    in_user_namespace(tmp_path, monkeypatch)
    no_live_kernel(monkeypatch)
    got = run_cli(*words)
    said = got.stdout if words == ("doctor",) else got.stderr
    assert got.returncode == 3 and "root of a user namespace, not the host's" in said, got
    assert "sudo" not in said and "Traceback" not in got.stderr, got
