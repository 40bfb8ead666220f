"""Many namespaces read at once, by this process and forked children (one reader per core).

Most of a namespace's read (readns.py) is Python decoding the dumps, under the
GIL: a second thread only takes turns with the first (500 pods on 2 cores:
~0.5 s in one thread, ~0.7 s in two). So many namespaces are read by
processes instead (:func:`readers`, :func:`in_children`): this one and forked
children, each taking a few namespaces at a time from one :class:`Dealer`
until none are left, so a reader that starts late or has other work (the
caller's ``meanwhile``) simply reads fewer. A child sends every part as soon
as it has read it, pickled (what it read, or what the caller's digest made of
it: ``status`` compares a pod there), and this process takes what has come in
between the parts it reads itself.

:class:`Ahead` starts the children before the caller knows what it will ask
(``status``' CLI, while Python loads the plan's modules: lab/readahead.py);
the caller then takes each namespace as if read as asked, and digests it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import termios
import time
from typing import Any, Callable, Iterator, Sequence

from netlab.kernel import testhooks
from netlab.kernel.base import KernelError, Snapshot
from netlab.kernel.child import LENGTH, Child, ChildError, readable, start_child, write_all
from netlab.kernel.readns import as_asked

MIN_SHARE = testhooks.READ_SHARE or 64  # namespaces per reader at least: fewer are read faster than a child forks
MAX_READERS = 4
SHARE_DEADLINE = 120.0  # seconds a child may take for its namespaces (~0.25 s for 250)

Reader = Callable[[Iterator[list[str]]], dict]


def readers(count: int) -> int:
    """How many processes read ``count`` namespaces: one per core (up to MAX_READERS), at least
    MIN_SHARE namespaces each."""
    return max(1, min(os.cpu_count() or 1, MAX_READERS, count // MIN_SHARE))


class Dealer:
    """Namespaces handed out a few at a time to whichever reader asks next, across fork.

    A pipe holds one two-byte token per part, its write end closed before any
    reader starts; every reader reads tokens from it until end-of-file. The
    kernel hands each read of a pipe whole to one reader, and every read here
    takes exactly one token, so no part is read twice or lost. Parts are dealt
    in the order the names are listed (a lab's nodes, the biggest, first), a
    few namespaces each (one syscall a part; the last part is the most a reader
    can be left waiting for another).
    """

    PART = 16  # namespaces a part at most, unless there are more than TOKENS parts of them
    TOKENS = 2048  # parts at most: 4 KiB of tokens, what the smallest pipe holds

    def __init__(self, names: Sequence[str], readers: int = 1):
        self.names = list(names)
        self.size = max(-(-len(self.names) // self.TOKENS), min(self.PART, len(self.names) // (4 * readers)), 1)
        count = -(-len(self.names) // self.size)
        self.fd, w = os.pipe2(os.O_CLOEXEC)
        try:
            write_all(w, b"".join(i.to_bytes(2, "little") for i in range(count)))
        finally:
            os.close(w)

    def parts(self) -> Iterator[list[str]]:
        """The parts this reader gets, one by one, as it asks for them."""
        while token := os.read(self.fd, 2):
            i = int.from_bytes(token, "little")
            yield self.names[i * self.size:(i + 1) * self.size]

    def left(self) -> int:
        """Parts no reader has taken yet."""
        return int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, bytes(4)), "little") // 2

    def close(self) -> None:
        os.close(self.fd)
        self.fd = -1


class Readers:
    """Forked children reading the namespaces ``names`` as a :class:`Dealer` deals them, from their start
    until :meth:`finish` (this process then reads what is left) or :meth:`stop`.

    Each child sends the entries of every part as soon as it has read them, on a pipe of its own (made
    big enough for a big lab's share, so that a child does not wait while this process is busy), then its
    result on its result pipe when no part is left: the number of parts it sent.
    """

    PIPE = 1 << 20  # bytes a child's pipe holds (what a user may ask for: fs.pipe-max-size)

    def __init__(self, names: Sequence[str], there: Reader):
        count = readers(len(names))
        self.dealer = Dealer(names, count)
        self.streams: list[_Stream] = []
        try:
            for _ in range(count - 1):
                r, w = os.pipe2(os.O_CLOEXEC)
                try:
                    try:
                        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.PIPE)
                    except OSError:
                        pass  # a smaller pipe: the child waits for this process to read, that is all
                    child = start_child(_send_parts, (there, self.dealer.parts(), w), what="a reader of namespaces")
                except BaseException:
                    os.close(r)
                    raise
                finally:
                    os.close(w)  # the child's alone: its end of file is the child's end
                self.streams.append(_Stream(child, r))
        except BaseException:
            self.stop()
            raise

    def finish(self, here: Reader, meanwhile: Callable[[], None] | None = None,
               take: Callable[[dict], None] | None = None) -> dict:
        """``meanwhile()``; then, part by part, the children's entries that have come (``take(entries)``, or
        merged into the result) and ``here(parts)`` of the next part no child took; then what the
        children send until they end. Returns ``here``'s entries and, without ``take``, the children's.
        The first failure is raised (a child's KernelError as itself) once every child is reaped."""
        out: dict = {}
        take = take or out.update
        try:
            if meanwhile is not None:
                meanwhile()
            for part in self.dealer.parts():
                for stream in self.streams:
                    for entries in stream.arrived():
                        take(entries)
                out.update(here(iter([part])))
            deadline = time.monotonic() + SHARE_DEADLINE
            for stream in list(self.streams):
                try:
                    for entries in stream.rest(deadline):
                        take(entries)
                    self.streams.remove(stream)  # result() reaps the child, whatever it answers
                    stream.close()
                    stream.child.result(max(0.0, deadline - time.monotonic()))
                except ChildError as exc:
                    raise KernelError(None, errno.EIO, f"reading namespaces: {exc}") from None
            return out
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill and reap the children still reading (nothing they read is wanted), close the pipes."""
        for stream in self.streams:
            stream.child.stop()
            stream.close()
        self.streams = []
        if self.dealer.fd >= 0:
            self.dealer.close()


def in_children(names: Sequence[str], here: Reader, there: Reader,
                meanwhile: Callable[[], None] | None = None) -> dict:
    """The namespaces ``names`` read by :func:`readers` processes: ``here(parts)`` in this one and
    ``there(parts)`` in each forked child (it leaves nothing behind here), each reading the parts its
    iterator deals it, together every name once. ``meanwhile()``, the caller's other work, runs here first,
    while the children start reading (they are forked before it runs, so nothing it starts is in them).
    The first failure is raised (a child's KernelError as itself) once every child is reaped."""
    return Readers(names, there).finish(here, meanwhile)


def _send_parts(there: Reader, parts: Iterator[list[str]], w: int) -> int:
    """In a child: read each part dealt, and send its entries at once (LENGTH, then them pickled)."""
    sent = 0
    for part in parts:
        data = pickle.dumps(there(iter([part])), pickle.HIGHEST_PROTOCOL)
        write_all(w, LENGTH.pack(len(data)) + data)
        sent += 1
    os.close(w)  # the end of the parts; the result follows on the result pipe
    return sent


class Ahead:
    """Namespaces read by forked children before the caller knows what it will ask of them: with the
    sysctl files ``there`` reads and the iptables tables (kernel/live_read.py's read_ahead)."""

    def __init__(self, names: Sequence[str], there: Reader):
        def each(parts: Iterator[list[str]]) -> dict:
            # A namespace that cannot be read (gone since the state was saved) is left out: whoever asks
            # for it reads it again, and says what it found.
            out: dict = {}
            for ns in (ns for part in parts for ns in part):
                try:
                    out.update(there(iter([[ns]])))
                except (KernelError, OSError, ValueError):
                    pass
            return out

        self.readers = Readers(names, each)

    def finish(self, asks: dict[str, tuple[Sequence[str], bool]], here: Reader,
               meanwhile: Callable[[], None] | None, digest: Callable[[str, Snapshot], Any] | None) -> dict:
        """:meth:`Readers.finish` with ``here(parts)`` of the asked namespaces no child took; each asked
        namespace a child read is taken as if read as asked (``digest`` applied here). A namespace missing
        from the result (not read ahead, or asked a sysctl file the children did not read) is the caller's
        to read."""
        theirs: dict = {}

        def take(entries: dict) -> None:
            for ns, (snap, index) in entries.items():
                if ns in asks and as_asked(snap, *asks[ns]):
                    theirs[ns] = (digest(ns, snap) if digest else snap, index)

        mine = self.readers.finish(lambda parts: here([ns for ns in part if ns in asks] for part in parts),
                                   meanwhile, take)
        return {**theirs, **mine}

    def stop(self) -> None:
        self.readers.stop()


class _Stream:
    """The parts a child sends as it reads them: LENGTH + pickled entries each, then end of file."""

    def __init__(self, child: Child, fd: int):
        self.child, self.fd, self.buf = child, fd, bytearray()
        os.set_blocking(fd, False)

    def arrived(self) -> list[dict]:
        """The parts that came whole so far; never waits."""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        return self._parts()

    def rest(self, deadline: float) -> list[dict]:
        """The parts still to come, until the child closes its end (a child that dies closes it too)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not readable(self.fd, left):
                raise ChildError(f"{self.child.what} did not finish within {SHARE_DEADLINE:g} s")
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return self._parts()
            self.buf += chunk

    def _parts(self) -> list[dict]:
        out = []
        while len(self.buf) >= LENGTH.size:
            size = LENGTH.unpack_from(self.buf)[0]
            if len(self.buf) < LENGTH.size + size:
                break
            out.append(pickle.loads(self.buf[LENGTH.size:LENGTH.size + size]))
            del self.buf[:LENGTH.size + size]
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
