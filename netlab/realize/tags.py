"""A lab's namespaces by their netlab tag, the files a run left in its folder, and its pods' files under
/etc/netns: what proves a lab is there when its state cannot (realize/ownership.py, and realize/state_errors.py for a
state file that is missing).

A tag names the state folder too (``NETLAB_STATE_DIR``, kernel/netns.py): a lab with no state in this folder
whose namespaces name another is up with that folder, another netlab's (a pytest run, a test's private folder),
never lost here: nothing here takes it down. A tag of an older netlab names no folder, and is taken as before.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from typing import Iterable, Mapping

from netlab.errors import EnvironmentNotReady, command_typed
from netlab.kernel import netns as nsmod
from netlab.kernel.mountinfo import read_mounts
from netlab.model.naming import ETC_NETNS, is_netns, lab_name_problem, pod_file_marker
from netlab.realize import lab_list, state_dir
from netlab.realize.lab_folder import MARK_FILE

_TAG = re.compile(r"^netlab:([0-9a-f]{8}):([0-9a-f]{8})(?::([0-9a-f]{8}))?$")
FOLDER_RECORD = "state_folder"  # state.extra: the state folder the lab's tags name ({"path", "tag"})


def tag_owner(tag: str | None) -> tuple[str, str] | None:
    """``netlab:<lab hash>:<run hash>[:<folder hash>]`` -> (lab hash, run hash); None for anything else."""
    m = _TAG.fullmatch(tag) if tag else None
    return (m.group(1), m.group(2)) if m else None


def tag_folder(tag: str | None) -> str | None:
    """The state folder's hash a tag names; None for a tag of an older netlab (or no netlab tag)."""
    m = _TAG.fullmatch(tag) if tag else None
    return m.group(3) if m else None


def folder_tag(folder: str | None = None) -> str:
    """The tag's hash of state folder ``folder`` (None: this run's, state_dir.STATE_ROOT)."""
    return nsmod.folder_hash(os.path.realpath(state_dir.STATE_ROOT if folder is None else folder))


def folder_record() -> dict[str, str]:
    """What a new lab's state records of its folder (FOLDER_RECORD): its tags name it from then on."""
    return {"path": os.path.realpath(state_dir.STATE_ROOT), "tag": folder_tag()}


def state_tag(lab: str, run_id: str, extra: dict) -> str:
    """The tag of a lab's namespaces, as its state says: with the folder it records (none: an older netlab's)."""
    rec = extra.get(FOLDER_RECORD)
    return nsmod.make_tag(lab, run_id, rec.get("tag") if isinstance(rec, dict) else None)


def elsewhere(tag: str) -> bool:
    """True when ``tag`` names another state folder than this run's: a namespace of a lab up with that one."""
    folder = tag_folder(tag)
    return folder is not None and folder != folder_tag()


def folder_named(folder: str) -> str | None:
    """The state folder whose hash is ``folder``, when this machine shows it: the default one, or one where a lab
    has its pins mounted (workload/uts.py: ``<folder>/<lab>/uts``, a tmpfs ``netlab-uts``); None otherwise."""
    for candidate in [state_dir.DEFAULT_STATE_ROOT, state_dir.STATE_ROOT, *pin_folders()]:
        if folder_tag(candidate) == folder:
            return os.path.realpath(candidate)
    return None


def pin_folders() -> list[str]:
    """The state folders of the labs whose pins' tmpfs is mounted (read from /proc/self/mountinfo)."""
    out: list[str] = []
    for m in read_mounts():
        if (m.fstype, m.source) != ("tmpfs", state_dir.PINS_FS):
            continue
        lab_folder, uts = os.path.split(m.point)
        if uts == "uts" and lab_name_problem(os.path.basename(lab_folder)) is None:
            out.append(os.path.dirname(lab_folder))
    return list(dict.fromkeys(out))


