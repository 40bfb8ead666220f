"""How a command container's log starts over (echo_log.start_over_if_full) where the file system cannot collapse
a file's oldest blocks away (tmpfs: a hole is punched instead) or cannot do either (the log is kept whole), and
the line that says so, written over the old lines to the next line's start (no root)."""

from __future__ import annotations

import errno
import os

import pytest

from helpers import log_start, read_log
from netlab.workload import echo_log
from netlab.workload.echo_log import FALLOC_FL_COLLAPSE_RANGE, padded, start_over_if_full

BODY = b"".join(b"line %06d\n" % i for i in range(120000))  # 1.3 MB, 12 bytes a line


@pytest.fixture
def refused(monkeypatch):
    """fallocate refusing the modes put in the set returned (EOPNOTSUPP, as tmpfs refuses a collapse)."""
    modes: set[int] = set()
    real = echo_log.fallocate

    def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
        if mode in modes or "all" in modes:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        real(fd, mode, offset, length)

    monkeypatch.setattr(echo_log, "fallocate", fallocate)
    monkeypatch.setattr(echo_log, "LOG_MAX", 2**20)
    return modes


def test_a_log_that_cannot_be_collapsed_gets_a_hole_that_readers_skip_and_starts_over_again(tmp_path, refused):
    refused.add(FALLOC_FL_COLLAPSE_RANGE)
    path = tmp_path / "dns.main.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # the container's, as up opens it
    os.write(fd, BODY)
    assert start_over_if_full(str(path))
    size, start = os.path.getsize(path), log_start(path)
    assert size == len(BODY) and start > 0 and start % 4096 == 0  # as long as before, its oldest blocks a hole
    lines = read_log(path).encode().split(b"\n")
    assert b"this log reached 1 MiB and starts over" in lines[0] and lines[-1] == b""
    first = int(lines[1].split()[1])
    assert lines[1:-1] == [b"line %06d" % i for i in range(first, 120000)]
    assert not start_over_if_full(str(path))  # what is left is under the limit, however long the file is
    os.write(fd, BODY)  # past it again: the hole grows from where it began
    assert start_over_if_full(str(path))
    assert log_start(path) > size and os.stat(path).st_blocks * 512 < 2**20
    lines = read_log(path).encode().split(b"\n")
    assert b"starts over" in lines[0] and lines[-2] == b"line 119999" and b"starts over" not in b"".join(lines[1:])
    os.close(fd)


def test_a_log_that_can_be_neither_collapsed_nor_punched_is_kept_whole(tmp_path, refused):
    refused.add("all")
    path = tmp_path / "dns.main.log"
    path.write_bytes(BODY)
    assert not start_over_if_full(str(path))
    assert path.read_bytes() == BODY  # no line lost: not bounded there


def test_the_line_that_says_it_starts_over_ends_where_an_old_line_ended():
    line = b"netlab: starts over\n"  # 20 bytes
    assert padded(line, b"x" * 25 + b"\nnext\n") == b"netlab: starts over" + b" " * 6 + b"\n"
    assert padded(line, b"x" * 19 + b"\nnext\n") == line  # it ends where that line ended
    assert padded(line, b"x" * 10 + b"\n" + b"y" * 20 + b"\n") == b"netlab: starts over" + b" " * 12 + b"\n"
    assert padded(line, b"x" * 100) == line  # no line ends in reach: the next one is the rest of a long line
