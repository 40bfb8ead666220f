"""The plugin calls of a run kept in memory for a caller that outlives a rollback: the pytest plugin, whose up of a
lab that a plugin of the test author's own failed was rolled back with the lab's folder and its CNI log in it, and
the calls a plugin author needs (what each call got and answered) with them. The pytest plugin writes them into the
failed test's folder (``cni-calls.json``, as ``netlab cni log -o json`` shows them)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lists: list[list[dict[str, Any]]] = []  # every open keeper's calls, each as `netlab cni log -o json` shows it
_lock = threading.Lock()
_words: list[str] = []  # what the open keepers say of where the calls go: after a failed up's "rolled back"


@contextlib.contextmanager
def kept(words: str) -> Iterator[list[dict[str, Any]]]:
    """Every plugin call made (from any thread) until the block ends, oldest first; ``words``: where its caller
    puts them, said after "rolled back" of a new lab's failed up (:func:`netlab.cni.invoke.log_words`)."""
    calls: list[dict[str, Any]] = []
    with _lock:
        _lists.append(calls)
        _words.append(words)
    try:
        yield calls
    finally:
        with _lock:
            _lists.remove(calls)
            _words.remove(words)


def keeping() -> bool:
    """Whether any keeper is open (a call's line is made for it only then)."""
    return bool(_lists)


def heard(call: dict[str, Any]) -> None:
    """A call made (its log line, as ``netlab cni log -o json`` shows it): kept by every open keeper."""
    with _lock:
        for calls in _lists:
            calls.append(call)


def words() -> str | None:
    """Where the innermost keeper puts the calls (None: nobody keeps them)."""
    with _lock:
        return _words[-1] if _words else None
