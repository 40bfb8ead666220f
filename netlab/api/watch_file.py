"""When ``up --watch`` reads its edited topology file: once its writer is done with it.

A save that truncates the file, then writes it, is a file empty or cut short for a moment: read then, it was
reported not valid ("file is empty", a YAML error), and the next look applied the edit. The kernel says when a
write begins and when its writer closes the file (or renames another file over it: an editor's atomic save,
which is whole at once): netlab.kernel.file_events. A change seen while a write is open is read once the
writer closes the file, or, for a writer that keeps it open (a slow one, one that never closes it), once
``wait`` seconds have passed since the write began: the file is read then as it is (and said not valid if it
is not). A file removed or moved away is waited for as a write (an editor's save that moves the file to its
backup, then writes a new one), then said missing. A read made while a write began since was not done (the save
came between the look and the read: api/watch_repair.apply_file) is neither said nor applied, valid or not (its
first part can be a valid topology): the file is read again once that write is done. Without inotify (it could
not watch the folder; a network file system, where others' writes are not told), the file is read at each change
its stat shows, as before.

The files the topology includes (``include: [pol/*.yaml]``) are the watched file's too: their stat (mtime, size,
inode) and which files each glob matches are part of its id (:func:`file_id`), so an edited policy file, a new
file a glob matches and a deleted one are applied as an edit of the topology is; and the kernel's events of the
folders the globs look in say when their writes are done. A glob with a wildcard in a folder's name
(``*/np.yaml``) is watched in the folder before it: its files' edits are seen by the stat look alone.

A change no event said done (the stat look's alone: such a glob's files, a folder made again before it is watched
anew, a network file system; or a write the wait gave up on) is applied once the files have stood still ``wait``
seconds (:meth:`FileWrites.ready`): a writer halfway through stops changing the file only once it is done. A
glob's folder deleted and made again (its watch died with it) is watched anew at the next look.
"""

from __future__ import annotations

import os
import re
from typing import Callable

from netlab.errors import NetlabError
from netlab.kernel.file_events import DONE, GONE, WRITING, FileEvents
from netlab.model import include
from netlab.model.load import read_source

WRITE_WAIT = 2.0  # seconds a change is left unread while its writer keeps the file open


class FileWrites:
    """Whether the watched file is being written, from the kernel's events (:meth:`watch`; none for a watcher of
    a lab's saved topology) and ``clock``."""

    def __init__(self, clock: Callable[[], float], wait: float = WRITE_WAIT):
        self.clock = clock
        self.wait = wait
        self.events: FileEvents | None = None
        self.open_since: float | None = None  # a write began then, and its writer has not closed the file yet
        self.watched: tuple[str, tuple[tuple[str, str], ...]] | None = None  # the path and include globs listened to
        self.closed: dict[str, Stat] = {}  # a file whose writer closed it (real path) -> its stat then
        self.still: tuple[FileId, float] | None = None  # an id seen changed, and since when it has stood so

    def watch(self, path: str) -> None:
        """Listen to the kernel's events of ``path`` and of the files it includes (none where inotify cannot watch
        its folder: the watcher's look at its stat alone then). Called again after each apply: the folders the
        globs look in may have changed; a write seen open stays waited for."""
        globs = included_globs(path)
        if self.events is not None and (path, globs) == self.watched and not self.events.replaced():
            return
        self.close()
        self.watched = (path, globs)
        try:
            self.events = FileEvents(path, globs)
        except OSError:
            self.events = None

    def fds(self) -> list[int]:
        return [self.events.fd] if self.events is not None and self.events.fd >= 0 else []

    def read(self) -> bool:
        """Read what the kernel said; True when a write was done (closed, renamed over): the file is to be looked
        at now."""
        happened = self.events.read_named() if self.events is not None else []
        for what, real in happened:
            if what == DONE:
                self.closed[os.path.realpath(real)] = stat_id(real)
        return self.note([what for what, _ in happened])

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

    def ready(self, old: FileId, new: FileId) -> bool:
        """Whether the look applies ``new`` (the id seen now; ``old`` the one applied last): at once when the
        kernel said every changed file's writer closed it (its stat then is the one seen), else once ``new`` has
        stood still ``wait`` seconds: a change seen by the stat look alone (a folder without inotify, a glob's
        sub-folders, a folder made again before it was watched anew) or by a write the wait gave up on may be a
        writer halfway, which stops changing the file once done. Never while a write is open and waited for.
        A watched folder replaced since (deleted and made again) is watched anew first."""
        self.read()  # a watch the kernel dropped is told among the events
        if self.watched is not None and self.events is not None and self.events.replaced():
            self.close()
            self.watch(self.watched[0])
        if new == old:
            self.still = None
            return False
        if self.still is None or self.still[0] != new:
            self.still = (new, self.clock())
        if self.writing():  # events read after ``new``'s stat: a write begun before it is open
            return False
        if self._closed_all(old, new) or self.clock() >= self.still[1] + self.wait:
            self.still = None
            return True
        return False

    def _closed_all(self, old: FileId, new: FileId) -> bool:
        """Whether each file that differs between ``old`` and ``new`` was closed by its writer as ``new`` sees it
        (an id unknown before: the topology file)."""
        if new is None or self.events is None:
            return False
        seen: list[tuple[str, Stat | None]]
        if old is None:
            seen = [(self.watched[0] if self.watched else "", new[0])]
        else:
            before, now = dict(old[1]), dict(new[1])
            seen = [(name, now.get(name)) for name in set(before) | set(now) if before.get(name) != now.get(name)]
            if old[0] != new[0] and self.watched is not None:
                seen.append((self.watched[0], new[0]))
        return all(stat is not None and self.closed.get(os.path.realpath(name)) == stat for name, stat in seen)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None