def moved_pins(lab: str, run_tags: Iterable[str], netns: Iterable[str] = (),
               doubts: list[str] | None = None) -> list[str]:
    """The mount points of the tmpfs of UTS pins of lab ``lab``'s runs ``run_tags`` (their namespaces' tags) that
    are not in this state folder: its folder moved away (``mv`` of the state folder) with the pins mounted in it.
    A mount is the run's only when all of it says so: a tmpfs ``netlab-uts`` on ``<folder>/<lab>/uts``, that
    folder netlab's (lab_folder.not_ours), its state file of the run whose tag is one of ``run_tags``; never by
    its path alone (a lab of that name up with another state folder has its pins there too). A moved folder whose
    state file is gone too (the mount's source names no run) is the lab's when the rest proves it
    (:func:`_stateless_pins`: ``netns``, the lab's namespaces those tags are on); ``doubts`` gets a line for each
    mount that looks like the lab's pins and cannot be proven so (left mounted): a folder named otherwise is
    looked into only in a state folder the runs' tags name (the lab's folder renamed there)."""
    import json

    from netlab.realize import lab_folder

    wanted, here = set(run_tags), os.path.realpath(os.path.join(state_dir.STATE_ROOT, lab, "uts"))
    names = {name[len(lab) + 1:] for name in netns if name.startswith(lab + "-")}
    folders = {tag_folder(tag) for tag in wanted} - {None}  # the state folders the runs' tags name
    out: list[str] = []
    for m in read_mounts():
        folder, uts = os.path.split(m.point)
        if (m.fstype, m.source, uts) != ("tmpfs", state_dir.PINS_FS, "uts") or m.point == here:
            continue
        if os.path.basename(folder) != lab and folder_tag(os.path.dirname(folder)) not in folders:
            continue  # another lab's folder (not even looked into), or one renamed elsewhere: nothing names it
        raw = lab_folder.read_own(folder, state_dir.STATE_FILE, lab_folder.STATE_MAX)
        if raw is None and wanted:
            why = _stateless_pins(lab, folder, names)
            if why is None and m.point not in out:
                out.append(m.point)
            elif why and doubts is not None:
                doubts.append(f"{m.point}: a tmpfs {state_dir.PINS_FS} of UTS pins named as lab {lab}'s pods, with "
                              f"no state file beside it; not proven the lab's ({why}): left mounted")
            continue
        if os.path.basename(folder) != lab or lab_folder.not_ours(folder) is not None:
            continue
        try:
            data = json.loads(raw) if raw is not None else None
            tag = state_tag(lab, data["run_id"], data.get("extra") or {}) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if tag in wanted and m.point not in out:
            out.append(m.point)
    return out


def _stateless_pins(lab: str, folder: str, names: set[str]) -> str | None:
    """Whether the lab folder ``folder`` (no state file in it) whose ``uts`` is a tmpfs ``netlab-uts`` holds lab
    ``lab``'s pins: None when proven (named ``<lab>``, netlab's: marked, or 0700 with netlab's names alone, as
    lab_folder.holds_pins; every pin in it named as a pod or node of the lab's namespaces ``names``, none of
    another name; its state folder named by no tag of a lab of that name: not one up there); '' when it is no
    lab's pins at all (a pin named otherwise, none): nothing to say; else why not proven."""
    from netlab.realize import lab_folder

    try:
        pins = [p for p in os.listdir(os.path.join(folder, "uts")) if p != ".pin"]  # workload/uts.TEMPLATE
        modes = [stat.S_IMODE(os.lstat(path).st_mode) for path in (folder, os.path.join(folder, "uts"))]
    except OSError:
        return ""
    if not pins or not names or not set(pins) <= names:
        return ""  # pins of no pod of this lab's: another lab's, or nobody's
    if os.path.basename(folder) != lab:
        return f"its folder {folder} is not named {lab}"
    if modes != [0o700, 0o700]:
        return f"its folder or uts is not mode 0700, as netlab makes them ({oct(modes[0])}, {oct(modes[1])})"
    why = lab_folder.not_ours(folder)
    if why is not None:
        return f"its folder: {why}"
    try:
        foreign = [n for n in os.listdir(folder) if not lab_folder.own_name(n)]
    except OSError as exc:
        return f"its folder cannot be read ({exc.strerror})"
    if foreign:
        return f"its folder holds what netlab does not write ({', '.join(sorted(foreign))})"
    parent = folder_tag(os.path.dirname(folder))
    if any(tag_folder(tag) == parent for tag in tagged_namespaces(lab)):
        return f"a lab {lab} is up with {os.path.dirname(folder)}"
    return None


def tagged_namespaces(lab: str) -> dict[str, list[str]]:
    """Namespaces ``<lab>-*`` tagged as this lab's, grouped by their full tag (one per run), whatever state folder
    the tag names (``elsewhere`` tells one of another folder)."""
    out: dict[str, list[str]] = {}
    for name in nsmod.list_netns():
        if not name.startswith(lab + "-"):
            continue
        if not is_netns(name):
            continue
        tag = nsmod.read_tag(name)  # an error reading it is raised: never taken for "not this lab's"
        owner = tag_owner(tag)
        if owner is not None and owner[0] == nsmod.lab_hash(lab):
            out.setdefault(tag, []).append(name)  # type: ignore[arg-type]
    return out


