"""The echo server's logs: one container's lines, written once per round of the loop, and a log that would
pass :data:`LOG_MAX` started over with a line that says so, as the kubelet rotates a container's log.

:class:`Log` is what the loop (echo.py) writes a container's requests to; :func:`start_over_if_full` is how
the lab's server (echoserver.py) keeps a command container's own log bounded. Standard library only: the
echo server runs it inside the pods.
"""

from __future__ import annotations

import os
import stat
import time

LOG_MAX = 10 * 2**20  # bytes of a container's log file before it starts over: the kubelet's containerLogMaxSize
KEEP_PART = 10  # a log that starts over keeps its newest tenth of LOG_MAX (1 MiB), from its first whole line


class Log:
    """Where one container's lines go: a file descriptor, written once per round of the loop.

    The echo server logs every connection, so a probed lab's logs grow with every run (a 500-pod matrix: some
    15 MB a run, in /run, which is memory on most machines). Like the kubelet, which rotates a container's log
    once it reaches containerLogMaxSize (10 MiB by default) and shows only the newest file, a log file that
    would pass :data:`LOG_MAX` starts over with a line that says so, then its newest lines (a tenth of it:
    :data:`KEEP_PART`) and the round's: the newest output is never what goes (``netlab logs -f`` follows it on)."""

    __slots__ = ("fd", "pending", "own", "size")

    def __init__(self, fd: int, own: bool = True):
        self.fd, self.own = fd, own
        self.pending: list[str] = []
        try:  # None: not a regular file (a pipe, a terminal), never started over
            st = os.fstat(fd)
            self.size: int | None = st.st_size if stat.S_ISREG(st.st_mode) else None
        except OSError:
            self.size = None

    @classmethod
    def open(cls, path: str) -> "Log":
        return cls(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))

    def write(self, line: str) -> None:
        self.pending.append(line + "\n")

    def flush(self) -> None:
        if not self.pending:
            return
        data = "".join(self.pending).encode(errors="replace")
        self.pending.clear()
        if self.size is not None and self.size + len(data) > LOG_MAX:
            try:
                tail = newest_lines(self.fd, self.size)  # b"" from a descriptor it cannot read
                os.ftruncate(self.fd, 0)  # O_APPEND: the next write lands at the start
                self.size = 0
                data = starts_over_line() + tail + data
            except OSError:
                pass
        try:
            os.write(self.fd, data)  # O_APPEND: a few kB, one write
            if self.size is not None:
                self.size += len(data)
        except OSError:
            pass  # a full disk costs log lines, never answers

    def close(self) -> None:
        self.flush()
        if self.own:
            os.close(self.fd)


_stamp_cache = [0, ""]


def starts_over_line() -> bytes:
    return (f"{stamp()} netlab: this log reached {LOG_MAX // 2**20} MiB and starts over with its newest "
            f"{LOG_MAX // KEEP_PART // 2**20} MiB, as the kubelet rotates a container's log at containerLogMaxSize\n"
            ).encode()


def newest_lines(fd: int, size: int) -> bytes:
    """The newest LOG_MAX / :data:`KEEP_PART` bytes of the ``size`` bytes of log ``fd``, from the first whole line
    (all of them when no line ends there); b"" when it cannot be read (a descriptor opened write-only)."""
    start = max(0, size - LOG_MAX // KEEP_PART)
    try:
        tail = os.pread(fd, size - start, start)
    except OSError:
        return b""
    if start:
        cut = tail.find(b"\n")
        tail = tail[cut + 1:] if 0 <= cut < len(tail) - 1 else tail
    return tail


START_OVER_FLAGS = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def start_over_if_full(path: str | int) -> bool:
    """A command container's log past :data:`LOG_MAX` starts over, as a :class:`Log` does: the line that says
    so first, then its newest lines (:func:`newest_lines`), the oldest dropped. The container writes it itself,
    through its own descriptor (O_APPEND: its next write lands at the new end), so it is looked at from outside
    now and then, as the kubelet's container log manager looks every 10 s (containerLogMonitorInterval), and
    only while the container runs (the caller's part, as the kubelet rotates running containers' logs alone).
    What the container writes between the last read and the truncation (a few microseconds) is read again
    until the file stands still (a few rounds at most). True when it started over. ``path``: or the log opened
    (:data:`START_OVER_FLAGS`) by the caller, closed here (the echo server opens it fd-relative)."""
    try:
        fd = os.open(path, START_OVER_FLAGS) if isinstance(path, str) else path
    except OSError:
        return False  # gone with its pod, or no file of ours
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size <= LOG_MAX:
            return False
        size = st.st_size
        for _ in range(8):
            tail = newest_lines(fd, size)
            now = os.fstat(fd).st_size
            if now == size:
                break
            size = now
        os.ftruncate(fd, 0)
        os.write(fd, starts_over_line() + tail)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def stamp() -> str:
    now = int(time.time())
    if now != _stamp_cache[0]:
        _stamp_cache[0], _stamp_cache[1] = now, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    return _stamp_cache[1]
