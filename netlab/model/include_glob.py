"""An ``include:`` pattern's glob, walked with a bound.

``glob.glob`` lists every folder a pattern's wildcards reach before anything can count them: a pattern of a
dozen ``*/`` through a folder holding a few symlinks to ``.`` visits 3**12 folders (minutes). This walk does
what glob does (``*``, ``?`` and ``[...]`` in any part of the path; a wildcard does not match a name starting
with ``.`` unless the part does) but refuses, before listing it, a folder that a wildcard reaches through a
symlink back to a folder already on its way (a loop: every match beyond it would be a copy), and stops after
:data:`MAX_FOLDERS` folders listed or :data:`MAX_CANDIDATES` paths on the way.
"""

from __future__ import annotations

import fnmatch
import os
import re

MAX_FOLDERS = 1024
MAX_CANDIDATES = 4096
MAGIC = re.compile(r"[*?[]")  # what makes a pattern a glob (glob.has_magic's characters)


class GlobRefused(Exception):
    """Why a pattern is not walked: its words for the message (``': sub/l1 ...'`` or ``'searches ...'``)."""


def _names(folder: str, part: str) -> list[str]:
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it]
    except OSError:  # not a folder, or unreadable: glob's way, no match there
        return []
    if not part.startswith("."):
        names = [n for n in names if not n.startswith(".")]
    return sorted(fnmatch.filter(names, part))


def walk(top: str, pattern: str) -> list[str]:
    """The paths (``top`` joined with the pattern's names, unresolved) that a relative pattern matches under
    ``top``; raises :class:`GlobRefused` for a symlink loop a wildcard reaches or a walk over the bounds."""
    parts = [p for p in pattern.split("/") if p]
    # each candidate: its path, and the resolved folders on its way (a symlink back to one of them is a loop)
    found: list[tuple[str, frozenset[str]]] = [(top, frozenset({os.path.realpath(top)}))]
    listed = 0
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[tuple[str, frozenset[str]]] = []
        for path, way in found:
            if not MAGIC.search(part):
                names = [part] if (os.path.lexists if last else os.path.isdir)(os.path.join(path, part)) else []
            else:
                listed += 1
                if listed > MAX_FOLDERS:
                    raise GlobRefused(f"searches over {MAX_FOLDERS} folders; name a narrower pattern")
                names = _names(path, part)
            for name in names:
                child = os.path.join(path, name)
                real = os.path.realpath(child)
                if not last and MAGIC.search(part) and os.path.isdir(child) and real in way:
                    rel, back = os.path.relpath(child, top), os.path.relpath(real, os.path.realpath(top))
                    raise GlobRefused(f": {rel} leads back to {'its folder' if back == '.' else back} "
                                      "(a symlink loop); refused")
                nxt.append((child, way | {real}))
                if len(nxt) > MAX_CANDIDATES:
                    raise GlobRefused(f"reaches over {MAX_CANDIDATES} paths; name a narrower pattern")
        found = nxt
    return [path for path, _ in found]
