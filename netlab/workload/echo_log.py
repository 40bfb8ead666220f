"""The echo server's logs: one container's lines, written once per round of the loop, and a log that would
pass :data:`LOG_MAX` started over with a line that says so, as the kubelet rotates a container's log.

:class:`Log` is what the loop (echo.py) writes a container's requests to; :func:`start_over_if_full` is how
the lab's server (echoserver.py) keeps a command container's own log bounded. Standard library only (fallocate
through kernel/libc.py, itself standard library only): the echo server runs it inside the pods.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import time

from netlab.kernel import libc

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


START_OVER_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # no O_APPEND: pwrite at 0 or the cut
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE = 0x01, 0x02, 0x08  # linux/falloc.h
PAD_MAX = 4096  # the line that says it started over is padded with spaces to the end of a line at most this far


def start_over_if_full(path: str | int) -> bool:
    """A command container's log past :data:`LOG_MAX` starts over, as a :class:`Log` does: the line that says
    so first, then its newest lines (a tenth of it, from the first whole line), the oldest dropped. The
    container writes it itself, through its own descriptor (O_APPEND), so it is looked at from outside now and
    then, as the kubelet's container log manager looks every 10 s (containerLogMonitorInterval), and only while
    the container runs (the caller's part, as the kubelet rotates running containers' logs alone).

    The oldest part goes in one step the container's writes cannot fall into (the kernel holds the file's lock
    for it, as it does for each O_APPEND write): on ext4 and XFS it is collapsed away (FALLOC_FL_COLLAPSE_RANGE:
    the file is shorter by it, the container's next write lands at the new end); where a file system cannot do
    that (tmpfs, which /run is on most machines; btrfs), it is punched into a hole (FALLOC_FL_PUNCH_HOLE: its
    memory or blocks freed, the file as long as before, readers skip the hole: :func:`data_start`). The part
    cut is whole blocks, so the old lines from the cut to the next line's start are written over with the line
    that says it started over (padded with spaces). No line the container writes meanwhile is lost or lands
    before that line; before, the log was read, truncated and written again, and what came between went (QA q52
    2). A file system that can do neither keeps the whole log. True when it started over. ``path``: or the log
    opened (:data:`START_OVER_FLAGS`) by the caller, closed here (the echo server opens it fd-relative)."""
    try:
        fd = os.open(path, START_OVER_FLAGS) if isinstance(path, str) else path
    except OSError:
        return False  # gone with its pod, or no file of ours
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size - (start := data_start(fd)) <= LOG_MAX:
            return False
        unit = max(os.fstatvfs(fd).f_bsize, os.sysconf("SC_PAGE_SIZE"))  # both powers of two
        cut = (st.st_size - LOG_MAX // KEEP_PART) // unit * unit
        if cut <= start:
            return False
        line = padded(starts_over_line(), os.pread(fd, len(starts_over_line()) + PAD_MAX, cut))
        try:
            fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, cut)
            at = 0
        except OSError:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, cut - start)
            at = cut
        os.pwrite(fd, line, at)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def log_cut(folder: str, dir_fd: int | None = None) -> int | None:
    """How a log in ``folder`` starts over: :data:`FALLOC_FL_COLLAPSE_RANGE`, else :data:`FALLOC_FL_PUNCH_HOLE`,
    whichever its file system does, tried for real on a file of two blocks (sparse: no data written) made there
    and gone at once (unnamed where the file system can: O_TMPFILE; else unlinked as soon as made, before it is
    cut). None where it can do neither (NFSv3, 9p, some FUSE, ramfs): a command container's log, which
    :func:`start_over_if_full` cannot start over there, grows without bound. ``dir_fd``: ``folder`` relative to
    it (``"."``: that folder). Raises OSError when no file can be made there."""
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError:  # EOPNOTSUPP: NFS, 9p, FUSE; EISDIR: a kernel before 3.11
        name = os.path.join(folder, f".netlab-log-cut-{os.getpid()}-{os.urandom(4).hex()}")
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            os.close(fd)
            raise
    try:
        unit = max(os.fstatvfs(fd).f_bsize, os.sysconf("SC_PAGE_SIZE"))  # as start_over_if_full cuts
        os.ftruncate(fd, 2 * unit)
        for mode in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE):
            try:
                fallocate(fd, mode | (FALLOC_FL_KEEP_SIZE if mode == FALLOC_FL_PUNCH_HOLE else 0), 0, unit)
                return mode
            except OSError:
                continue
        return None
    finally:
        os.close(fd)


def padded(line: bytes, old: bytes) -> bytes:
    """``line`` (its newline last) to be written over ``old``, the first bytes of what a log keeps: as long as
    the old bytes to the end of the line it ends in (spaces before its newline), so the next line is whole; as
    it is when no line of ``old`` ends past it (a line longer than :data:`PAD_MAX`: the next one is its end)."""
    end = old.find(b"\n", len(line) - 1)
    return line if end < 0 else line[:-1] + b" " * (end + 1 - len(line)) + b"\n"


def data_start(fd: int) -> int:
    """Where the data of log ``fd`` begins: after the hole a log that started over by a punched hole begins with
    (tmpfs), 0 for any other; its size when it holds no data. The descriptor's offset is left where it was (a
    reader's, which its buffer counts on: :class:`LogFile`)."""
    at = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as exc:
        return os.fstat(fd).st_size if exc.errno == errno.ENXIO else 0  # ENXIO: no data past 0
    finally:
        os.lseek(fd, at, os.SEEK_SET)


class LogFile(io.BufferedReader):
    """A container's log opened to be read (``netlab logs`` and ``-f``, Lab.logs(), the DNS reload wait), from where
    its data starts (:func:`data_start`): its :meth:`read` never returns bytes a hole took.

    On tmpfs a log starts over by a hole punched from its data start on (:func:`start_over_if_full`), while a
    reader may be reading there: the bytes it read from the pages punched meanwhile are NUL bytes. A read whose
    bytes hold a NUL asks again where the data starts: when that moved past where the read began, what it read
    is dropped and it reads on from there (the part that went was started over). NUL bytes the container wrote,
    at or past the data start, are read as they are: the data start had not moved past them when they were read,
    and a hole only grows."""

    def __init__(self, fd: int):
        super().__init__(io.FileIO(fd, "rb"))
        self.seek(data_start(fd))

    @classmethod
    def open(cls, path: str) -> "LogFile":
        return cls(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def read(self, size: int | None = -1) -> bytes:
        while True:
            at = self.tell()
            data = super().read(size)
            if b"\0" not in data or (start := data_start(self.fileno())) <= at:
                return data
            self.seek(start)  # read from a part punched since: the log started over, its hole ends there now


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2), which Python's os module has only as posix_fallocate (mode 0). Raises OSError."""
    lib = libc.handle()
    call = getattr(lib, "fallocate64", None) or lib.fallocate  # a 64-bit off_t on every ABI (libc.PROTOTYPES)
    if call(fd, mode, offset, length) != 0:
        raise libc.os_error()


def stamp() -> str:
    now = int(time.time())
    if now != _stamp_cache[0]:
        _stamp_cache[0], _stamp_cache[1] = now, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    return _stamp_cache[1]
