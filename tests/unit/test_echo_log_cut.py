"""A state folder on a file system that can neither collapse nor punch a file's oldest blocks (NFSv3, 9p, some FUSE,
ramfs): a command container's log cannot start over there (echo_log.start_over_if_full keeps it whole) and grows
without bound, which the README said and nothing said at run time. `up` says it once, in one line, as it starts a
command container (containers.logs_uncut), and `netlab doctor` in a warn line of the state folder, both from a
real try (echo_log.log_cut: a file of no data made in the folder, cut, gone at once). fallocate made to fail here
(EOPNOTSUPP), as there (no root)."""

from __future__ import annotations

import errno
import os

import pytest

from netlab import doctor
from netlab.doctor_host import check_container_logs
from netlab.realize.state_dir import lab_dir
from netlab.workload import containers, echo_log
from netlab.workload.containers import log_dir, logs_uncut
from netlab.workload.echo_log import FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE, log_cut
from test_doctor import DEFAULT, by_name

NEITHER = ("ext2/3/4 ({}) cannot cut a log's oldest part (no FALLOC_FL_COLLAPSE_RANGE nor PUNCH_HOLE): a command "
           "container's log grows without bound")


@pytest.fixture
def refused(monkeypatch):
    """fallocate refusing every mode with EOPNOTSUPP (NFSv3's, 9p's answer), each call's mode kept."""
    calls: list[int] = []

    def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
        calls.append(mode)
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(echo_log, "fallocate", fallocate)
    monkeypatch.setattr(containers, "_UNCUT_SAID", set())
    monkeypatch.setattr("netlab.kernel.fstype.NAMES", {0xEF53: "ext2/3/4", 0x01021994: "tmpfs"})
    return calls


def on_ext4(path) -> bool:
    from netlab.kernel.fstype import fs_type

    return fs_type(str(path)) == "ext2/3/4"


def test_the_try_tells_how_a_log_starts_over_and_leaves_no_file(tmp_path):
    assert log_cut(str(tmp_path)) in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE)
    if os.path.isdir("/dev/shm"):
        assert log_cut("/dev/shm") == FALLOC_FL_PUNCH_HOLE  # tmpfs: no collapse
    assert os.listdir(tmp_path) == []


def test_neither_cut_is_none_and_a_named_file_made_where_o_tmpfile_is_refused_is_gone_too(tmp_path, refused,
                                                                                          monkeypatch):
    assert log_cut(str(tmp_path)) is None
    assert refused == [FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE | echo_log.FALLOC_FL_KEEP_SIZE]
    monkeypatch.setattr(os, "O_TMPFILE", os.O_DIRECTORY)  # open(folder, O_RDWR | O_DIRECTORY): EISDIR, as NFS refuses
    assert log_cut(str(tmp_path)) is None and os.listdir(tmp_path) == []
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):  # no file can be made there: said as such, not "cannot cut"
            log_cut(str(tmp_path / "ro"))


def test_doctor_warns_of_a_state_folder_that_cannot_cut_a_log(tmp_path, refused):
    if not on_ext4(tmp_path):
        pytest.skip("tmp_path is not on ext4 here: the line names the file system")
    check = check_container_logs(str(tmp_path / "state" / "not-made"))  # not made yet: where it will be
    assert by_name(doctor.diagnose(DEFAULT, set(), ["container-logs"]))["container-logs"].status == doctor.WARN
    assert (check.status, check.detail) == (doctor.WARN, NEITHER.format(tmp_path))
    assert check.line() == (f"warn  host container logs: {NEITHER.format(tmp_path)}; fix: point NETLAB_STATE_DIR to "
                            "a folder on tmpfs, ext4 or XFS")
    assert not check.needed and "container-logs" in doctor.ADVISORY  # up never refuses for it
    assert os.listdir(tmp_path) == []


def test_doctor_says_how_a_log_starts_over_where_it_can(state_root):
    check = by_name(doctor.diagnose(DEFAULT, set(), ["container-logs"]))["container-logs"]
    assert check.status == doctor.OK
    assert f"({state_root}): a log past 10 MiB starts over, its oldest part " in check.detail, check.detail
    assert os.listdir(state_root) == []


def test_up_says_once_that_a_command_containers_log_grows_without_bound(state_root, refused):
    lab_dir("lfcut")
    folder = log_dir("lfcut")
    os.makedirs(folder)
    if not on_ext4(folder):
        pytest.skip("the state folder is not on ext4 here: the line names the file system")
    assert logs_uncut("lfcut") == (
        f"logs: {folder} is on ext2/3/4, which can neither collapse nor punch a file's oldest blocks (fallocate's "
        "FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE): a command container's log cannot start over at 10 MiB there "
        "and grows without bound (a state folder on tmpfs, ext4 or XFS bounds it: NETLAB_STATE_DIR)")
    assert logs_uncut("lfcut") is None  # once
    assert os.listdir(folder) == []


def test_up_says_nothing_where_a_log_can_start_over(state_root, monkeypatch):
    monkeypatch.setattr(containers, "_UNCUT_SAID", set())
    lab_dir("lfcut")
    os.makedirs(log_dir("lfcut"))
    assert logs_uncut("lfcut") is None and os.listdir(log_dir("lfcut")) == []
