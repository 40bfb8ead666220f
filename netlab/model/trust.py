"""Whether root may act on what a file says: a topology (and each file it includes), a CNI conflist, a plugin
folder (binDir) and its plugins. netlab as root runs a topology's container commands as root on the host's file
system, and a user's CNI plugins as root: a file someone else can change is someone else's commands run as root.

The rule is sshd's StrictModes: when netlab runs as root, the file and every folder above it must be owned by
root or by the invoking user (the user ``sudo`` ran netlab for: ``$SUDO_UID``) and writable by no one else (a
group's write only for root's group or the owner's own private group: named as the owner, no other member, no
other account's primary group; a folder's world write only with the sticky bit, as /tmp: no one can then replace
what is in it but its owner). A POSIX ACL (``system.posix_acl_access``) that lets another named user or group
write is someone else's write too. The path is resolved once, a name at a time from ``/``: every folder on the
way is checked, and every symlink met (its owner as the folder's, the kernel's fs.protected_symlinks rule), so no
link in the middle of a chain points elsewhere unseen. What netlab then uses is the resolved file, whose every
folder no one else can change: a file read is the descriptor checked (its inode is the resolved one), a plugin
run is the resolved path (:func:`program`). Without root nothing is checked: the file's commands run as the user
who could edit them anyway.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import struct
from typing import Iterator

from netlab.model.pathwalk import Names

DO = "make it root's (or yours) and writable by no one else (chmod go-w), or copy it to a folder of yours"
ACL_XATTR = "system.posix_acl_access"
# linux/posix_acl_xattr.h: a little-endian u32 version (2), then (u16 tag, u16 perm, u32 id) per entry.
ACL_VERSION, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_WRITE = 2, 0x02, 0x04, 0x08, 0x10, 0x02


def invoking_uids() -> set[int]:
    """The users whose files (and symlinks) netlab trusts as root: root, this process's user, and under sudo the
    invoking user (``$SUDO_UID``). netlab/outfile.py follows these users' symlinks alone."""
    uids = {0, os.geteuid()}
    sudo = os.environ.get("SUDO_UID", "")
    if sudo.isdigit():
        uids.add(int(sudo))
    return uids


def user_name(uid: int) -> str:
    """A user's name for the lines netlab says (``uid N`` for one the account lists do not know)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _private_group(gid: int, uid: int) -> bool:
    """Group ``gid`` is user ``uid``'s own: named as the user, no other member listed, and no other account's
    primary group (a user whose passwd entry names the group is in it without being listed)."""
    try:
        group = grp.getgrgid(gid)
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    if group.gr_name != owner or not set(group.gr_mem) <= {owner}:
        return False
    return not any(p.pw_gid == gid and p.pw_uid != uid for p in pwd.getpwall())


def _acl(path: str) -> list[tuple[int, int, int]] | None:
    """The entries (tag, perm, id) of ``path``'s access ACL (not followed if a symlink); None when it has none."""
    try:
        raw = os.getxattr(path, ACL_XATTR, follow_symlinks=False)
    except OSError:
        return None  # ENODATA: no ACL but the mode; ENOTSUP: a file system without ACLs
    if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != ACL_VERSION:
        return [(ACL_USER, ACL_WRITE, -1)]  # an ACL this reader does not know: taken as someone else's write
    return [tuple(e) for e in struct.iter_unpack("<HHI", raw[4:])]  # type: ignore[misc]


def _why(st: os.stat_result, allowed: set[int], folder: bool, path: str | None = None) -> str | None:
    """Why ``st`` (the stat of ``path``, whose ACL is read when given) is someone else's to change, or None."""
    mode = st.st_mode
    shown = f"mode {stat.S_IMODE(mode):o}"
    if st.st_uid not in allowed:
        return f"is owned by {user_name(st.st_uid)} ({shown}), not by root or you"
    if folder and mode & stat.S_ISVTX:
        return None  # /tmp: only a name's owner may replace it
    if mode & stat.S_IWOTH:
        return f"is writable by everyone ({shown})"
    entries = _acl(path) if path is not None else None
    group_write = bool(mode & stat.S_IWGRP)  # with an ACL these bits are its mask's
    writers: list[tuple[str, int]] = []
    if entries is not None:
        masks = [perm for tag, perm, _ in entries if tag == ACL_MASK]
        mask = masks[0] if masks else 0o7
        for tag, perm, ident in entries:
            if not perm & mask & ACL_WRITE:
                continue
            if tag == ACL_USER and ident != st.st_uid and ident not in allowed:
                return f"lets user {user_name(ident) if ident >= 0 else '?'} write it by its ACL ({shown}+)"
            if tag == ACL_GROUP:
                writers.append((f"group {_group(ident)} by its ACL ({shown}+)", ident))
        group_write = any(tag == ACL_GROUP_OBJ and perm & mask & ACL_WRITE for tag, perm, _ in entries)
    if group_write:
        writers.insert(0, (f"group {_group(st.st_gid)} ({shown})", st.st_gid))
    for words, gid in writers:
        if gid != 0 and not _private_group(gid, st.st_uid):
            return f"is writable by {words}"
    return None


