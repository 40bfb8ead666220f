"""When `up --watch` reads its edited file (api/watch_file.py): once its writer closed it, never halfway; a writer
that keeps it open is waited for a bounded time. The kernel's events are real (inotify needs no root); the clock
is the test's."""

from __future__ import annotations

import os

from netlab.api.watch_file import FileWrites
from netlab.kernel.file_events import DONE, GONE, WRITING, FileEvents


def test_the_kernel_says_when_a_save_begins_and_when_its_writer_is_done(tmp_path):
    path = tmp_path / "topo.yaml"
    path.write_text("name: a\n")
    events = FileEvents(str(path))
    try:
        fh = open(path, "w")  # a shell's `>`: truncated at open
        assert events.read() == [WRITING]
        fh.write("name: b\n")
        fh.flush()
        assert events.read() == [WRITING]
        fh.close()
        assert events.read() == [DONE]
        (tmp_path / "other.yaml").write_text("x: 1\n")  # another file of the folder: not ours
        assert events.read() == []
        (tmp_path / ".topo.yaml.tmp").write_text("name: c\n")
        os.replace(tmp_path / ".topo.yaml.tmp", path)  # an editor's atomic save: whole at once
        assert events.read() == [DONE]
        os.rename(path, tmp_path / "topo.yaml~")  # vim's save: the file to its backup, then a new one written
        assert events.read() == [GONE]
        path.write_text("name: d\n")
        assert events.read() == [WRITING, WRITING, DONE]  # created, written, closed
        with open(path) as reader:  # a reader (the watcher itself) is no writer
            reader.read()
        assert events.read() == []
    finally:
        events.close()


class Told:
    """FileEvents as the test tells them."""

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.fd = -1
        self.path = "/nonexistent-folder-of-wf/topo.yaml"

    def read(self) -> list[str]:
        out, self.queued = self.queued, []
        return out

    def read_named(self) -> list[tuple[str, str]]:
        return [(what, self.path) for what in self.read()]

    def replaced(self) -> bool:
        return False


def writes(wait: float = 2.0) -> tuple[FileWrites, Told, list[float]]:
    now = [100.0]
    w = FileWrites(lambda: now[0], wait)
    told = Told()
    w.events = told  # type: ignore[assignment]
    return w, told, now


def test_a_change_is_read_once_its_writer_closes_the_file():
    w, told, now = writes()
    assert not w.writing() and w.due() is None
    told.queued = [WRITING]  # truncated: the file is empty now
    assert w.writing() and w.due() == 102.0
    now[0] = 101.0
    told.queued = [WRITING]  # written again, still open: the wait counts from the first write
    assert w.writing() and w.due() == 102.0
    told.queued = [DONE]
    assert w.read() is True  # closed: looked at now
    assert not w.writing() and w.due() is None


def test_a_writer_that_keeps_the_file_open_is_waited_for_a_bounded_time_then_the_file_is_read_as_it_is():
    w, told, now = writes(wait=2.0)
    told.queued = [WRITING]
    assert w.writing()
    now[0] = 101.99
    assert w.writing()
    now[0] = 102.0
    assert not w.writing()  # read now, as it is (said not valid if it is not)
    assert w.due() is None
    told.queued = [WRITING]  # the same writer writes more, later: waited for anew, once
    now[0] = 103.0
    assert w.writing() and w.due() == 105.0


def test_a_file_moved_away_is_waited_for_as_a_write_and_a_rename_over_it_is_done():
    w, told, now = writes()
    told.queued = [GONE]
    assert w.writing()
    told.queued = [DONE]  # a new file renamed over the name
    assert not w.writing()
    told.queued = [GONE]
    assert w.writing()
    now[0] = 102.5
    assert not w.writing()  # removed for good: read (and said missing) after the wait


def test_without_inotify_nothing_is_waited_for():
    w = FileWrites(lambda: 0.0)
    w.watch("/nonexistent-folder-of-wf/topo.yaml")  # inotify cannot watch a folder that is not there
    assert w.fds() == [] and not w.writing() and w.read() is False
