"""What makes a state folder's name one netlab cannot use, whatever is there: every command refuses it, and the
doctor says so (state_dir.unreadable), before anything is made."""

from __future__ import annotations

import json
import os

from netlab.model.naming import ETC_NETNS, NETNS_DIR


def not_text(path: str) -> str | None:
    """Why a state folder whose name holds bytes that are not UTF-8 (Python's surrogate escapes of them) is refused,
    by every command and the doctor alike, before anything is made: the lab's tags hash its name as text, and its
    state, its containers' specs and the CNI plugins' JSON carry it as text (a CNI plugin would read another name).
    It was a traceback of `up`, `list`, `status` and `down` (QA hostenv57 2). None for a name that is text."""
    try:
        path.encode()
    except UnicodeEncodeError as exc:
        bad = os.fsencode(path[exc.start:exc.end])
        return (f"its name holds {'bytes' if len(bad) > 1 else 'a byte'} that {'are' if len(bad) > 1 else 'is'} not "
                f"UTF-8 text ({' '.join(f'0x{b:02x}' for b in bad)}), which netlab's records cannot carry")
    return None


def not_a_line(path: str) -> str | None:
    """Why a state folder whose name holds a control character (a newline, a tab, an escape) is refused as a name
    that is not UTF-8 is (:func:`not_text`): every message that names it is one line. None for any other name."""
    bad = [c for c in path if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0]
    if not bad:
        return None
    shown = " ".join(dict.fromkeys(json.dumps(c)[1:-1] for c in bad))
    return f"its name holds a control character ({shown}), which netlab's one-line messages cannot show"


def netns_folder(path: str) -> str | None:
    """Why a state folder that is, or lies in, the system's folders of named network namespaces (/run/netns, where
    `ip netns` mounts them, /etc/netns, their files) is refused: a lab's folder there is a namespace to
    `ip netns list`. Said of the name as given and of where its symlinks lead. None for any other folder."""
    for system in (NETNS_DIR, ETC_NETNS):
        real = os.path.realpath(system)
        for name in (path, os.path.realpath(path)):
            if os.path.commonpath([name, system]) == system or os.path.commonpath([name, real]) == real:
                return f"it is {system}{'' if name in (system, real) else ' or a folder in it'}, the system's " \
                       "folder of named network namespaces (`ip netns`), not a state folder"
    return None
