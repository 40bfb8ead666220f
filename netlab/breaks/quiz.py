"""``netlab quiz``: break a lab with a scenario picked at random (seeded), and check the answer.

The pick depends only on the seed and the scenarios that apply to the lab
(:func:`pick`), so a seed is a reproducible exercise. The quiz is recorded in
the lab's state directory (``quiz.json``: the scenario, target and seed)
until it is answered; the answer is checked against it, and ``up`` repairs.
"""

from __future__ import annotations

import json
import os
import random
import re

from netlab.breaks import catalogue
from netlab.errors import loads_json
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.realize.state_dir import lab_dir, write_atomic

QUIZ_FILE = "quiz.json"


def candidates(lab: Lab) -> list[catalogue.Scenario]:
    """The scenarios that would change something on this lab, in catalogue order."""
    return [s for s in catalogue.SCENARIOS if catalogue.why_not(s, lab) is None]


def pick(lab: Lab, seed: int) -> catalogue.Scenario:
    """The scenario seed ``seed`` picks for this lab (the same every time)."""
    options = candidates(lab)
    return options[random.Random(seed).randrange(len(options))]


def fault(s: catalogue.Scenario, lab: Lab, target: NodeInfo | PodInfo) -> list[str]:
    """What the scenario changed on ``target`` of this lab, one change a line, as concrete as `netlab break` says
    it (the catalogue's ``change`` is the scenario's in general, with <peer VTEP>-like placeholders)."""
    from netlab.breaks.changes import command_of
    from netlab.breaks.run import steps_of

    return [command_of(step) for step in steps_of(s.name, lab, target)]


# Faults the kernel undoes by itself, and how: a lab found as planned at the answer may not have been repaired.
HEALS_BY_ITSELF = {
    "conntrack-stale-entry": "the stale entry is gone: unless someone deleted it (conntrack -D, netlab up), it "
                             "timed out and the fault healed by itself, no repair: the kernel drops a UDP entry "
                             "nf_conntrack_udp_timeout_stream (120 s) after its flow's last packet",
}


def gone_why(scenario: str) -> str:
    """Why a quiz's fault may be gone before its answer, in words (the lab was found as planned)."""
    return HEALS_BY_ITSELF.get(scenario, "repaired since the quiz broke it")


# The name a quiz's break holds the lab's lock under: a waiting command and `up --watch`'s line say it, and it
# must not name the scenario (that is the quiz's answer).
LOCK_HOLDER = "netlab quiz"


def watcher(lab_name: str) -> str | None:
    """Who keeps the lab with ``netlab up --watch`` now ("pid N (netlab up --watch)"), None: nobody. Read from the
    watcher's lock file (realize/lab_lock.WatcherLock), never locked nor made here."""
    from netlab import lockfile
    from netlab.realize.lab_lock import WatcherLock

    try:
        fd = os.open(os.path.join(lab_dir(lab_name, create=False), WatcherLock.FILE),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return lockfile.holder(fd)
    finally:
        os.close(fd)


def _stop(holder: str) -> str:
    m = re.match(r"pid (\d+)", holder)
    return f"Ctrl-C in its terminal, or sudo kill -INT {m.group(1)}" if m else "Ctrl-C in its terminal"


def watched_refusal(lab_name: str, holder: str) -> str:
    """Why a quiz on a lab that ``up --watch`` keeps is refused: the watcher repairs its fault within a second."""
    return (f"lab {lab_name} is kept by {holder}: it would repair the quiz's fault within a second, nothing is "
            f"broken; stop the watcher first ({_stop(holder)}), then quiz again")


def watched_warning(lab_name: str) -> str | None:
    """What a break of a lab that ``up --watch`` keeps warns (None: no watcher, as :func:`watcher` tells): the
    watcher repairs the fault within a second. Not refused, as a quiz is: a break under the watcher is how one
    sees it heal."""
    holder = watcher(lab_name)
    if holder is None:
        return None
    return (f"lab {lab_name} is kept by {holder}: it will repair this fault within a second, so probe and trace "
            f"will not show it; to study the fault, stop the watcher first ({_stop(holder)}), then break again")


def path(lab_name: str) -> str:
    return os.path.join(lab_dir(lab_name, create=False), QUIZ_FILE)


def record(lab_name: str, scenario: str, target: str, seed: int) -> None:
    data = {"scenario": scenario, "target": target, "seed": seed}
    write_atomic(path(lab_name), (json.dumps(data) + "\n").encode())


QUIZ_MAX = 64 << 10


def load(lab_name: str) -> dict | None:
    """The open quiz of a lab (None: none; a file that is not a quiz is treated as none)."""
    try:
        with open(path(lab_name), "rb") as fh:
            raw = fh.read(QUIZ_MAX + 1)  # a quiz's record is ~100 bytes: a larger file is none, never read whole
        data = loads_json(raw) if len(raw) <= QUIZ_MAX else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or catalogue.scenario(str(data.get("scenario"))) is None:
        return None
    return data


def close(lab_name: str) -> None:
    try:
        os.unlink(path(lab_name))
    except FileNotFoundError:
        pass
