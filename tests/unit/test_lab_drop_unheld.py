"""A command whose lock was cut short drops a folder it found holding its mark alone
(lab_lock._drop_if_unheld -> lab_removal.drop) without holding any lock: an ``up`` that made and took the lock
there in that moment had its lock file taken away under it."""

from __future__ import annotations

import fcntl
import os

from netlab.realize import lab_folder, lab_lock, lab_removal, state_dir


def test_an_unheld_drop_leaves_the_folder_whose_lock_another_took_meanwhile(state_root, monkeypatch):
    path = str(state_root / "rv")
    assert lab_folder.make(path, "rv")  # made by a command stopped before it opened its lock: the mark alone
    real, held = lab_removal.drop, []

    def racing(root: str, lab: str, *names: tuple[str, ...]) -> None:
        # an `up` of the lab, between the dropper's listdir and its drop: it makes the lock and takes it
        fd, lock = lab_lock._lock_lab_file("rv", state_dir.LOCK_FILE, 0.0, waiting=lambda h: "",
                                           busy=lambda h: RuntimeError(h))
        held.append(fd)
        real(root, lab, *names)

    monkeypatch.setattr(lab_removal, "drop", racing)
    try:
        lab_lock._drop_if_unheld("rv")
        assert held and lab_lock._same_file(held[0], os.path.join(path, state_dir.LOCK_FILE)), \
            "the up's held lock was taken off the lab's path: another command can now lock a new one beside it"
    finally:
        for fd in held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
