"""Flannel's files of each node, kept in the lab's state directory (not on the host's /run/flannel).

On a real node flanneld writes ``/run/flannel/subnet.env`` and kube-flannel's
install-cni container copies ``/etc/cni/net.d/10-flannel.conflist``; Flannel's
CNI plugin reads both for every pod (netlab.plan.flannel has their contents).
Several labs share this machine and its one ``/run``, so netlab keeps each
node's copy under its own state directory, with the node's path below it::

    <state dir>/<lab>/nodes/<node>/run/flannel/subnet.env
    <state dir>/<lab>/nodes/<node>/etc/cni/net.d/10-flannel.conflist

``netlab inspect NODE`` prints them. ``netlab exec NODE -- cat
/run/flannel/subnet.env`` cannot show them at their real path without a
mount point there: on a machine without Flannel, ``/run/flannel`` does not
exist, and making it writes to the host; mounting a tmpfs over the whole of
``/run`` in exec's private mount namespace instead would give the command a
``/run`` whose top level is a private copy (a lock file such as
``/run/xtables.lock`` created there would not be the host's), which is not
sound. ``down`` removes the files with the state directory; ``up`` those of a
node the topology no longer has, as its namespace goes (:func:`remove`).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Collection

from netlab.feature import StartResult
from netlab.model.lab import Lab, NodeInfo
from netlab.plan import flannel
from netlab.realize import lab_writes
from netlab.realize.state_dir import lab_dir

if TYPE_CHECKING:
    from netlab.realize.state import LabState

FILE_MODE = 0o644  # as flanneld's writeFile and the CNI config leave them


def node_root(lab_name: str, node: str, create: bool = False) -> str:
    """``<state dir>/<lab>/nodes/<node>``: the node's files live below it at their real paths."""
    if not node or "/" in node or node in (".", ".."):
        raise ValueError(f"unsafe node name {node!r}")
    return os.path.join(lab_dir(lab_name, create=create), "nodes", node)


def users(lab_name: str, node: str) -> bool:
    """Whether a folder on the way to the node's files is not netlab's to write in (a symlink, another mount:
    lab_writes.problem), so ``up`` leaves it and says so."""
    folders = {os.path.dirname(p).strip("/") for p in (flannel.SUBNET_ENV, flannel.CNI_CONFLIST)}
    return any(lab_writes.problem(lab_name, ["nodes", node, *f.split("/")]) is not None for f in sorted(folders))


def files(lab: Lab, node: NodeInfo) -> dict[str, str]:
    """The node's Flannel files: real path -> content."""
    return {flannel.SUBNET_ENV: flannel.subnet_env(lab, node), flannel.CNI_CONFLIST: flannel.cni_conflist()}


def where(lab_name: str, node: str, path: str) -> str:
    """Where the node's file at ``path`` is kept."""
    return os.path.join(node_root(lab_name, node), path.lstrip("/"))


def read(lab_name: str, node: str) -> dict[str, tuple[str, str | None]]:
    """Real path -> (where it is kept, its content or None when missing), for ``inspect``."""
    out: dict[str, tuple[str, str | None]] = {}
    for path in (flannel.SUBNET_ENV, flannel.CNI_CONFLIST):
        kept = where(lab_name, node, path)
        try:
            with open(kept, encoding="utf-8") as fh:
                out[path] = (kept, fh.read())
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            out[path] = (kept, None)
    return out


# state.extra's record of what up wrote last: {node: {path: sha256 of the content}}. It tells a file the
# topology changes (as up left it; FLANNEL_MTU after a backend switch or an underlay MTU change) from one someone
# edited. A lab of an older netlab has none: its files that differ are only "different".
RECORD = "flannel_files"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def recorded(state: LabState | None) -> dict[str, dict[str, str]]:
    rec = state.extra.get(RECORD) if state is not None else None
    if not isinstance(rec, dict):
        return {}
    return {node: {p: h for p, h in paths.items() if isinstance(p, str) and isinstance(h, str)}
            for node, paths in rec.items() if isinstance(node, str) and isinstance(paths, dict)}


def _changes(have: str, text: str) -> str:
    """`` (KEY old, now new, ...)`` for the KEY=VALUE lines ``text`` changes in ``have`` (subnet.env); else ""."""
    old = dict(line.split("=", 1) for line in have.splitlines() if "=" in line)
    new = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if not old or any("=" not in line for line in (have + text).splitlines() if line):
        return ""
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return " (" + ", ".join(f"{k} {old.get(k, 'unset')}, now {new.get(k, 'unset')}" for k in keys) + ")"