def tagged_labs(skip: Iterable[str] = (), elsewhere: bool = False) -> list[str]:
    """The labs whose namespaces on this machine are tagged with this state folder (an older netlab's tag, which
    names no folder, with the default folder only), read in every namespace but those in ``skip`` (the ones the
    labs with a state here name): what ``list`` shows as lost when the lab's folder went and its namespaces stayed
    (``down`` under a low open-files limit deleted it); ``elsewhere``: and those tagged with another folder (up
    with it: ``list`` shows them so, whichever folder it lists). A tag names the lab by a hash: the lab is the
    prefix of the namespace's name, ``<lab>-``, whose hash it is."""
    skip, mine = set(skip), folder_tag()
    default = os.path.abspath(state_dir.STATE_ROOT) == state_dir.DEFAULT_STATE_ROOT
    labs: set[str] = set()
    for name in nsmod.list_netns():
        if name in skip or not is_netns(name):
            continue
        tag = nsmod.read_tag(name)  # an error reading it is raised: never taken for "no lab"
        owner, folder = tag_owner(tag), tag_folder(tag)
        if owner is None or not (folder == mine or folder is None and default or elsewhere and folder is not None):
            continue
        labs.update(name[:i] for i, c in enumerate(name) if c == "-" and lab_name_problem(name[:i]) is None
                    and nsmod.lab_hash(name[:i]) == owner[0])
    return sorted(labs)


def _names_lab(words: Iterable[str]) -> bool:
    """Whether a command's words (before ``--``) name its lab: --lab NAME or -t FILE, in any of click's forms (not
    exec's kubectl flags -it, -ti, -t=true: cli/exec_args.py)."""
    for w in words:
        if w == "--":
            return False
        if w in ("-it", "-ti", "-t=true", "-t=false"):
            continue
        if w in ("--lab", "--topology") or w.startswith(("--lab=", "--topology=", "-t")):
            return True
    return False


class StateElsewhere(EnvironmentNotReady):
    """A lab with no state in this folder whose namespaces' tag names another state folder: up with that folder,
    another netlab's, not lost. Nothing here touches it (not even ``down --force``); this says where it is."""

    def __init__(self, lab: str, netns: list[str], folder: str | None, api: bool = False):
        self.lab, self.netns, self.folder = lab, netns, folder
        more = f" and {len(netns) - 3} more" if len(netns) > 3 else ""
        where = (f"state folder {folder}" if folder else
                 "another state folder (NETLAB_STATE_DIR), which this machine does not show (no pins mounted there)")
        use = shlex.quote(folder) if folder else "FOLDER"
        # The command the user ran, with that folder (sudo drops the environment: the variable after it); never a
        # `down` they did not ask for (a probe answered with one: QA docs58 2). Outside the CLI: a read, status.
        typed = command_typed()
        words = shlex.join(typed) if typed else f"status --lab {lab}"
        # a lab the words do not name ($NETLAB_LAB, which sudo drops too; the only lab up here): named after sudo;
        # not for `list`, which lists every lab of the folder and reads no NETLAB_LAB
        named = not typed or _names_lab(typed) or typed[0] == "list"
        way = (f"run the program with NETLAB_STATE_DIR={use} in its environment (read as netlab is imported)" if api
               else f"`sudo NETLAB_STATE_DIR={use} {'' if named else f'NETLAB_LAB={lab} '}netlab {words}`")
        super().__init__(f"lab {lab} is up under {where}, not {state_dir.STATE_ROOT}: its namespaces "
                         f"({', '.join(netns[:3])}{more}) are tagged with that folder, so netlab leaves them alone "
                         f"here; use that folder: {way}")

    def said_for(self, api: bool) -> StateElsewhere:
        """The same, its way out in a Python caller's words (``api``: Lab.attach) or the CLI's."""
        return StateElsewhere(self.lab, self.netns, self.folder, api=api)


def state_elsewhere(lab: str, groups: Mapping[str, list[str]] | None = None) -> StateElsewhere | None:
    """Lab ``lab`` up under another state folder, when its namespaces (``groups``: tagged_namespaces, None: read
    now) name one (and none names this folder or none); None otherwise."""
    groups = tagged_namespaces(lab) if groups is None else groups
    if not groups or not all(elsewhere(tag) for tag in groups):
        return None
    folders = sorted({tag_folder(tag) or "" for tag in groups})
    return StateElsewhere(lab, sorted(n for names in groups.values() for n in names), folder_named(folders[0]))


