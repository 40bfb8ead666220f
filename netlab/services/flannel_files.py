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

import os

from netlab.feature import StartResult
from netlab.model.lab import Lab, NodeInfo
from netlab.plan import flannel
from netlab.realize.state_dir import lab_dir, write_atomic

FILE_MODE = 0o644  # as flanneld's writeFile and the CNI config leave them


def node_root(lab_name: str, node: str, create: bool = False) -> str:
    """``<state dir>/<lab>/nodes/<node>``: the node's files live below it at their real paths."""
    if not node or "/" in node or node in (".", ".."):
        raise ValueError(f"unsafe node name {node!r}")
    return os.path.join(lab_dir(lab_name, create=create), "nodes", node)


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


def sync(lab: Lab) -> StartResult:
    """Write every node's files that are missing or differ (atomically)."""
    done = StartResult()
    for node in lab.nodes:
        for path, text in files(lab, node).items():
            kept, have = read(lab.name, node.name)[path]
            if have == text:
                continue
            os.makedirs(os.path.dirname(kept), mode=0o755, exist_ok=True)
            write_atomic(kept, text.encode(), mode=FILE_MODE)
            if have is not None:
                done.actions.append(f"rewrote {path} of node {node.name} ({kept}): it had been edited")
    return done


def remove(lab_name: str, node: str) -> list[str]:
    """A node the lab no longer has: its two files, then the folders they leave empty, up to and with the node's
    own (``nodes/<node>``); what was removed. Nothing else: a file someone put beside them keeps its folders."""
    root = node_root(lab_name, node)  # ValueError for a name that could leave the lab's folder
    removed: list[str] = []
    for path in (flannel.SUBNET_ENV, flannel.CNI_CONFLIST):
        kept = where(lab_name, node, path)
        try:
            os.unlink(kept)
            removed.append(kept)
        except (FileNotFoundError, NotADirectoryError):
            pass
        folder = os.path.dirname(kept)
        while len(folder) >= len(root):  # run/flannel, run; etc/cni/net.d, etc/cni, etc; then nodes/<node>
            try:
                os.rmdir(folder)
            except OSError:  # not empty, or not there: nor are the folders above it to be removed
                break
            removed.append(folder)
            folder = os.path.dirname(folder)
    return removed


def drift(lab: Lab) -> list[str]:
    """Nodes whose Flannel files are missing or edited, for status."""
    out = []
    for node in lab.nodes:
        have = read(lab.name, node.name)
        for path, text in files(lab, node).items():
            kept, content = have[path]
            if content != text:
                word = "missing" if content is None else "different"
                out.append(f"flannel: {path} of node {node.name} ({kept}) is {word}; up writes it again")
    return out
