"""A lab's namespaces by their netlab tag, and the files a run left in its folder: what proves a lab is there
when its state cannot (realize/ownership.py, and realize/state.py for a state file that is missing).
"""

from __future__ import annotations

import os
import re

from netlab.kernel import netns as nsmod
from netlab.model.naming import is_netns
from netlab.realize import state_dir

_TAG = re.compile(r"^netlab:([0-9a-f]{8}):([0-9a-f]{8})$")


def tag_owner(tag: str | None) -> tuple[str, str] | None:
    """``netlab:<lab hash>:<run hash>`` -> (lab hash, run hash); None for anything else."""
    m = _TAG.fullmatch(tag) if tag else None
    return (m.group(1), m.group(2)) if m else None


def tagged_namespaces(lab: str) -> dict[str, list[str]]:
    """Namespaces ``<lab>-*`` tagged as this lab's, grouped by their full tag (one per run)."""
    out: dict[str, list[str]] = {}
    for name in nsmod.list_netns():
        if not name.startswith(lab + "-"):
            continue
        if not is_netns(name):
            continue
        try:
            tag = nsmod.read_tag(name)
        except (OSError, ValueError):
            continue
        owner = tag_owner(tag)
        if owner is not None and owner[0] == nsmod.lab_hash(lab):
            out.setdefault(tag, []).append(name)  # type: ignore[arg-type]
    return out


def remnants(lab: str) -> list[str]:
    """What the lab's folder holds besides its lock and its state file."""
    try:
        names = os.listdir(state_dir.lab_dir(lab, create=False))
    except OSError:
        return []
    return sorted(set(names) - {state_dir.LOCK_FILE, state_dir.STATE_FILE})
