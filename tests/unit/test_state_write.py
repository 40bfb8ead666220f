"""State writes (issue 9, section 3): a short or failed write is an error, never a half file.

os.write may write less than it was given (a full disk, a signal); these
tests give write_atomic a kernel that does exactly that. The real full disk
(a tiny tmpfs) is tests/integration/test_state_safety.py.
"""

from __future__ import annotations

import errno
import os

import pytest

from netlab.errors import EXIT_APPLY_FAILED, EXIT_ENVIRONMENT
from netlab.realize import state, state_dir

DATA = bytes(range(256)) * 64  # 16 KiB


def test_short_writes_are_continued(tmp_path, monkeypatch):
    real = os.write
    calls = []

    def dribble(fd, data):
        calls.append(len(data))
        return real(fd, bytes(data[:1000]))

    monkeypatch.setattr(state_dir.os, "write", dribble)
    path = tmp_path / "state.json"
    state_dir.write_atomic(str(path), DATA)
    assert path.read_bytes() == DATA
    assert len(calls) > 1


def test_a_write_that_makes_no_progress_fails_and_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    real = os.write

    def stuck(fd, data):
        return real(fd, bytes(data[:100])) if len(data) == len(DATA) else 0

    monkeypatch.setattr(state_dir.os, "write", stuck)
    with pytest.raises(state_dir.StateWriteFailed) as info:
        state_dir.write_atomic(str(path), DATA)
    assert info.value.exit_code == EXIT_APPLY_FAILED
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG])
def test_a_failed_write_or_fsync_is_state_write_failed(tmp_path, monkeypatch, code):
    path = tmp_path / "state.json"
    for name in ("write", "fsync"):
        def fail(*args, _code=code):
            raise OSError(_code, os.strerror(_code))

        with monkeypatch.context() as m:
            m.setattr(state_dir.os, name, fail)
            with pytest.raises(state_dir.StateWriteFailed) as info:
                state_dir.write_atomic(str(path), DATA)
        assert isinstance(info.value, OSError)  # features that ignore OSError on teardown still do
        assert os.strerror(code) in str(info.value)
        # A full disk is the machine's (exit 3, as the doctor's free-space check); an I/O error is the apply's (4).
        assert info.value.exit_code == (EXIT_APPLY_FAILED if code == errno.EIO else EXIT_ENVIRONMENT)
        assert os.listdir(tmp_path) == []


def test_a_read_only_state_directory_is_environment_not_ready(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(state_dir.os, "open", read_only)
    with pytest.raises(state_dir.EnvironmentNotReady) as info:
        state_dir.write_atomic(str(tmp_path / "state.json"), DATA)
    assert info.value.exit_code == EXIT_ENVIRONMENT and "read-only" in str(info.value)


def test_best_effort_save_reports_instead_of_raising(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path))
    os.chmod(tmp_path, 0o700)
    state_dir._checked.clear()
    st = state.LabState(lab="ibw", topology={"name": "ibw"})

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(state_dir.os, "write", full)
    assert st.save(best_effort=True) is False
    with pytest.raises(state_dir.StateWriteFailed):
        st.save()
    state_dir._checked.clear()


def test_a_state_file_that_is_a_fifo_is_corrupt_and_never_waited_for():
    """A FIFO where a lab's state file should be (a QA tester's mkfifo): every command, `netlab list` and the
    pytest plugin's start opened it to read it and waited for a writer, for ever."""
    import threading

    path = state_dir.state_file("ff", create=True)
    os.mkfifo(path)
    done = threading.Event()

    def release() -> None:  # a reader left waiting on the FIFO gets its end of file: a failure, not a hang
        while not done.wait(0.2):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO while nobody reads it
                return
            except OSError:
                continue

    threading.Thread(target=release, daemon=True).start()
    started = __import__("time").monotonic()
    try:
        with pytest.raises(state.StateCorrupt, match="not a regular file"):
            state.load_state("ff")
    finally:
        done.set()
    assert __import__("time").monotonic() - started < 0.2  # not released by the writer: never waited


@pytest.mark.parametrize("cause,code", [
    ("state", errno.ENOSPC), ("os", errno.EDQUOT), ("state", errno.EIO), ("os", errno.EIO), ("apply", 0)])
def test_an_up_rolled_back_for_a_full_disk_exits_3(tmp_path, monkeypatch, cause, code):
    """``up`` wraps what stopped it in ApplyFailed ("...; rolled back") raised from it: a full disk under it is
    still the machine's fault (exit 3), as a pcap or a report the disk cannot take; any other failure is 4."""
    from netlab.errors import ApplyFailed

    def fail(*args):
        raise OSError(code, os.strerror(code))

    try:
        try:
            if cause == "state":  # a state write of the run's
                monkeypatch.setattr(state_dir.os, "write", fail)
                state_dir.write_atomic(str(tmp_path / "state.json"), DATA)
            if cause == "os":  # any other write of the run's (a container's log, a CNI plugin's file)
                fail()
            raise ApplyFailed("the kernel said no")
        except Exception as exc:
            raise ApplyFailed(f"{exc}; rolled back") from exc
    except ApplyFailed as failed:
        assert failed.exit_code == (EXIT_ENVIRONMENT if code in (errno.ENOSPC, errno.EDQUOT) else EXIT_APPLY_FAILED)


def test_a_state_write_failure_says_nothing_is_left_beyond_the_rollback():
    # up's "rolled back" line reads not_back/if_fresh of every ApplyFailed; OSError's __init__ builds this one.
    failed = state_dir.StateWriteFailed("/x/state.json", "No space left on device", errno.ENOSPC)
    assert (failed.not_back, failed.if_fresh) == ("", "")