def why(have: str | None, text: str, wrote: str | None) -> tuple[str, str] | None:
    """How a node's file holding ``have`` differs from the plan's ``text``, up having written ``wrote`` (its
    digest) last: (status's words, up's words after "rewrote ..."), or None when it is as planned."""
    if have == text:
        return None
    if have is None:
        return "is missing", "it was missing"
    if wrote is None:
        return "is different", "it differed"
    if digest(have) == wrote:  # as up left it: the topology changed what it should hold
        return (f"is the last topology's{_changes(have, text)}",
                f"it was the last topology's{_changes(have, text)}")
    return "is edited (not as up last wrote it)", "it had been edited (not as up last wrote it)"


def sync(lab: Lab, state: LabState | None = None, only: Collection[str] | None = None) -> StartResult:
    """Write every node's files that are missing or differ (atomically); record what was written in ``state``.
    ``only``: those nodes' alone (a rollback's, services/put_back.py: the others' files stay as they are)."""
    done = StartResult()
    rec = recorded(state)
    for node in [n for n in lab.nodes if only is None or n.name in only]:
        have_all = read(lab.name, node.name)
        for path, text in files(lab, node).items():
            kept, have = have_all[path]
            how = why(have, text, rec.get(node.name, {}).get(path))
            if how is not None:
                lab_dir(lab.name)  # the lab's folder made as netlab makes it (marked), then the node's below it
                try:  # each folder fd-relative, on the lab folder's mount: never through a user's (QA q47 1)
                    lab_writes.write_atomic(kept, text.encode(), mode=FILE_MODE, dir_mode=0o755)
                except lab_writes.Refused as exc:
                    line = (f"flannel: {exc.path}: {exc.why}; node {node.name}'s Flannel files (subnet.env, "
                            "the CNI config) are not written there (left alone)")
                    if line not in done.problems:
                        done.problems.append(line)
                    continue
                wrote = rec.get(node.name, {}).get(path)
                if have is not None or wrote is not None:  # a repair, a missing one too; not a node's first files
                    done.actions.append(f"rewrote {path} of node {node.name} ({kept}): {how[1]}")
            rec.setdefault(node.name, {})[path] = digest(text)
    if state is not None:
        state.extra[RECORD] = {node.name: rec[node.name] for node in lab.nodes if node.name in rec}
    return done


def remove(lab_name: str, node: str) -> list[str]:
    """A node the lab no longer has: its two files, then the folders they leave empty, up to and with the node's
    own (``nodes/<node>``); what was removed. Nothing else: a file someone put beside them keeps its folders.
    Each removal is made fd-relative in its folder opened as lab_writes opens it (never through a symlink nor a
    mount swapped in since it was looked at): a folder of a user's on the way has nothing removed through it."""
    node_root(lab_name, node)  # ValueError for a name that could leave the lab's folder
    removed: list[str] = []
    if users(lab_name, node):  # a symlink, a mount on the way: nothing removed through it
        return removed
    for path in (flannel.SUBNET_ENV, flannel.CNI_CONFLIST):
        kept = where(lab_name, node, path)
        names = ["nodes", node, *path.strip("/").split("/")]
        if _unlink_at(lab_name, names[:-1], names[-1]):
            removed.append(kept)
        for depth in range(len(names) - 1, 1, -1):  # run/flannel, run; etc/cni/net.d, etc/cni, etc; nodes/<node>
            if not _rmdir_at(lab_name, names[:depth - 1], names[depth - 1]):
                break  # not empty, not there, not netlab's: nor are the folders above it to be removed
            removed.append(os.path.join(lab_dir(lab_name, create=False), *names[:depth]))
    return removed


def _unlink_at(lab_name: str, folder: list[str], name: str, rmdir: bool = False) -> bool:
    """Remove ``name`` (a file; a folder with ``rmdir``) in the lab's folder ``folder``, fd-relative."""
    try:
        fd = lab_writes.open_dir(lab_name, folder, create=False)
    except (lab_writes.Refused, OSError):
        return False
    if fd is None:
        return False
    try:
        os.unlink(name, dir_fd=fd) if not rmdir else os.rmdir(name, dir_fd=fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _rmdir_at(lab_name: str, folder: list[str], name: str) -> bool:
    return _unlink_at(lab_name, folder, name, rmdir=True)


def drift(lab: Lab, state: LabState | None = None) -> list[str]:
    """Nodes whose Flannel files are missing, edited or the last topology's, for status (``state``: what up wrote
    last, :data:`RECORD`)."""
    out = []
    rec = recorded(state)
    for node in lab.nodes:
        have = read(lab.name, node.name)
        if users(lab.name, node.name):
            continue  # the user's (a symlink, a mount): up leaves it, and says so
        for path, text in files(lab, node).items():
            kept, content = have[path]
            how = why(content, text, rec.get(node.name, {}).get(path))
            if how is not None:
                out.append(f"flannel: {path} of node {node.name} ({kept}) {how[0]}; up writes it again")
    return out
