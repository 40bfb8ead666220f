"""When ``up --watch`` reads its edited topology file: once its writer is done with it.

A save that truncates the file, then writes it, is a file empty or cut short for a moment: read then, it was
reported not valid ("file is empty", a YAML error), and the next look applied the edit. The kernel says when a
write begins and when its writer closes the file (or renames another file over it: an editor's atomic save,
which is whole at once): netlab.kernel.file_events. A change seen while a write is open is read once the
writer closes the file, or, for a writer that keeps it open (a slow one, one that never closes it), once
``wait`` seconds have passed since the write began: the file is read then as it is (and said not valid if it
is not). A file removed or moved away is waited for as a write (an editor's save that moves the file to its
backup, then writes a new one), then said missing. A read that finds the file not valid while a write began
since (the save came between the look and the read) is not said: the file is read again once that write is
done. Without inotify (it could not watch the folder; a network file system, where others' writes are not
told), the file is read at each change its stat shows, as before.
"""

from __future__ import annotations

from typing import Callable

from netlab.kernel.file_events import DONE, GONE, WRITING, FileEvents

WRITE_WAIT = 2.0  # seconds a change is left unread while its writer keeps the file open


class FileWrites:
    """Whether the watched file is being written, from the kernel's events (:meth:`watch`; none for a watcher of
    a lab's saved topology) and ``clock``."""

    def __init__(self, clock: Callable[[], float], wait: float = WRITE_WAIT):
        self.clock = clock
        self.wait = wait
        self.events: FileEvents | None = None
        self.open_since: float | None = None  # a write began then, and its writer has not closed the file yet

    def watch(self, path: str) -> None:
        """Listen to the kernel's events of ``path`` (none where inotify cannot watch its folder: the watcher's
        look at its stat alone then)."""
        try:
            self.events = FileEvents(path)
        except OSError:
            self.events = None

    def fds(self) -> list[int]:
        return [self.events.fd] if self.events is not None and self.events.fd >= 0 else []

    def read(self) -> bool:
        """Read what the kernel said; True when a write was done (closed, renamed over): the file is to be looked
        at now."""
        return self.note(self.events.read() if self.events is not None else [])

    def note(self, happened: list[str]) -> bool:
        done = False
        for what in happened:
            if what in (WRITING, GONE):  # gone: a save that moves the file away, then writes a new one
                if self.open_since is None:
                    self.open_since = self.clock()
            elif what == DONE:
                self.open_since = None
                done = True
        return done

    def due(self) -> float | None:
        """When the open write stops being waited for (None: no write is open)."""
        return None if self.open_since is None else self.open_since + self.wait

    def writing(self) -> bool:
        """Whether a write is open and still waited for (events read first). Once the wait is over, the file is
        read as it is, and a write that begins after that is waited for anew."""
        self.read()
        if self.open_since is None:
            return False
        if self.clock() < self.open_since + self.wait:
            return True
        self.open_since = None
        return False

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
