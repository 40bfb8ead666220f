"""A log that starts over on tmpfs by a punched hole (echo_log.start_over_if_full) while a reader reads it
(`netlab logs`, `logs -f`, Lab.logs(), the DNS reload wait): the reader sought to where the data started, the
hole was punched there before its read, and it read the hole's NUL bytes, which `netlab logs` printed (review:
30 of 3000 reads raced so). A read that holds a NUL byte asks again where the data starts and reads on from
there; NUL bytes the container wrote past it are its output, printed. On /dev/shm, a tmpfs (no root)."""

from __future__ import annotations

import os
import tempfile

import pytest

from netlab.api.exec import LogWriter, open_log
from netlab.workload import echo_log
from netlab.workload.echo_log import LogFile, data_start, start_over_if_full

BODY = b"".join(b"line %06d\n" % i for i in range(120000))  # 1.3 MB, 12 bytes a line
LAB = "lfread1"


@pytest.fixture
def log(monkeypatch):
    """A command container's log on a tmpfs, past the limit (1 MiB here), and the container's O_APPEND fd."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm (a tmpfs) on this machine")
    monkeypatch.setattr(echo_log, "LOG_MAX", 2**20)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        path = os.path.join(folder, "dns.main.log")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.write(fd, BODY)
        try:
            yield path, fd
        finally:
            os.close(fd)


def started_over_on_tmpfs(path: str) -> None:
    assert start_over_if_full(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == len(BODY) and data_start(fd) > 0, "not punched: /dev/shm is not a tmpfs?"
    finally:
        os.close(fd)


def test_a_hole_punched_between_the_readers_seek_and_its_read_is_never_read(log):
    path, _fd = log
    with open_log(path, "dns", "main", LAB, writer=LogWriter(os.getpid(), True)) as fh:  # at the data start: 0
        started_over_on_tmpfs(path)
        data = fh.read()
    assert b"\0" not in data
    lines = data.split(b"\n")
    assert b"this log reached 1 MiB and starts over" in lines[0] and lines[-2] == b"line 119999"


def test_a_follower_behind_the_hole_reads_on_from_the_data_start(log):
    path, fd = log
    with LogFile.open(path) as fh:
        assert fh.read(1000).startswith(b"line 000000\n")  # a slow reader, its buffer holding old lines
        started_over_on_tmpfs(path)
        os.write(fd, b"after\n")
        rest = fh.read()
    assert b"\0" not in rest and rest.endswith(b"line 119999\nafter\n")
    assert b"this log reached 1 MiB and starts over" in rest.split(b"\n")[0]


def test_nul_bytes_the_container_wrote_are_its_output(log):
    path, fd = log
    with LogFile.open(path) as fh:
        started_over_on_tmpfs(path)
        os.write(fd, b"bin\0ary\n")
        assert fh.read().endswith(b"line 119999\nbin\0ary\n")
        os.write(fd, b"\0\0\n")  # past the data start: read as written, as `logs -f` reads on
        assert fh.read() == b"\0\0\n"
    with LogFile.open(path) as fh:
        assert fh.read().endswith(b"bin\0ary\n\0\0\n")
