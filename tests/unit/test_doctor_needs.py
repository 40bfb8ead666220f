"""What the doctor says each command needs, against the fake machine of test_doctor.py: the kernel's ctnetlink
(trace and quiz read conntrack through it on every lab), the conntrack tool (up only for Services), capabilities and the open-files limit (every
command), tcpdump's libpcap (capture filters), and the test hook reaching br_netfilter."""

from __future__ import annotations

import ctypes.util
import types

import pytest
from click.testing import CliRunner

from test_doctor import DEFAULT, SERVICES, by_name, install_machine
from netlab import api, doctor, doctor_host
from netlab.cli import base, breaks as cli_breaks, cli
from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.kernel import netns as nsmod
from netlab.realize import state as state_mod


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def _without_the_conntrack_program(machine, monkeypatch) -> None:
    """The conntrack program missing, the kernel's ctnetlink there (the fake machine's ``missing`` takes both)."""
    monkeypatch.setattr(nsmod, "binary", lambda name: machine.binary("missing:conntrack" if name == "conntrack"
                                                                     else name))
    machine.missing.add("missing:conntrack")


@pytest.mark.parametrize("lab", [DEFAULT, SERVICES])
def test_the_conntrack_tool_is_no_labs_need(machine, monkeypatch, lab):
    """QA qx 1: trace reads conntrack over ctnetlink (the kernel conntrack check), not with the program; and so do
    up's stale UDP entry clean-up and break conntrack-stale-entry's insert: the program is advice (learners,
    tests), even for a lab with Services and for plain `netlab doctor`."""
    _without_the_conntrack_program(machine, monkeypatch)
    checks = by_name(doctor.report(lab, for_this_lab=True))
    check = checks["conntrack-tool"]
    assert check.status == doctor.WARN and not check.needed  # up brings the lab up without it...
    assert check.line() == (  # ...and the line says netlab does not run it
        "warn  tool conntrack: conntrack is not installed (netlab looks in /usr/sbin, /usr/bin, /sbin, /bin, "
        "/usr/local/sbin and /usr/local/bin, not $PATH); netlab itself does not run it (it reads, deletes and "
        "inserts conntrack entries over the kernel's ctnetlink), learners and tests do; fix: apt-get install "
        "conntrack (or sudo ./scripts/setup.sh)")
    assert checks["conntrack"].status == doctor.OK
    assert by_name(doctor.report(lab, for_this_lab=False))["conntrack-tool"].status == doctor.WARN


def test_the_kernels_ctnetlink_is_said_to_be_traces(machine, monkeypatch):
    monkeypatch.setenv(doctor.MISSING_HOOK, "conntrack")
    check = by_name(doctor.diagnose(DEFAULT, set()))["conntrack"]  # a lab that would not need it for up
    assert check.status == doctor.WARN and check.detail.endswith(
        "netlab up needs it only for a lab with NAT rules or Services (it deletes stale UDP entries), but trace "
        "(any lab), quiz and inspect's conntrack section read the conntrack table through it (ctnetlink), and break "
        "conntrack-stale-entry inserts an entry through it")
    assert check.fix.startswith("modprobe nf_conntrack_netlink")


