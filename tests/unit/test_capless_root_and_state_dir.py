"""Root without CAP_SYS_ADMIN/CAP_NET_ADMIN, a down that failed halfway, a lab whose whole state folder went, and a
NETLAB_STATE_DIR that is relative or a regular file (QA report qr, defects 3-6 and 8), on fake facts; the real CLI
under `setpriv`, a relative folder and a file: tests/integration/test_capless_root_live.py.

Capless root (an unprivileged container) passed the euid check: `doctor` and `up` ended in `KeyError: 'veth'`,
`down` stopped the lab's containers and removed its /etc/netns files before its first setns was refused, and `list`
then said that down was "killed". A state folder deleted with the namespaces left: `list` said "no lab is up". A
relative NETLAB_STATE_DIR: the echo server, with another cwd, could not open `<dir>/<lab>/echo.log`. A file there:
"cannot use <file>/<lab>/state.json: Not a directory", and `list` said "no lab is up", exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cli_inprocess import run_cli
from fake_lab import IdleFeature, make_lab, up
from test_doctor import DEFAULT, install_machine

from netlab.errors import down_command
from netlab.errors import python_words
from netlab import doctor
from netlab.api.running import labs
from netlab.errors import EnvironmentNotReady
from netlab.kernel import caps
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_list, state as state_mod, state_dir, tags
from netlab.realize.interrupted import stalled

lab = pytest.fixture(make_lab, name="lab")
FULL, CAPLESS = "000001ffffffffff", "000001fffedfefff"  # the latter: setpriv --bounding-set=-sys_admin,-net_admin


def no_live_kernel(monkeypatch) -> None:
    """The CLI here must never reach the machine's kernel (without the fixes it did: `up --lab` made the fake
    lab's namespaces for real): a LiveKernel made is a failure."""
    from netlab.kernel.live import LiveKernel

    def refused(self, *args, **kwargs):
        raise AssertionError("the command reached the live kernel")

    monkeypatch.setattr(LiveKernel, "__init__", refused)


def cap_eff(tmp_path, monkeypatch, mask: str) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tnetlab\nCapBnd:\t{mask}\nCapEff:\t{mask}\n")
    monkeypatch.setattr(caps, "STATUS", str(status))


def test_capabilities_are_read_from_capeff(tmp_path, monkeypatch):
    cap_eff(tmp_path, monkeypatch, FULL)
    assert caps.missing() == []
    cap_eff(tmp_path, monkeypatch, CAPLESS)
    assert caps.missing() == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    cap_eff(tmp_path, monkeypatch, "0000000000001000")  # CAP_NET_ADMIN alone
    assert caps.missing() == ["CAP_SYS_ADMIN"]
    assert caps.missing({**caps.NEEDED, **caps.PROCESSES}) == ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]


def test_the_doctor_says_the_missing_capabilities_first_and_runs_no_other_check(tmp_path, monkeypatch):
    machine = install_machine(tmp_path, monkeypatch)
    cap_eff(tmp_path, monkeypatch, CAPLESS)
    checks = doctor.report(DEFAULT, for_this_lab=False)
    assert [(c.name, c.status) for c in checks] == [("capabilities", doctor.FAIL)]
    line = checks[0].line()
    assert line.startswith("FAIL  host capabilities: root without CAP_NET_ADMIN and CAP_SYS_ADMIN (CapEff "
                           f"{CAPLESS}; an unprivileged container"), line
    assert "no other check was run" in line and "; fix: run netlab where root has them" in line
    assert machine.probes == []  # no throwaway namespace tried: that is where `KeyError: 'veth'` came from
    with pytest.raises(EnvironmentNotReady) as caught:
        doctor.require_for(DEFAULT)  # up's gate: the same line
    assert str(caught.value).startswith(line)
    cap_eff(tmp_path, monkeypatch, FULL)
    ok = {c.name: c for c in doctor.report(DEFAULT, for_this_lab=False)}
    assert ok["capabilities"].status == doctor.OK and len(ok) > 1


@pytest.mark.parametrize("words", [("down", "--lab", "fk"), ("status", "--lab", "fk"), ("list",),
                                   ("up", "--lab", "fk"), ("doctor",)], ids=" ".join)
def test_capless_root_is_refused_up_front_with_the_doctors_line_and_nothing_changes(words, lab, tmp_path,
                                                                                    monkeypatch):
    k = FakeKernel()
    up(lab, k)
    before = state_mod.load_state(lab.name)
    assert before is not None and before.phase == "up"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, CAPLESS)
    no_live_kernel(monkeypatch)
    got = run_cli(*words)
    assert got.returncode == 3, got
    said = got.stdout if words == ("doctor",) else got.stderr
    assert "host capabilities: root without CAP_NET_ADMIN and CAP_SYS_ADMIN" in said, got
    assert "Traceback" not in got.stderr and "sudo" not in said
    after = state_mod.load_state(lab.name)
    assert after is not None and after.phase == "up" and after.netns == before.netns


