"""Keeps unit tests out of the machine's lab folders (tests/unit/conftest.py installs it).

The unit suite runs as root on machines where labs are up. A test that reached /run/netlab read those labs (its
outcome depended on what ran beside it: "lab 'x' is not up (labs up: ...)") or left folders there (17c2fb8:
/run/netlab/g and /run/netlab/qx1f). conftest gives every test a state directory of its own; this audit hook
(sys.addaudithook) fails the test that still reaches the real one: a test that points STATE_ROOT back at it, a
path spelled out. It sees the file operations of this process only: the processes a test starts get the test's
own state directory by NETLAB_STATE_DIR.
"""

from __future__ import annotations

import os
import sys

import pytest

from netlab.realize import state_dir

ROOTS = (state_dir.DEFAULT_STATE_ROOT,)
# The audit events of the os calls that read or change a directory's entries or a file.
WATCHED = frozenset({"open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rmdir", "os.rename",
                     "os.link", "os.symlink", "os.chmod", "os.chown", "os.utime", "os.truncate", "os.setxattr",
                     "os.removexattr", "os.getxattr", "os.listxattr"})
TWO_PATHS = ("os.rename", "os.link", "os.symlink")


class Guard:
    """The test running (None between tests, and during a test marked ``real_state_dir``), and what it reached."""

    test: str | None = None
    hits: list[str] = []


def reached(path: object) -> bool:
    """Whether ``path`` (a str, bytes or a file descriptor) is one of ROOTS or under one."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return False
    try:
        path = os.path.abspath(path)
    except FileNotFoundError:  # the working directory deleted (a test of that: test_deleted_cwd.py): not a root's
        return False
    return any(path == root or path.startswith(root + os.sep) for root in ROOTS)


def audit(event: str, args: tuple) -> None:
    if event not in WATCHED or Guard.test is None:
        return
    for path in args[:2] if event in TWO_PATHS else args[:1]:
        if reached(path):
            said = f"{Guard.test} reached the machine's lab folders: {event} {path}"
            Guard.hits.append(said)  # the fixture fails the test with it, should the code below swallow it
            raise pytest.fail.Exception(said)  # a BaseException: no `except OSError` of netlab's takes it


_installed = False


def install() -> None:
    """Once a process: a hook cannot be removed, so it looks at Guard.test."""
    global _installed
    if not _installed:
        sys.addaudithook(audit)
        _installed = True
