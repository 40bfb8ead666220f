"""Whether root may act on what a file says: a topology (and each file it includes), a CNI conflist, a plugin
folder (binDir) and its plugins. netlab as root runs a topology's container commands as root on the host's file
system, and a user's CNI plugins as root: a file someone else can change is someone else's commands run as root.

The rule is sshd's StrictModes: when netlab runs as root, the file and every folder above it must be owned by
root or by the invoking user (the user ``sudo`` ran netlab for: ``$SUDO_UID``) and writable by no one else (a
group's write only for the owner's own group, of which the owner is the only member; a folder's world write only
with the sticky bit, as /tmp: no one can then replace what is in it but its owner). Without root nothing is
checked: the file's commands run as the user who could edit them anyway.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

DO = "make it root's (or yours) and writable by no one else (chmod go-w), or copy it to a folder of yours"


def _allowed() -> set[int]:
    uids = {0, os.geteuid()}
    sudo = os.environ.get("SUDO_UID", "")
    if sudo.isdigit():
        uids.add(int(sudo))
    return uids


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _private_group(st: os.stat_result) -> bool:
    """The file's group is its owner's own (named as the owner, no other member): its write is the owner's."""
    try:
        group = grp.getgrgid(st.st_gid)
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return False
    return group.gr_name == owner and set(group.gr_mem) <= {owner}


def _why(st: os.stat_result, allowed: set[int], folder: bool) -> str | None:
    mode = st.st_mode
    shown = f"mode {stat.S_IMODE(mode):o}"
    if st.st_uid not in allowed:
        return f"is owned by {_user(st.st_uid)} ({shown}), not by root or you"
    if folder and mode & stat.S_ISVTX:
        return None  # /tmp: only a name's owner may replace it
    if mode & stat.S_IWOTH:
        return f"is writable by everyone ({shown})"
    if mode & stat.S_IWGRP and st.st_gid != 0 and not _private_group(st):
        try:
            name = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            name = f"gid {st.st_gid}"
        return f"is writable by group {name} ({shown})"
    return None


def untrusted(path: str, st: os.stat_result | None = None) -> str | None:
    """Why root must not act on ``path`` (``st``: its stat, from the descriptor it was read through): the file,
    or a folder above it (``its folder F ...``), changeable by someone other than root and the invoking user;
    None when it is not, or when netlab does not run as root."""
    if os.geteuid() != 0:
        return None
    allowed = _allowed()
    try:
        why = _why(st or os.stat(path), allowed, folder=stat.S_ISDIR((st or os.stat(path)).st_mode))
        if why:
            return f"it {why}"
        seen: set[str] = set()
        for start in (os.path.abspath(path), os.path.realpath(path)):
            folder = os.path.dirname(start)
            while folder not in seen:
                seen.add(folder)
                why = _why(os.stat(folder), allowed, folder=True)
                if why:
                    return f"its folder {folder} {why}"
                folder = os.path.dirname(folder)
    except OSError:
        return None  # what cannot be read is said by its reader
    return None


def refusal(why: str, what: str = "its commands") -> str:
    """The one line: what netlab would run as root, why not, what to do."""
    return f"netlab runs as root and would run {what} as root, but {why}; {DO}"
