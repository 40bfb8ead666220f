"""The watcher and the other netlab commands that change its lab (a part of api/watch.Watcher, which holds these
attributes): who held the lab's lock since the last look (`netlab break`, whose change wakes the watcher a moment
after it let go), waiting while one holds it (what the kernel shows then is its work half done, not drift), and
whether an `up --reconfigure` of another topology took the lab from the watched file."""

from __future__ import annotations

import os
import time
from typing import Callable

from netlab.api.running import built_in
from netlab.api.watch_lines import replaced_words
from netlab.api.watch_listen import SETTLE
from netlab.api.watch_repair import FileId
from netlab.realize.lab_lock import lab_lock_holder, lab_lock_stamp
from netlab.realize.state import LabState, replaces


class OtherCommands:
    lab_name: str
    path: str | None
    saved: bool
    stop: bool
    replaced: str | None
    lock_stamp: tuple[int, int, int] | None
    file_id: FileId
    log: Callable[[str], None]

    def _file_id(self) -> FileId:
        raise NotImplementedError

    def _held_since(self) -> str | None:
        """Who held the lab's lock since the last look and let it go (`netlab break`, whose change may wake the
        watcher a moment after it is done): what is seen now is its work (one that holds it now is waited for,
        _wait_for_other). A look at the lock file's stat each wake (twice a second at least), no lock taken but
        when it changed; a command that changed nothing to be seen is forgotten at the next wake."""
        stamp = lab_lock_stamp(self.lab_name)
        if stamp == self.lock_stamp or lab_lock_holder(self.lab_name) is not None:
            return None  # nobody took it; or someone holds it now: looked at again once it is done
        self.lock_stamp = stamp
        last = lab_lock_holder(self.lab_name, now=False)
        return None if last is None or last.startswith(f"pid {os.getpid()} ") else last

    def _wait_for_other(self) -> str | None:
        """While another command holds the lab's lock, it is changing the lab: wait until it is done (or a signal
        stops the watcher). Returns who it was ("pid N (netlab up)"), None when nobody held the lab."""
        holder = lab_lock_holder(self.lab_name)
        if holder is None or holder.startswith(f"pid {os.getpid()} "):
            return None
        while not self.stop and lab_lock_holder(self.lab_name) is not None:
            if self._file_id() != self.file_id:  # its file changed meanwhile: its apply waits for the lab itself
                break
            time.sleep(SETTLE)
        self.lock_stamp = lab_lock_stamp(self.lab_name)  # its work is said by this round, not again
        return holder

    def _follows(self, state: LabState) -> bool:
        """Whether the lab as ``state`` says it is still the watched one: always for a watcher of the lab's saved
        topology; for a file's, the lab of that file; for the built-in default's, a lab saved without a file whose
        topology is the default's (`netlab impair`'s impairments aside): the state keeps no file for a dict either,
        and a library `up` of a dict with the default lab's name is another topology."""
        if self.saved:
            return True
        if self.path is None:
            return state.source is None and built_in(state.topology, impaired=True)
        return not replaces(state, self.path)

    def _replaced(self, state: LabState) -> bool:
        """Whether another `up --reconfigure` made the lab from another topology than the one watched (not for a
        watcher of the lab's saved topology, which follows it): then it says so, and stops."""
        if self._follows(state):
            return False
        by = lab_lock_holder(self.lab_name, now=False)  # who took the lab's lock last
        if by is None or by.startswith(f"pid {os.getpid()} "):
            by = "another netlab up"
        dict_made = state.source is None and not built_in(state.topology, impaired=True)
        said, self.replaced = replaced_words(self.lab_name, self.path, state.source, by, dict_made)
        self.log(said)
        self.stop = True
        return True