def resolve(path: str, allowed: set[int] | None = None) -> tuple[str, str | None]:
    """``path`` resolved once, a name at a time as the kernel does (a ``..`` after a symlink from its target's
    folder, :mod:`netlab.model.pathwalk`), and why root must not act on it: the first folder on the way, symlink
    met, or the file itself someone other than root and the invoking user (``allowed``: these users instead) can
    change (None: no one). OSError when a name on the way is missing or the links loop."""
    allowed = invoking_uids() if allowed is None else allowed
    pending = Names(path)
    here = "/"
    why = _why(os.lstat("/"), allowed, folder=True, path="/")
    if why:
        return "/", f"its folder / {why}"
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":  # here has no symlink in it: its parent is the kernel's, a folder checked already
            here = os.path.dirname(here)
            continue
        there = os.path.join(here, name)
        st = os.lstat(there)
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in allowed:  # its folder (here) passed: only a link of a trusted user is followed
                return there, f"the symlink {there} on its way is owned by {user_name(st.st_uid)}, not by root or you"
            if pending.follow(os.readlink(there)):  # OSError ELOOP past the kernel's number of links
                here = "/"
            continue
        last = not pending
        if not last and not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, os.strerror(20), there)
        why = _why(st, allowed, folder=stat.S_ISDIR(st.st_mode), path=there)
        if why:
            return there, f"it {why}" if last else f"its folder {there} {why}"
        here = there
    return here, None


def below(root: str, allowed: set[int]) -> Iterator[tuple[str, str]]:
    """Each file, folder and symlink below the folder ``root`` (links not followed into, their targets resolved)
    that someone other than the ``allowed`` users can change: (its path, why), in os.walk's order."""
    for here, folders, files in os.walk(root):
        for name in sorted(folders) + sorted(files):
            path = os.path.join(here, name)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    if st.st_uid not in allowed:
                        yield path, f"is a symlink owned by {user_name(st.st_uid)}"
                    elif (why := resolve(path, allowed)[1]) is not None:
                        yield path, f"is a symlink to what someone else can change ({why})"
                    continue
            except OSError:
                continue  # gone meanwhile, a dangling link: nothing there to run
            if (why := _why(st, allowed, folder=stat.S_ISDIR(st.st_mode), path=path)) is not None:
                yield path, why


def untrusted(path: str, st: os.stat_result | None = None) -> str | None:
    """Why root must not act on ``path`` (``st``: its stat, from the descriptor it was read through, which must
    be the file the path resolves to): the file, a folder above it (``its folder F ...``) or a symlink on the
    way changeable by someone other than root and the invoking user; None when it is not, or when netlab does
    not run as root."""
    if os.geteuid() != 0:
        return None
    if st is not None and (why := _why(st, invoking_uids(), folder=stat.S_ISDIR(st.st_mode))):
        return f"it {why}"
    try:
        real, why = resolve(path)
        if why or st is None:
            return why
        now = os.lstat(real)
    except OSError:
        if st is None:
            return None  # what cannot be read is said by its reader
        now = None
    if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        return "it is not the file its name leads to now (moved or replaced while netlab read it)"
    return None


def program(path: str) -> tuple[str, str | None]:
    """The file to run for ``path`` and why root must not (see :func:`resolve`): as root the resolved path,
    whose every folder only root and the invoking user can change (so nothing is swapped between this check and
    the exec); without root ``path`` as it is. OSError when it cannot be resolved."""
    if os.geteuid() != 0:
        return path, None
    return resolve(path)


def refusal(why: str, what: str = "its commands") -> str:
    """The one line: what netlab would run as root, why not, what to do."""
    return f"netlab runs as root and would run {what} as root, but {why}; {DO}"


def read_refusal(why: str) -> str:
    """The one line for a topology (or a file it includes): every command that reads one as root refuses it, the
    same rule for all (validate and plan run none of its commands, but say what up would: refused)."""
    return f"netlab refuses to read as root a file someone else can change (up runs its commands as root): {why}; {DO}"