def _quiz_on_a_faked_lab(monkeypatch) -> list[str]:
    """`netlab quiz` on a faked clean lab qz (no root); what break_lab was asked to break."""
    broken: list[str] = []
    monkeypatch.setattr(base, "require_root", lambda: None)
    monkeypatch.setattr(cli_breaks, "require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda lab, topo: "qz")
    monkeypatch.setattr(cli_breaks, "_faults_before", lambda name, reader="break": 0)
    monkeypatch.setattr(state_mod, "running_lab", lambda name: types.SimpleNamespace(resolved=lambda: DEFAULT))
    monkeypatch.setattr("netlab.workload.terminal.served", lambda lab, state: lab)  # no terminal pod
    from netlab.breaks import quiz as qz, run as breaks_run

    monkeypatch.setattr(qz, "load", lambda name: None)
    monkeypatch.setattr(qz, "record", lambda *a: None)
    monkeypatch.setattr(qz, "watcher", lambda name: None)  # no `up --watch` keeps it
    monkeypatch.setattr(breaks_run, "break_lab", lambda name, scenario, target=None, holder=None: broken.append(
                        scenario) or types.SimpleNamespace(target="n1"))
    return broken


@pytest.mark.parametrize("missing,line,fix", [
    ("conntrack", "kernel conntrack", "modprobe nf_conntrack_netlink (CONFIG_NF_CONNTRACK, CONFIG_NF_CT_NETLINK)"),
    ("iptables-restore", "tool ", "apt-get install iptables (or sudo ./scripts/setup.sh)")])
def test_quiz_breaks_nothing_when_its_answers_trace_cannot_run(machine, monkeypatch, missing, line, fix):
    machine.missing.add(missing)
    broken = _quiz_on_a_faked_lab(monkeypatch)
    result = CliRunner().invoke(cli, ["quiz", "--seed", "7"])
    error = result.exception  # the CLI's boundary (cli/boundary.py) prints it in one line, exit 3
    assert isinstance(error, EnvironmentNotReady) and error.exit_code == EXIT_ENVIRONMENT, (result.output, error)
    assert broken == [] and "is broken" not in result.output
    assert str(error).startswith("lab qz: nothing broken, as the quiz's answer (a trace) could not be checked: FAIL  "
                                 + line)
    assert str(error).endswith(f"fix: {fix}")


def test_quiz_breaks_the_lab_without_the_conntrack_program(machine, monkeypatch):
    """QA qx 1: its answer's trace reads conntrack over ctnetlink."""
    _without_the_conntrack_program(machine, monkeypatch)
    broken = _quiz_on_a_faked_lab(monkeypatch)
    result = CliRunner().invoke(cli, ["quiz", "--seed", "7"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(broken) == 1


def test_quiz_breaks_the_lab_when_the_tools_are_there(machine, monkeypatch):
    broken = _quiz_on_a_faked_lab(monkeypatch)
    result = CliRunner().invoke(cli, ["quiz", "--seed", "7"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(broken) == 1 and "lab qz is broken (quiz seed 7)" in result.output


@pytest.mark.parametrize("for_this_lab", [True, False])
def test_capabilities_and_open_files_are_needed_by_every_command(machine, for_this_lab):
    checks = by_name(doctor.report(DEFAULT, for_this_lab=for_this_lab))
    assert checks["capabilities"].needed and checks["open-files"].needed
    assert checks["capabilities"].to_json()["needed"] is True and checks["open-files"].to_json()["needed"] is True


def test_the_test_hook_reaches_br_netfilter(machine, monkeypatch):
    monkeypatch.setenv(doctor.MISSING_HOOK, "br_netfilter")
    assert machine.br_netfilter.is_dir()  # the host has it; the hook says it has not
    check = by_name(doctor.report(DEFAULT, for_this_lab=True))["br_netfilter"]
    assert check.status == doctor.FAIL and check.detail.startswith(f"reported missing by {doctor.MISSING_HOOK}")
    with pytest.raises(EnvironmentNotReady, match="FAIL  kernel br_netfilter: reported missing"):
        doctor.require_for(DEFAULT, only=("br_netfilter",))


def test_tcpdumps_line_says_capture_filters_need_libpcap(machine, monkeypatch):
    monkeypatch.setattr(doctor_host, "libpcap", lambda: (None, "libpcap.so.0.8 does not load: file too short"))
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["tcpdump"]
    assert check.line() == (
        "warn  tool tcpdump: /usr/sbin/tcpdump; libpcap does not load (libpcap.so.0.8 does not load: file too "
        "short): netlab capture refuses a filter expression (without one it captures); fix: "
        f"{doctor_host.LIBPCAP_FIX}")
    machine.missing.add("tcpdump")  # no tcpdump: installing it brings libpcap
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["tcpdump"]
    assert check.status == doctor.WARN and "netlab capture refuses a filter expression" in check.detail
    assert check.fix == "apt-get install tcpdump (or sudo ./scripts/setup.sh)"
    monkeypatch.setattr(doctor_host, "libpcap", lambda: ("libpcap.so.0.8", ""))
    check = by_name(doctor.report(DEFAULT, for_this_lab=False))["tcpdump"]
    assert check.detail.endswith("libpcap.so.0.8 loads: netlab capture's filter expressions compile")


def test_libpcap_is_found_as_capture_finds_it(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert doctor_host.libpcap() == (None, "no libpcap.so among the system's libraries (ldconfig -p)")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libpcap.so.0.8")
    name, why = doctor_host.libpcap()
    assert name is None and why.startswith("/nonexistent/libpcap.so.0.8 does not load: ")
