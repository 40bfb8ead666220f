"""QA q39 4: `netlab quiz` on a lab that `up --watch` keeps. The watcher repaired the fault within a second and its
line gave the answer away ("pid N (netlab break ip-forward-off) changed the lab"): the quiz held the lab's lock under
"netlab break SCENARIO". A watched lab is refused (exit 3, nothing broken, the watcher's pid named), and a quiz
holds the lock as "netlab quiz"."""

from __future__ import annotations

import pytest

from helpers import netlab, state_path, unique_lab, write_topology
from watching import topology, watching

pytestmark = pytest.mark.root


def test_a_quiz_on_a_watched_lab_is_refused_and_a_quiz_names_no_scenario_in_the_labs_lock(tmp_path):
    name = unique_lab("ph")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        quiz = netlab("quiz", "--lab", name, "--seed", "3", check=False)
        assert quiz.returncode == 3, quiz
        pid = watcher.proc.pid
        assert quiz.stderr.strip() == (
            f"netlab: lab {name} is kept by pid {pid} (netlab up --watch): it would repair the quiz's fault within a "
            f"second, nothing is broken; stop the watcher first (Ctrl-C in its terminal, or sudo kill -INT {pid}), "
            "then quiz again"), quiz.stderr
        assert netlab("status", "--lab", name, check=False).returncode == 0  # the kernel as planned: nothing broken
        assert watcher.stop() == 0
        assert not any("changed the lab" in line for line in watcher.lines[mark:]), watcher.lines[mark:]
        quiz = netlab("quiz", "--lab", name, "--seed", "3", check=False)  # unwatched: it breaks the lab
        assert quiz.returncode == 0, quiz
        with open(state_path(name, "lock")) as fh:
            holder = fh.read().strip()
        assert holder.endswith("(netlab quiz)") and "break" not in holder, holder
        assert netlab("status", "--lab", name, check=False).returncode != 0  # the fault is in the kernel
