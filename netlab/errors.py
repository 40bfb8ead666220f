"""Error classes and the exit codes the CLI maps them to.

Errors are translated once, at the boundary where they happen (loader, netlink,
iptables-restore), into one of these; the CLI prints one line and exits with
the class's code. A traceback is only shown with ``--debug``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shlex
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

EXIT_CHECKS_FAILED = 1  # drift, unmet expectations
EXIT_INVALID_INPUT = 2
EXIT_ENVIRONMENT = 3  # not root, missing kernel feature or binary
EXIT_APPLY_FAILED = 4  # apply failed (and was rolled back)


class NetlabError(Exception):
    """Base of every error netlab reports to a user."""

    exit_code = EXIT_CHECKS_FAILED


def loads_json(text: str | bytes) -> Any:
    """``json.loads``, a document nested deeper than Python's parser goes (``[[[[...`` a hundred thousand deep)
    being a ValueError as any other bad JSON: Python raises RecursionError, which every reader's ``except
    ValueError`` (a corrupt state, a cut log line) let through as a traceback."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep (recursion limit exceeded)") from None


# --- ways out, in the caller's words -----------------------------------------------------------
# The one place that says a way out as the CLI's command or as the Python call: a Lab method runs in
# python_words() (netlab.api), and what it meets is said with the call (`Lab('L').repair()`), as the README says.

# None: nobody has said yet (a Lab method's caller is then Python's; the CLI's commands run in python_words(False)).
_PYTHON_WORDS: ContextVar[bool | None] = ContextVar("netlab_python_words", default=None)


@contextlib.contextmanager
def python_words(api: bool = True) -> Iterator[None]:
    """What is said inside names its way out as a Python call (``api``) or as a command (else)."""
    token = _PYTHON_WORDS.set(api)
    try:
        yield
    finally:
        _PYTHON_WORDS.reset(token)


def in_python_words() -> bool:
    return _PYTHON_WORDS.get() is True


def words_said() -> bool | None:
    """Whose words an outer caller chose (python_words: True, the Python call's; False, the command's), None when
    none did: the outermost Lab method, or the CLI's command, decides for everything it calls."""
    return _PYTHON_WORDS.get()


# The words the CLI's user typed after `netlab` (cli/boundary.py sets them for the command's run): a line that
# sends the user to another state folder says the command they ran there, not another (StateElsewhere).
_TYPED: ContextVar[tuple[str, ...] | None] = ContextVar("netlab_typed_words", default=None)


@contextlib.contextmanager
def typed_words(words: list[str]) -> Iterator[None]:
    token = _TYPED.set(tuple(words))
    try:
        yield
    finally:
        _TYPED.reset(token)


def command_typed() -> tuple[str, ...] | None:
    """The words of the netlab command being run, as typed after ``netlab``; None outside the CLI."""
    return _TYPED.get()


def repair_way(lab: str, command: str | None = None, api: bool | None = None) -> str:
    """The way to put lab ``lab`` back as planned: ``Lab('L').repair()``, or ``command`` (the `up` that does it,
    realize.state.repair_command), by default ``sudo netlab up --lab L``. A lab only `up -t FILE --reconfigure`
    repairs (its conflist edited in place: ``Lab('L').repair()`` refuses it as a plain `up` does) is
    ``Lab.up('FILE', reconfigure=True)`` in Python (:func:`python_reconfigure`)."""
    if in_python_words() if api is None else api:
        if command is not None and command.endswith(" --reconfigure"):
            words = netlab_words(command) or []  # None: a name no shell reads back (display_path's), as said
            if words[:2] == ["up", "-t"] and len(words) == 4:
                return python_reconfigure(None if words[2] == "FILE" else words[2])
            if words[:2] == ["up", "--lab"] and len(words) == 4:  # the running lab's, its pods re-attached
                return f"Lab({words[2]!r}).repair(reconfigure=True)"
        if command is not None and PYTHON_IMPORT in command:  # python_command's: its call, as it is
            with contextlib.suppress(ValueError):
                return shlex.split(command)[-1].removeprefix(PYTHON_IMPORT)
        return f"Lab({lab!r}).repair()"
    return command or netlab_command(f"up --lab {lab}")


