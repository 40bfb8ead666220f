"""The C library's one door (kernel/libc.py): one handle, and a failed call's errno as the OSError netlab raises.
Real calls that fail harmlessly (a bad descriptor, a path that is not there), no root."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from netlab.kernel import libc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_handle_for_every_caller():
    assert libc.handle() is libc.handle()


def test_a_failed_calls_errno_is_its_strerror_after_the_calls_name():
    assert libc.handle().setns(-1, 0) != 0
    exc = libc.os_error("setns")
    assert (type(exc), exc.errno, exc.strerror, exc.filename) == (OSError, errno.EBADF, "setns: Bad file descriptor",
                                                                  None)
    assert str(exc) == "[Errno 9] setns: Bad file descriptor" and exc.args == (errno.EBADF, exc.strerror)


def test_the_filename_is_kept_and_the_errno_gives_its_subclass(tmp_path):
    gone = str(tmp_path / "gone")
    assert libc.handle().statfs(os.fsencode(gone), ctypes.create_string_buffer(256)) != 0
    exc = libc.os_error(filename=gone)
    assert isinstance(exc, FileNotFoundError)
    assert (exc.errno, exc.strerror, exc.filename) == (errno.ENOENT, "No such file or directory", gone)
    assert str(exc) == f"[Errno 2] No such file or directory: '{gone}'"


def test_an_empty_filename_is_kept_as_netns_always_said_it():
    libc.handle().setns(-1, 0)
    assert str(libc.os_error("setns", "")) == "[Errno 9] setns: Bad file descriptor: ''"


def test_the_callers_subclass_and_a_bare_text():
    class NoThing(OSError):
        pass

    libc.handle().inotify_add_watch(-1, b"/", 0x100)
    exc = libc.os_error(kind=NoThing)
    assert type(exc) is NoThing and (exc.errno, exc.strerror) == (errno.EBADF, "Bad file descriptor")
    bare = libc.os_error("inotify_add_watch /run/netns", strerror=False)
    assert str(bare) == "[Errno 9] inotify_add_watch /run/netns"


def test_the_errno_is_the_failed_calls_own_after_other_system_calls():
    """errno as ctypes kept it for this thread: an os call that fails between (ENOENT) does not change it, nor
    another thread's failed call."""
    libc.handle().setns(-1, 0)  # EBADF
    with pytest.raises(FileNotFoundError):
        os.stat("/nonexistent-netlab-libc")
    other = threading.Thread(target=lambda: libc.handle().statfs(b"/nonexistent-netlab-libc", None))
    other.start()
    other.join()
    assert libc.os_error().errno == errno.EBADF


def test_the_echo_servers_modules_import_it_isolated_and_open_no_library_until_a_call():
    """`python -I` (the echo server): kernel/libc.py and workload/echo_log.py import, no handle opened until a
    call, and the fallocate that a log's start-over makes still fails with its own errno."""
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "import netlab.workload.echo_log as log, netlab.kernel.libc as libc\n"
            "assert libc._handle == [], libc._handle\n"
            "try:\n"
            "    log.fallocate(-1, 0, 0, 1)\n"
            "except OSError as exc:\n"
            "    print(exc.errno, exc, len(libc._handle))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code, ROOT], capture_output=True, text=True, check=True)
    assert out.stdout == "9 [Errno 9] Bad file descriptor 1\n"


def test_inotify_errors_name_the_call_and_the_folder_as_the_watchers_always_said(tmp_path, monkeypatch):
    """file_events.py's and events.py's words (an errno, no strerror), and NetnsNames' descriptor closed."""
    from netlab.kernel import events, file_events, netns

    gone = str(tmp_path / "gone")
    with pytest.raises(FileNotFoundError) as caught:
        file_events.FileEvents(os.path.join(gone, "lab.yaml"))
    assert str(caught.value) == f"[Errno 2] inotify_add_watch {gone}"
    monkeypatch.setattr(netns, "NETNS_DIR", gone)
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError) as caught:
        events.NetnsNames(["x"])
    assert str(caught.value) == f"[Errno 2] inotify_add_watch {gone}"
    assert sorted(os.listdir("/proc/self/fd")) == before

    def full(flags):  # the open-files limit reached: -1, EMFILE (as ctypes keeps errno)
        ctypes.set_errno(errno.EMFILE)
        return -1

    monkeypatch.setattr(libc, "_handle", [SimpleNamespace(inotify_init1=full)])
    with pytest.raises(OSError) as caught:
        libc.inotify_init1(0)
    assert str(caught.value) == "[Errno 24] inotify_init1"
