"""Where the reference chain's plugins are: CNI_PATH's machine part (Debian's ``/usr/lib/cni``, or the user's).

``network.cni: reference`` (and a conflist's runtime ``loopback``) runs the
plugins of Debian's ``containernetworking-plugins``, in ``/usr/lib/cni``. A
machine set up by kubeadm or containerd keeps them in ``/opt/cni/bin``
(containerd's ``bin_dir``, cnitool's ``CNI_PATH``): ``NETLAB_CNI_PATH`` names
those folders instead, ``:``-separated and searched in order, as ``CNI_PATH``
is. Where plugins are is the machine's, not the topology's (one file serves
every learner's machine), so it is a setting, not a field.

The plugins run as root in the lab's namespaces: each folder is checked before
any is searched (an absolute path, a directory once its symlinks are resolved,
owned by root and writable by nobody else, as sudo's secure_path would want;
every folder above it and every symlink on the way as model/trust.py wants),
and the folder used is the resolved one. A lab made with it records the folders
in its state (``extra.cni_path``): its later commands (status' CHECK, down's
DEL) run the same plugins whatever the environment says then.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from netlab.errors import UsageError
from netlab.model.trust import refusal, untrusted
from netlab.model.cni_bin import CNI_BIN_DIR

if TYPE_CHECKING:
    from netlab.realize.state import LabState

PATH_ENV = "NETLAB_CNI_PATH"
RECORD = "cni_path"
_lab_dirs: list[str] = []  # the running lab's folders (its state's record); empty: the machine's setting


def checked(value: str, what: str = PATH_ENV) -> list[str]:
    """The folders ``value`` names (``DIR[:DIR...]``), each checked and resolved; UsageError saying what is wrong
    with the first that is not a folder root alone can write."""
    out: list[str] = []
    for entry in value.split(":"):
        if not entry:
            raise UsageError(f"{what}={value!r}: an empty folder name (use absolute folders joined by ':', as "
                             "CNI_PATH: /opt/cni/bin:/usr/lib/cni)")
        if "\0" in entry or "\n" in entry or not os.path.isabs(entry):
            raise UsageError(f"{what}={value!r}: {entry!r} is not an absolute path")
        real = os.path.realpath(entry)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise UsageError(f"{what}={value!r}: {entry}: {exc.strerror.lower()}") from None
        shown = entry if real == entry else f"{entry} (-> {real})"
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{what}={value!r}: {shown} is not a directory")
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UsageError(f"{what}={value!r}: {shown} is not root's alone (owner uid {st.st_uid}, mode "
                             f"{stat.S_IMODE(st.st_mode):04o}): the plugins in it run as root")
        if (why := untrusted(entry)) is not None:  # a folder above it, or a symlink on the way, someone else's
            raise UsageError(f"{what}={value!r}: {shown}: {refusal(why, 'the plugins in it')}")
        out.append(real)
    return list(dict.fromkeys(out))


def machine_dirs(debian: str = CNI_BIN_DIR) -> list[str]:
    """The folders a new lab's reference plugins are looked for in: NETLAB_CNI_PATH, else Debian's."""
    value = os.environ.get(PATH_ENV, "")
    return checked(value) if value else [debian]


def plugin_dirs(debian: str = CNI_BIN_DIR) -> list[str]:
    """The folders of the lab this process acts on (:func:`use`), else the machine's."""
    return list(_lab_dirs) or machine_dirs(debian)


def use(dirs: list[str]) -> None:
    global _lab_dirs
    _lab_dirs = list(dirs)


def recorded(state: LabState) -> list[str]:
    rec = state.extra.get(RECORD)
    return [d for d in rec if isinstance(d, str)] if isinstance(rec, list) else []


def act_on(state: LabState) -> None:
    """Run the lab's plugins from the folders it was made with (none recorded: the machine's setting)."""
    use(recorded(state))


def choose(state: LabState, cni: str, fresh: bool, reconfigure: bool, debian: str = CNI_BIN_DIR) -> None:
    """An ``up``'s folders, recorded for a CNI lab: a new lab's and ``--reconfigure``'s are the machine's of now;
    a running lab keeps its own."""
    if cni == "builtin":
        state.extra.pop(RECORD, None)
        use([])
        return
    dirs = recorded(state) if not (fresh or reconfigure) else []
    state.extra[RECORD] = dirs or machine_dirs(debian)
    use(state.extra[RECORD])