def python_reconfigure(source: str | None, name: str | None = None) -> str:
    """The Python call that repairs a lab whose drift only a reconfigure puts right: ``Lab.up('FILE',
    reconfigure=True)`` (``Lab('NAME').repair()`` refuses it as a plain `up` does); TOPOLOGY where no file is
    known (a command's FILE; a lab made from a dict is repaired by name: realize.state.reconfigure_up).
    ``name``: the lab's, when the file's ``name:`` is another (``Lab.up('FILE', name='L', reconfigure=True)``:
    without it, another lab is made)."""
    named = f", name={name!r}" if name is not None else ""
    return f"Lab.up({repr(source) if source is not None else 'TOPOLOGY'}{named}, reconfigure=True)"


PYTHON_IMPORT = "from netlab import Lab; "  # what python_command runs before its call


def _shell_quoted(code: str) -> str:
    """``code`` as one shell word: in double quotes when nothing in it means anything there (a Python call's
    single-quoted strings read as they are), else as shlex quotes it."""
    return f'"{code}"' if not any(c in code for c in '"$`\\!') else shlex.quote(code)


def python_command(call: str) -> str:
    """A Lab call (``Lab.up('FILE', name='L', reconfigure=True)``) as the command that runs it, for a repair no
    `netlab` command gives (`up` takes no name for a file's lab): the Python netlab itself runs under, as root,
    with the state folder after ``sudo`` as :func:`netlab_command` says it (sudo drops the environment)."""
    import sys

    return f"sudo {_state_env()}{command_path(sys.executable)} -c {_shell_quoted(PYTHON_IMPORT + call)}"


def from_file_way(api: bool | None = None) -> str:
    """The way to bring a lab up from a file, for one that is not up: ``Lab.up('FILE')``, or ``sudo netlab up -t
    FILE``."""
    return "Lab.up('FILE')" if (in_python_words() if api is None else api) else netlab_command("up -t FILE")


def down_way(lab: str, api: bool | None = None) -> str:
    """The way to take lab ``lab`` down (what a killed ``up`` made, or the rest a ``down`` left): ``Lab('L').down()``,
    or the command, :func:`down_command`."""
    return f"Lab({lab!r}).down()" if (in_python_words() if api is None else api) else down_command(lab)


def down_command(lab: str) -> str:
    """``sudo netlab down --lab L`` as it must be typed to reach the lab: under a state folder of the user's own
    (NETLAB_STATE_DIR) the variable goes after ``sudo``, which drops the environment (``sudo
    NETLAB_STATE_DIR=/tmp/st netlab down --lab L``): typed as it was, the line looked in /run/netlab and found
    no such lab. The one way every line that tells a user to take a lab down says it (``netlab list``'s, the
    pytest plugin's)."""
    return netlab_command(f"down --lab {lab}")


def netlab_command(*words: str) -> str:
    """A netlab command as a user must type it: ``sudo netlab WORDS``, and under a state folder of the user's own
    (NETLAB_STATE_DIR) the variable after ``sudo``, shell-quoted (``sudo NETLAB_STATE_DIR=/tmp/st netlab up --lab
    L``): sudo drops the environment, so the line as it was acted on /run/netlab's labs. ``words``: the command's
    words as they are typed (placeholders such as NAME or FILE among them), joined by spaces. The one way every
    line that tells a user a netlab command to run says it."""
    return f"sudo {_state_env()}netlab {' '.join(words)}"


def _state_env() -> str:
    """``NETLAB_STATE_DIR=FOLDER `` (shell-quoted) under a state folder of the user's own, else nothing."""
    state = os.environ.get("NETLAB_STATE_DIR")
    return f"NETLAB_STATE_DIR={shlex.quote(state)} " if state else ""


