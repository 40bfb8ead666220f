"""What ``netlab up --watch``'s lines say: one line per action, what it saw and what it did, each thing once.

Pure words (api/watch.py runs the loop, api/watch_children.py holds the containers' processes).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from netlab.errors import display_path, netlab_command
from netlab.kernel import events as kevents, kill
from netlab.lab import up as lab_up
from netlab.realize.state import up_command
from netlab.workload import policy
from netlab.workload.tasks import SANDBOX_REMADE


def state_words(why: str, alive: bool) -> str:
    """A container due for a restart, as a line's saw: part words it (workload.why_replace's reason)."""
    if alive and why in (policy.EXITED, SANDBOX_REMADE):
        return "runs outside its pod's namespace"  # not in it, yet its process lives
    return why.removeprefix("it had ").removeprefix("it ")  # exited, was stopped, failed to start ...


def unsaid(action: str, said: Sequence[str]) -> str:
    """``restarted container a/main`` when the line saw ``container a/main exited (exit 137)``: not again
    ``(it had exited with code 137)``. A reason that adds to what was seen (a code it did not know) stays."""
    m = re.fullmatch(r"restarted container (\S+) \((.+)\)", action)
    if m is None:
        return action
    key, (why, _, code) = m.group(1), m.group(2).partition(" with code ")
    seen = f"container {key} {state_words(why, False)}"
    if any(x.startswith(seen) and (not code or f"(exit {code})" in x) for x in said):
        return f"restarted container {key}"
    return action


def failed_key(line: str) -> str:
    """``pod/container`` of a line of UpResult.failed ("pod a container main: could not start: ...")."""
    m = re.match(r"pod (\S+) container (\S+): ", line)
    return f"{m.group(1)}/{m.group(2)}" if m else line


def saw_words(saw: list[str]) -> str:
    """What a line says it saw: the notifications, once each, or the timer's resync."""
    return "; ".join(dedupe(saw)) or "a periodic check"


def summary(events: list[kevents.Event]) -> list[str]:
    """The events in words, once each. A local-table route's that came with its address's (an address added or
    deleted makes or takes its `local` and `broadcast` routes) is that address's change: not said again."""
    addresses = {(e.netns, e.address) for e in events if e.address and e.what.startswith("address ")}
    return dedupe([f"{e.what} in {e.netns}" for e in events
                   if not (e.address and " table local " in e.what and (e.netns, e.address) in addresses)])


def dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def did_words(done: lab_up.UpResult, nothing: str, said: Sequence[str] = (), told: Iterable[str] = ()) -> str:
    """What an apply did; a restart's reason is left out when ``said`` (the line's saw: part) says it. What
    could not start is said, but for what an earlier line ``told`` (still failing, unchanged)."""
    parts = []
    if done.created_netns:
        n = len(done.created_netns)
        parts.append(f"created {n} namespace{'' if n == 1 else 's'}")
    if done.removed_netns:
        parts.append(f"removed {', '.join(done.removed_netns)}")
    parts += [unsaid(action, said) for action in done.fixed[:6]]
    if len(done.fixed) > 6:
        parts.append(f"... and {len(done.fixed) - 6} more")
    failed = [line for line in done.failed if line not in told]
    parts += failed[:3] + ([f"... and {len(failed) - 3} more that could not start"] if len(failed) > 3 else [])
    if done.stopped:  # a removed pod's processes of the user's: up's words
        parts.append(kill.others_words([(p.proc.pid, p.command, p.netns) for p in done.stopped], "them"))
    parts += [f"warning: {w}" for w in done.warnings[:3]]
    return "; ".join(parts) or nothing


def waited_words(waited: float | None, holder: str | None) -> list[str]:
    """A line's words for its wait for the lab's lock (LabLock's ``waited``, None: no wait, and ``waited_for``):
    the holder as the kernel showed it, or nobody named when it did not say."""
    if waited is None:
        return []
    return [f"waited {waited:.1f}s for {holder or 'another command'} to release the lab"]


def saw_did(saw: str, waited: Sequence[str], did: str) -> str:
    """A line: what it saw, whom its apply waited for, what it did."""
    return "; ".join([f"saw: {saw}", *waited, f"did: {did}"])


def replaced_words(lab: str, path: str | None, source: str | None, by: str, dict_made: bool = False
                   ) -> tuple[str, str]:
    """A watcher of ``path`` (None: the built-in default) whose lab another `up --reconfigure` (``by``) made from
    ``source`` (None: the built-in default, or with ``dict_made`` a dict given to the library): its line, and its
    last line, which says how to watch the lab as it is now."""
    was = display_path(path) if path is not None else "the built-in default"
    now = display_path(source) if source is not None else "a dict" if dict_made else "the built-in default"
    watch = f"{up_command(source)} --watch" if source is not None else netlab_command(f"up --watch --lab {lab}")
    return (f"saw: lab {lab} reconfigured from {now} by {by}; did: stop watching ({was} no longer describes it)",
            f"stopped watching lab {lab}: it is up from {now} now, and stays up (`{watch}` watches it)")