Stat = tuple[object, ...]  # mtime, size, inode; ("missing",)
# The topology file's stat, and each file it includes (as messages name it) with its stat
FileId = tuple[Stat, tuple[tuple[str, Stat], ...]] | None
_patterns: dict[str, tuple[object, tuple[str, ...]]] = {}  # topology path -> (its stat, its include patterns)


def stat_id(path: str) -> Stat:
    """What tells a change of a file: its mtime, size and inode (an editor that writes a new file)."""
    try:
        st = os.stat(path)
    except OSError:
        return ("missing",)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def include_patterns(path: str) -> tuple[str, ...]:
    """The ``include:`` patterns the topology file holds now (read again only when its stat changed); () when it
    has none or cannot be read (its apply says why)."""
    own = stat_id(path)
    known = _patterns.get(path)
    if known is not None and known[0] == own:
        return known[1]
    try:
        data = read_source(path).data
    except (NetlabError, OSError, ValueError):
        data = None
    written = data.get("include") if isinstance(data, dict) else None
    patterns = tuple(p for p in written if isinstance(p, str)) if isinstance(written, list) else ()
    _patterns[path] = (own, patterns)
    return patterns


def _folder(path: str) -> str:
    return os.path.realpath(os.path.dirname(os.path.abspath(path)))


def included_globs(path: str) -> tuple[tuple[str, str], ...]:
    """(folder, name pattern) of each include pattern: the folder its glob looks in and the names it matches
    there (``*`` when a folder's name has the wildcard: any name, its sub-folder)."""
    out = []
    for pattern in include_patterns(path):
        searched = include.glob_folder(pattern)
        rest = pattern[len(searched):].lstrip("/")
        name = rest if "/" not in rest else "*"
        out.append((os.path.join(_folder(path), searched) if searched else _folder(path), name))
    return tuple(out)


def included_files(path: str) -> dict[str, Stat]:
    """Each file the topology includes now (as its messages name it) and its stat."""
    folder, base = _folder(path), os.path.dirname(path)
    out = {}
    for pattern in include_patterns(path):
        for real in include.matches(folder, pattern):
            out[os.path.join(base, os.path.relpath(real, folder))] = stat_id(real)
    return out


def file_id(path: str | None) -> FileId:
    """What tells a change of the watched file or of a file it includes: their stat, and which files the globs
    match."""
    if path is None:
        return None
    return (stat_id(path), tuple(sorted(included_files(path).items())))


def changes(path: str, old: FileId, new: FileId) -> list[str]:
    """What changed between two ids, in the watcher's words: ``topo.yaml changed``, ``pol/a.yaml added``,
    ``pol/b.yaml changed``, ``pol/c.yaml removed``; the topology's own words when its id is unknown."""
    if old is None or new is None:
        return [f"{path} changed"]
    out = [f"{path} changed"] if old[0] != new[0] else []
    before, now = dict(old[1]), dict(new[1])
    for name in sorted(set(before) | set(now), key=_natural):
        if name not in before:
            out.append(f"{name} added")
        elif name not in now:
            out.append(f"{name} removed")
        elif before[name] != now[name]:
            out.append(f"{name} changed")
    return out or [f"{path} changed"]


def _natural(name: str) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