def remnants(lab: str) -> list[str]:
    """What the lab's folder holds besides its lock, its state file and the temporary files of its writes (an
    ``up`` killed in its first state write, before any namespace: realize/interrupted.py)."""
    try:
        names = os.listdir(state_dir.lab_dir(lab, create=False))
    except (OSError, state_dir.NotNetlabs):  # a folder netlab did not make holds nothing of the lab's
        return []
    own = {state_dir.LOCK_FILE, state_dir.STATE_FILE, MARK_FILE}
    return sorted(set(names) - own - set(lab_list.state_temps(names)))


# A pod's files in /etc/netns/<pod namespace>/ (services/netns_files.py writes them), by their record's key.
POD_FILES = {"resolv": "resolv.conf", "hosts": "hosts"}
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
HEAD = 64  # bytes of a pod's file read for netlab's first line: "# netlab <lab>:", a lab name has <= 24


def pod_files(lab: str, names: Iterable[str] | None = None) -> dict[str, list[str]]:
    """By record key (``resolv``, ``hosts``), the pod namespaces whose file under /etc/netns says it is lab
    ``lab``'s: its first line is netlab's for exactly this lab (naming.pod_file_marker: lab ``ab``'s is
    neither ``ab-x``'s nor ``abc``'s). ``names``: the namespaces to look at; None: every folder
    ``/etc/netns/<lab>-*``.

    A pod's files outlive its lab's state and namespaces (/run is a tmpfs, /etc is not; a user deletes them by
    hand): their first line is then the only proof of whose they are. Nothing is followed through a symlink:
    /etc/netns and the folder are opened as directories that are not symlinks, the file as a regular file that
    is not one (a FIFO is never waited on)."""
    marker = pod_file_marker(state_dir.check_lab_name(lab, "lab name")).encode()
    found: dict[str, list[str]] = {kind: [] for kind in POD_FILES}
    for name, heads in _pod_heads(names, lambda name: name.startswith(lab + "-")):
        for kind, head in heads.items():
            if head.startswith(marker):
                found[kind].append(name)
    return found


def pod_file_labs(skip: Iterable[str] = ()) -> list[str]:
    """The labs the pods' files under /etc/netns say they are of (netlab's first line names the lab, and the
    folder is one of that lab's, ``<lab>-*``), read in every folder but those of the namespaces in ``skip``
    (the pods of the labs with a state: theirs)."""
    skip = set(skip)
    prefix = pod_file_marker("")[:-1].encode()  # "# netlab "
    labs: set[str] = set()
    for name, heads in _pod_heads(None, lambda name: name not in skip):
        for head in heads.values():
            said, colon, _ = head[len(prefix):].partition(b":") if head.startswith(prefix) else (b"", b"", b"")
            lab = said.decode(errors="replace")
            if colon and lab_name_problem(lab) is None and name.startswith(lab + "-"):
                labs.add(lab)
    return sorted(labs)


def _pod_heads(names: Iterable[str] | None, wanted) -> list[tuple[str, dict[str, bytes]]]:
    """(namespace, {kind: the first HEAD bytes of its file}) of the folders /etc/netns/<namespace> named by
    ``names`` (None: every one) whose name is a namespace's and that ``wanted`` takes, in name order; a
    folder or file that is a symlink, or not a directory or regular file, is left out."""
    try:
        etc = os.open(ETC_NETNS, _DIR)
    except OSError:  # none, or a symlink: nothing there is ours
        return []
    out: list[tuple[str, dict[str, bytes]]] = []
    try:
        if names is None:
            names = [entry.name for entry in os.scandir(etc)]
        for name in sorted(n for n in names if is_netns(n) and wanted(n)):
            try:
                folder = os.open(name, _DIR, dir_fd=etc)
            except OSError:  # gone, not a directory, or a symlink (ELOOP)
                continue
            try:
                heads = {kind: _head(folder, file) for kind, file in POD_FILES.items()}
            finally:
                os.close(folder)
            out.append((name, {kind: head for kind, head in heads.items() if head is not None}))
    except OSError:
        pass
    finally:
        os.close(etc)
    return out


def _head(folder: int, file: str) -> bytes | None:
    """The first HEAD bytes of ``file`` in directory ``folder`` when it is a regular file; None otherwise."""
    try:  # a device or FIFO is not even opened; a symlink put there meanwhile is refused by the open (ELOOP)
        if not stat.S_ISREG(os.stat(file, dir_fd=folder, follow_symlinks=False).st_mode):
            return None
        fd = os.open(file, _FILE, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.pread(fd, HEAD, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