def netlab_words(line: str) -> list[str] | None:
    """The words after ``netlab`` of a line :func:`netlab_command` said, under whichever state folder or none
    (``sudo netlab up --lab L``, ``sudo NETLAB_STATE_DIR='/tmp/my st' netlab up --lab L``: ``['up', '--lab',
    'L']``); None when ``line`` is no such command (or no shell reads it back)."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if words[:1] != ["sudo"]:
        return None
    if len(words) > 1 and words[1].startswith("NETLAB_STATE_DIR="):
        del words[1]
    return words[2:] if words[1:2] == ["netlab"] else None


def status_way(lab: str | None, api: bool | None = None) -> str:
    if in_python_words() if api is None else api:
        return f"Lab({lab!r}).status()" if lab else "netlab.Lab.attach()"
    return netlab_command(f"status --lab {lab}") if lab else netlab_command("status")


def logs_way(lab: str, pod: str, container: str, api: bool | None = None) -> str:
    """Where a container's output is read: ``Lab('L').logs('pod', 'c')``, or ``sudo netlab logs --lab L pod -c c``."""
    if in_python_words() if api is None else api:
        return f"Lab({lab!r}).logs({pod!r}, {container!r})"
    return netlab_command(f"logs --lab {lab} {pod} -c {container}")


def display_path(path: str) -> str:
    """A file name as it may appear in a one-line message: as is when it is plain
    printable text, else quoted with escapes (a newline in a name cannot start a
    second line that looks like another error)."""
    if path.isprintable() and path == path.strip() and '"' not in path:
        return path
    return json.dumps(path)


def command_path(path: str) -> str:
    """A file name inside a command netlab prints for the user to type: quoted for the shell when it needs it
    (``'/tmp/my lab.yaml'``), as is when plain; a name that is not printable text as :func:`display_path`
    shows it (no command could carry it on one line anyway)."""
    if not path.isprintable():
        return display_path(path)
    return shlex.quote(path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology, located in its file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        file = display_path(self.file)
        where = f"{file}:{self.line}" if self.line else file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class TopologyError(NetlabError):
    """The topology is invalid; carries every problem found, in file order."""

    exit_code = EXIT_INVALID_INPUT

    def __init__(self, problems: list[Problem], note: str | None = None):
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.field))
        # What was not checked because of these problems, said last (the CLI says it as ``netlab: <note>``, a line
        # of its own, cli/boundary.py; a Python caller's exception says it bare). One problem is one line: fixing it
        # shows what the cross-checks find (``note`` and -o json keep it).
        self.note = note
        said = [note] if note and len(self.problems) > 1 else []
        super().__init__("\n".join([str(p) for p in self.problems] + said))


class UsageError(NetlabError):
    """A command-line mistake that click itself cannot see (unknown lab, pod...)."""

    exit_code = EXIT_INVALID_INPUT


