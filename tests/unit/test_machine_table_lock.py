"""tests/machine_table.py: the root tests' lock on the machine's one neighbour table. A test that asserts the
table's machine-wide counters holds it alone: no test that holds it shared runs meanwhile, and one that comes
while it waits goes after it (with flock(2) alone it went first, for as long as the shared holders overlapped)."""

from __future__ import annotations

import os
import threading

import machine_table


class Holder(threading.Thread):
    """Holds the table (alone or shared) from its start until ``release`` is set; ``log`` says when it got it."""

    def __init__(self, name: str, exclusive: bool, folder: str, log: list[str]):
        super().__init__(name=name, daemon=True)
        self.exclusive, self.folder, self.log = exclusive, folder, log
        self.got, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        with machine_table.hold(self.exclusive, self.folder):
            self.log.append(f"{self.name} got it")
            self.got.set()
            self.release.wait()
            self.log.append(f"{self.name} lets go")  # still holding it: before the next holder's "got it"


def test_a_test_alone_waits_for_the_shared_holders_and_the_next_ones_wait_for_it(tmp_path):
    folder, log = str(tmp_path), []
    shared = Holder("shared", False, folder, log)
    shared.start()
    assert shared.got.wait(30)
    alone = Holder("alone", True, folder, log)
    alone.start()
    while not machine_table.waits_for(folder, os.getpid()):  # alone waits for the table now
        assert alone.is_alive() and not alone.got.is_set()
    later = Holder("later", False, folder, log)
    later.start()
    later.join(1)  # a chance to pass alone while shared still holds the table (it must not take it)
    shared.release.set()
    assert alone.got.wait(30)
    alone.release.set()
    assert later.got.wait(30)
    later.release.set()
    for t in (shared, alone, later):
        t.join(30)
    assert log == ["shared got it", "shared lets go", "alone got it", "alone lets go", "later got it", "later lets go"]


def test_shared_holders_hold_it_together(tmp_path):
    folder, log = str(tmp_path), []
    one, two = Holder("one", False, folder, log), Holder("two", False, folder, log)
    one.start()
    assert one.got.wait(30)
    two.start()
    assert two.got.wait(30)  # while one holds it
    one.release.set()
    two.release.set()
    one.join(30)
    two.join(30)