def test_a_permission_error_to_capless_root_names_the_capabilities_not_sudo(tmp_path, monkeypatch):
    from netlab.kernel import caps

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cap_eff(tmp_path, monkeypatch, CAPLESS)
    text = caps.denied(PermissionError(1, "setns: Operation not permitted", ""))
    assert "sudo" not in text and "root without CAP_NET_ADMIN and CAP_SYS_ADMIN" in text, text
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert caps.denied(PermissionError(13, "x", "/run/netlab")).endswith("; run it with sudo")


class FailingStop(IdleFeature):
    def stop(self, state, netns_names, everything=False, early=None):
        raise EnvironmentNotReady("permission denied: /x/uts")


def test_a_down_that_failed_halfway_is_listed_as_failed_not_killed(lab):
    k = FakeKernel()
    up(lab, k)
    with pytest.raises(EnvironmentNotReady):
        teardown.down(lab.name, k, [FailingStop()])
    st = state_mod.load_state(lab.name)
    assert st is not None and st.phase == "deleting"
    said = stalled(st)
    assert said == (f"lab {lab.name}: the `netlab down` that was taking it down (pid {os.getpid()}) failed before it "
                    f"finished: permission denied: /x/uts; `{down_command(lab.name)}` finishes it once "
                    "that is put right"), said
    with python_words(False):  # list's line, as the command says it
        assert [row.error for row in labs() if row.lab == lab.name] == [said]
    teardown.down(lab.name, k)  # the next down finishes it, and the record goes with the state
    assert state_mod.load_state(lab.name) is None and not k.ns


def test_a_lab_whose_whole_state_folder_went_is_listed_lost_by_its_tagged_namespaces(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    tag = tags.state_tag(st.lab, st.run_id, st.extra)
    spaces = {name: tag for name in st.netns}
    spaces["fk2-n1"] = tags.state_tag("fk2", st.run_id, {tags.FOLDER_RECORD: {"tag": "0badf00d"}})  # elsewhere
    spaces["other-x"] = None  # untagged: nobody's
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(nsmod, "read_tag", lambda name: spaces.get(name))
    # with its state: listed as up, its namespaces not read again; fk2 is up with another folder
    assert [(row.lab, row.phase) for row in labs()] == [(lab.name, "up"), ("fk2", "elsewhere")]
    lab_list.forget(lab.name)  # the whole folder gone, as a down that could not read the tags left it
    assert not os.path.lexists(os.path.join(state_dir.STATE_ROOT, lab.name))
    rows = [row for row in labs()]
    assert [(row.lab, row.phase) for row in rows] == [(lab.name, "lost"), ("fk2", "elsewhere")], rows
    assert "its state was lost" in str(rows[0].error) and f"Lab({lab.name!r}).down(force=True)" in str(rows[0].error)
    got = run_cli("list")
    assert got.returncode == 0 and "no lab is up" not in got.stderr and f"--lab {lab.name} --force" in got.stderr


def test_a_relative_state_dir_is_made_absolute_once_for_netlab_and_what_it_starts(tmp_path):
    code = ("import os; from netlab.realize import state_dir; from netlab.workload import launch; "
            "print(state_dir.STATE_ROOT); print(os.environ['NETLAB_STATE_DIR']); print(launch.control_path('rl1'))")
    env = {**os.environ, "NETLAB_STATE_DIR": "rel-state", "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [str(tmp_path / "rel-state")] * 2 + [str(tmp_path / "rel-state" / "rl1" / "echo.sock")], out


@pytest.mark.parametrize("words", [("list",), ("status", "--lab", "fk"), ("down", "--lab", "fk"),
                                   ("up", "--lab", "fk"), ("get", "pods", "--lab", "fk")], ids=" ".join)
def test_a_state_dir_that_is_a_file_is_said_so_by_every_command(words, tmp_path, monkeypatch):
    path = tmp_path / "x"
    path.write_text("x\n")
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
    monkeypatch.setenv("NETLAB_STATE_DIR", str(path))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(caps, "missing", lambda names=None: [])
    got = run_cli(*words)
    assert (got.returncode, got.stderr) == (3, f"netlab: {path} is not a directory; point NETLAB_STATE_DIR at a "
                                               "directory of root's own (netlab makes it, mode 0700, if it is not "
                                               "there) and retry\n"), got
    assert path.read_text() == "x\n"