class CannotRun(UsageError):
    """A program a lab cannot start (:meth:`netlab.Lab.popen`): there is none of that name, or it is not runnable.
    Its message is ``netlab exec``'s line for it (``/opt/srv: command not found``; the CLI prints every error
    after ``netlab: ``), ``returncode`` the status that command exits with, as a shell's: 127 when there is no
    such program, 126 when it is there but cannot be run. ``Lab.exec`` returns them instead, as the CLI."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


class EnvironmentNotReady(NetlabError):
    """Not root, a kernel feature or a binary is missing: says what to do."""

    exit_code = EXIT_ENVIRONMENT


# A write the disk refused for want of room (a full file system, a quota, a file size limit): the machine is not
# ready (exit 3), whatever was being written (the lab's state in an `up`, a pcap, a report, standard output).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from (``raise ... from``, or while handling), is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return True
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return False


# An open the process's open-files limit refused (EMFILE), or the machine's whole table (ENFILE): the machine is not
# ready (exit 3), said as itself with the limit, never as a kernel feature or a tool that is missing.
OPEN_FILES = (errno.EMFILE, errno.ENFILE)
# What netlab needs open at once, roughly: ~40 descriptors of its own (Python, the lab's lock and state, the
# pipes to its children, a sysctl walk), then per namespace of the lab what the probe agent holds, the most of any
# command: a netlink socket and the namespace's descriptor to read it, a raw ICMP, a UDP and a netlink socket and
# the namespace's descriptor again to probe from it (probe/sockets.py; measured in /proc/PID/fd: 6 per namespace).
# Its connections' sockets take what is left (probe/room.py): at this estimate, about 50 at once (QA q50 3: with 1
# per namespace the doctor accepted `ulimit -n 100` for 7 namespaces, and probe's 200 connections failed).
FILES_NEEDED, FILES_PER_NAMESPACE = 64, 6


def open_files(exc: BaseException | None) -> BaseException | None:
    """The EMFILE or ENFILE that ``exc`` is, or was raised from (``raise ... from``, or while handling); None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in OPEN_FILES:  # an OSError, or a KernelError (its errno)
            return exc  # type: ignore[return-value]
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def open_files_line(exc: BaseException) -> str:
    """An EMFILE or ENFILE in words, with the limit and what netlab needs: one line, no ``netlab:`` prefix."""
    code = getattr(exc, "errno", None) or errno.EMFILE
    if code == errno.ENFILE:
        return (f"{os.strerror(code)} (ENFILE): the machine's table of open files is full (sysctl fs.file-max), "
                "not this process's limit: end what holds them, or raise fs.file-max")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    cap = "" if hard == soft else f", hard limit {'unlimited' if hard == resource.RLIM_INFINITY else hard}"
    return (f"{os.strerror(code)} (EMFILE): this process's open-files limit is {now} (`ulimit -n` now {now}{cap}); "
            f"netlab needs about {FILES_NEEDED} plus {FILES_PER_NAMESPACE} per namespace of the lab: raise it "
            "(`ulimit -n 1024`) and run the command again")


def with_open_files(text: str, exc: BaseException) -> str:
    """``text``, the message of ``exc``, with the open-files limit said after it when an EMFILE or ENFILE caused it
    (the limit's line alone for no text)."""
    limit = open_files(exc)
    if limit is None or "open-files limit" in text or "fs.file-max" in text:
        return text
    return f"{text} ({open_files_line(limit)})" if text else open_files_line(limit)


ABSOLUTE_FIX = "give an absolute path, or cd to a folder that exists"


def cwd_gone(path: str) -> str | None:
    """Why a relative ``path`` cannot be made absolute, with its name: the working directory was deleted (getcwd
    fails: os.path.abspath raised FileNotFoundError, a traceback, QA q50 6); None for an absolute path or a
    directory that is there."""
    if os.path.isabs(path):
        return None
    try:
        os.getcwd()
    except FileNotFoundError:
        return f"the current directory was deleted, so {display_path(path)} (relative to it) cannot be resolved"
    return None


def absolute_output(path: str) -> str:
    """``path``, a file the user named to be written, made absolute; the working directory deleted: UsageError."""
    why = cwd_gone(path)
    if why:
        raise UsageError(f"cannot write {display_path(path)}: {why}: {ABSOLUTE_FIX}")
    return os.path.abspath(path)


def output_unwritable(path: str, exc: OSError) -> NetlabError:
    """An output file the user named (-w, --pcap, --junit) that could not be written, in one line: a full disk is
    the machine's (exit 3, and what was written is cut short), anything else the path given (exit 2)."""
    reason = f"cannot write {display_path(path)}: {exc.strerror or exc}"
    if exc.errno in DISK_FULL:
        return EnvironmentNotReady(f"{reason} (it is cut short)")
    return UsageError(reason)


class ApplyFailed(NetlabError):
    """Changing the kernel failed; what was done has been rolled back. Exit 4, or 3 when what failed was a
    write to a full disk (the machine is not ready: as the doctor's free-space check says before an ``up``), or an
    open the open-files limit refused (open_files).

    A feature that fails says, for ``up``'s "rolled back" line (lab/up.py), what no rollback brings back
    (``not_back``: a CNI pod whose DEL before its re-ADD cannot be undone) and what goes with a new lab's folder
    (``if_fresh``: its CNI calls' log)."""

    # Class defaults too: a subclass that is also an OSError (realize/state_dir.StateWriteFailed) is built by
    # OSError's __init__, which never reaches this one.
    not_back = ""
    if_fresh = ""

    def __init__(self, *args: object, not_back: str = "", if_fresh: str = ""):
        super().__init__(*args)
        self.not_back, self.if_fresh = not_back, if_fresh

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return EXIT_ENVIRONMENT if disk_full(self) or open_files(self) else EXIT_APPLY_FAILED


class OwnershipConflict(EnvironmentNotReady):
    """An object netlab would create already exists and is not the lab's. Found before any change (nothing to
    roll back): the machine is not ready for the lab, exit 3, as for a name another lab or someone else took."""


class LabBusy(NetlabError):
    """Another netlab process holds the lab's lock."""

    exit_code = EXIT_ENVIRONMENT


class LabTakenDown(UsageError):
    """A command met a lab that a ``netlab down`` is taking away, or took away since it began (exit 2): its line
    already names that down (realize.interrupted.being_taken_down, taken_down), the more exactly for what the
    command met ("the probe's agent was stopped with the lab's other processes")."""


class LabGoingDown(LabBusy):
    """A ``netlab down`` holds the lab's lock and is deleting it: what a reader met is its work half done. Said as
    every command that meets it says it (realize.interrupted.being_taken_down), exit 2; a LabBusy to a caller that waits
    for the lab's lock (a break, an ``up --lab``)."""

    exit_code = EXIT_INVALID_INPUT


class ChecksFailed(NetlabError):
    """Drift or unmet expectations (exit 1)."""

    exit_code = EXIT_CHECKS_FAILED


class NetnsGone(FileNotFoundError, UsageError):
    """A lab's namespace that is not there when netlab enters it: deleted since it was listed, or never made.

    ``ip netns del`` (and netlab's ``down``) first unmounts the namespace from its file, then removes the
    file; a command that looked a moment before meets one or the other. kernel.netns.entered raises this
    for both (ENOENT, or setns's EINVAL on the file left behind), so that a reader of many namespaces can
    report this one missing (status, a watcher's check) and any other command says so in one line (exit 2,
    as for a namespace found missing before). Still a FileNotFoundError for code that catches that, and a
    UsageError (the CLI's exit 2): the Python API raises it from every method that meets a pod's namespace
    gone (exec, popen, trace, inspect), as the CLI says it."""

    exit_code = EXIT_INVALID_INPUT

    def __init__(self, netns: str, path: str, lab: str | None = None, lab_up: bool = False):
        super().__init__(errno.ENOENT, f"namespace {netns} does not exist", path)
        self.netns = netns
        self.lab = lab  # the lab's name, where the raiser knows it: the status it names is that lab's
        self.lab_up = lab_up  # that lab's state is there (realize.netns_missing): it is up, this one was deleted
        self.repair: str | None = None  # the `up` that repairs that lab (realize.state.repair_command)
        self.api = in_python_words()  # met by a Lab method: its way out is the Python call (netns_missing)
        self.taken_down: str | None = None  # a `netlab down` is taking the lab away, or took it: said so instead

    def __str__(self) -> str:
        if self.taken_down:
            return self.taken_down
        if self.lab and self.lab_up:  # `ip netns del` of one of a running lab's namespaces: up makes it again
            repair = repair_way(self.lab, self.repair, self.api)
            return f"namespace {self.netns} was deleted while lab {self.lab} is up; `{repair}` makes it again"
        return f"namespace {self.netns} does not exist; is the lab up? (`{status_way(self.lab, self.api)}`)"
