"""One plugin call, as libcni's ``pkg/invoke`` makes it, recorded for ``netlab cni log``.

The plugin is an executable in CNI_PATH named by its ``type``. It gets its
config on stdin and the CNI_* variables in its environment, and answers on
stdout: a result (ADD), nothing (DEL, CHECK), its versions (VERSION), or, with
a non-zero exit, an error object ``{"code", "msg", "details"}``.

A runtime runs plugins in the host's network namespace; in a lab the node's namespace is the host, so the plugin
starts there, with a /sys of the node's as ``ip netns exec`` gives its command (netlab.kernel.node_exec), and reaches
the pod's namespace through CNI_NETNS, as it would on a real node. Every call has a deadline (``NETLAB_CNI_TIMEOUT``,
read when a lab's plugins run): a plugin that hangs is killed with its whole process group.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import selectors
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from netlab.errors import ABSOLUTE_FIX, ApplyFailed, UsageError, cwd_gone, display_path, loads_json
from netlab.realize.state_dir import write_atomic
from netlab.cni import calls_kept
from netlab.cni.plugin_group import exit_unreaped, kill_group
from netlab.cni.plugin_words import TIMEOUT_VAR, Overrun, one_line as one_line, plugin_error
from netlab.cni.plugin_words import error_object_words as error_object_words, exit_words as exit_words

LOG_VAR = "NETLAB_CNI_LOG"  # up: a file that keeps a copy of the run's plugin calls (a rollback takes the lab's log)
DEFAULT_TIMEOUT = 20.0  # seconds one plugin call may take
MOST_TIMEOUT = 86400.0  # a day: the longest deadline a call may be given (poll() takes at most 24.8 days)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# An exec the kernel refuses with ETXTBSY ("Text file busy": some process holds the plugin's file open for writing)
# is tried again, as libcni's RawExec does: 6 tries, 1 s apart (within the call's deadline). A plugin being copied
# into place holds it so, and so does, for an instant, the child of any thread of the writing process that forked
# while the file was open (it keeps the write descriptor until its own exec closes it).
BUSY_TRIES, BUSY_WAIT = 6, 1.0


def timeout_problem(value: str | None) -> str | None:
    """Why ``value`` (NETLAB_CNI_TIMEOUT's text) is no deadline (None: it is one, or it is unset)."""
    if value is None or value.strip() == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if 0 < seconds <= MOST_TIMEOUT:  # nan, inf and 1e12 (more than poll() can wait) fail too
        return None
    return f"{TIMEOUT_VAR}={value!r}: it takes a positive number of seconds up to {MOST_TIMEOUT:g} (a day), " \
           f"such as 20 or 2.5, the deadline of each CNI plugin call; unset it for {DEFAULT_TIMEOUT:g} s"


def cni_timeout(lenient: bool = False) -> float:
    """The deadline of one plugin call: NETLAB_CNI_TIMEOUT, read now (not when netlab is imported), else 20 s.
    A bad value is a UsageError (exit 2); ``lenient`` (down, a rollback: they must finish) takes 20 s instead."""
    value = os.environ.get(TIMEOUT_VAR)
    problem = timeout_problem(value)
    if problem is None:
        return float(value) if value and value.strip() else DEFAULT_TIMEOUT
    if lenient:
        return DEFAULT_TIMEOUT
    raise UsageError(problem)


_copy: dict[str, Any] = {}  # an up's copy of its calls (NETLAB_CNI_LOG): "path", "fh", "first", "held"
_copy_lock = threading.Lock()
_cut: set[str] = set()  # the copies this process cut: a later up's calls (another lab's of a pytest run) go to the end
WATCH_HEADER = "up --watch apply"  # the copy's line before a watcher's later apply's calls ("netlab_cni_log")


def keep_copy(lab: str | None = None) -> str | None:
    """``up`` of CNI lab ``lab``, before it changes anything: NETLAB_CNI_LOG's file (None when unset), opened now by
    outfile's rules (a name they refuse: one line, exit 2; a file that holds something else than an earlier copy,
    outkinds.CNI_CALLS, among them) and cut when the first call of the process's first run
    comes (an ``up`` refused before any call leaves it as it was; a later up of the same process, another lab's
    of a pytest run, appends: it kept only the last lab's calls); every plugin call of the run is appended to it,
    as ``netlab cni log -o json`` shows it with the ``lab`` it is of (:func:`_to_copy`), until the run returns
    (:func:`copy_of_run`). A new lab whose ``up`` fails is rolled back with its folder and the log in it: the copy
    stays, the failure names it."""
    if _copy.get("held"):  # a watcher's apply opened it already (copy_of_run)
        return copy_path()
    close_copy()
    value = os.environ.get(LOG_VAR, "")
    if not value.strip():
        return None
    from netlab.outfile import open_output, shared
    from netlab.outkinds import CNI_CALLS
    from netlab.realize.own_files import check_output_path

    why = cwd_gone(value)
    if why:  # QA q50 6: a traceback from os.path.abspath
        raise UsageError(f"{LOG_VAR}={display_path(value)}: {why}: {ABSOLUTE_FIX}")
    path = os.path.abspath(value)
    check_output_path(path)  # never over a lab's own files (a pod's hosts, a lab's lock), as -w: QA q28 6
    fh = open_output(path, truncate=False, kind=CNI_CALLS)  # empty or an earlier copy: never another file cut
    with _copy_lock:
        # the shell's descriptor (/dev/stdout >> f) is never cut: the copy goes after what it holds
        _copy.update(path=path, fh=fh, first=b"" if path in _cut or shared(fh) else None, lab=lab)
    return path


@contextlib.contextmanager
def copy_of_run(watched: str | None = None) -> Iterator[None]:
    """One ``up``: its copy (opened by its CNI preflight, :func:`keep_copy`) is closed when it returns, so that no
    later call of the process (a status's CHECK, a down's DEL) goes into it. ``watched`` (a CNI lab's name): a
    watcher's later apply, whose calls are appended after a line of their own, what the copy held before kept."""
    close_copy()
    if watched is not None and keep_copy(watched) is not None:
        header = {"netlab_cni_log": WATCH_HEADER, "lab": watched, "started": time.time()}
        with _copy_lock:
            _copy.update(held=True, first=(json.dumps(header, sort_keys=True) + "\n").encode())
    try:
        yield
    finally:
        close_copy()


def copy_path() -> str | None:
    return _copy.get("path")


def log_words() -> str:
    """After "rolled back" of a new lab's failed up: the rollback takes the lab's folder, and the CNI log in it, whose
    calls `netlab cni log` showed (QA q3 #2)."""
    kept, held = copy_path(), calls_kept.words()
    if held is not None and not kept:
        return f" (and the lab's CNI log with it; {held})"
    return (f" (and the lab's CNI log with it; this run's calls: {kept})" if kept else
            f" (and the lab's CNI log with it: {LOG_VAR}=FILE keeps a copy of this run's calls)")


def close_copy() -> None:
    with _copy_lock:
        fh = _copy.pop("fh", None)
        _copy.clear()
    if fh is not None:
        fh.close()


def _to_copy(call: Call) -> None:
    """NETLAB_CNI_LOG's line of ``call``: as ``netlab cni log -o json`` shows it (:func:`call_json`: its time as
    ``elapsed_s``, docs/json.md's key, with the deprecated ``duration`` beside it), not the lab's log's own keys.
    The process's first run's first call cuts the file (an up's) or goes to its end (after the apply's line: a
    watcher's; a later up's of the process)."""
    with _copy_lock:
        fh = _copy.get("fh")
        if fh is None:
            return
        try:
            if "first" in _copy:
                first = _copy.pop("first")
                regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
                if regular and first is None:
                    os.ftruncate(fh.fileno(), 0)
                    _cut.add(_copy["path"])
                elif regular:
                    fh.seek(0, os.SEEK_END)
                fh.write(first or b"")
            line = call_json(call.to_json())
            if _copy.get("lab") is not None:
                line = {"lab": _copy["lab"], **line}
            fh.write((json.dumps(line, sort_keys=True) + "\n").encode())
            fh.flush()
        except OSError:  # a full disk: the copy stops there (the lab's log is the one up needs)
            _copy.pop("fh", None)


class PluginFailed(ApplyFailed):
    """A plugin said no (exit != 0), timed out, or answered what is not JSON: one line naming pod, plugin, command.
    A DEL's: ``undone``, the (network, index in its plugins) whose DEL failed or never ran (cni/runtime.py).
    ``plugin_said``: the plugin ran and failed of itself (it exited non-zero, or died, within the call's deadline
    and output bound), not by netlab's bounds nor its checks of a result: a failure a new sandbox may not meet
    (a race with another pod's ADD on the node), which cni/retry.py tries again."""

    undone: list[tuple[str, int]] | None = None
    plugin_said: bool = False


@dataclass
class Call:
    """One plugin call, as ``netlab cni log`` shows it."""

    pod: str
    network: str
    plugin: str
    command: str
    env: dict[str, str]
    stdin: dict[str, Any]
    runs_in: str  # the namespace the plugin ran in (the node's)
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None  # None: it was still running when netlab killed it
    duration: float = 0.0
    started: float = field(default_factory=time.time)
    killed_after_s: float | None = None  # the call's deadline, when netlab killed the plugin's process group there

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def call_json(call: dict[str, Any]) -> dict[str, Any]:
    """A logged call as ``netlab cni log -o json`` shows it: its time taken as ``elapsed_s``, every command's word
    for a time (docs/json.md), with ``duration`` (the log's own key, deprecated in the output) beside it."""
    out: dict[str, Any] = {}
    for k, v in call.items():
        out.update({"elapsed_s": v, "duration": v} if k == "duration" else {k: v})
    return out


# Past this size the log is cut to half of it: the oldest CHECKs go first, keeping the newest few of each pod and
# plugin, then fewer; ADDs and DELs (how each pod was attached and detached) only when they alone fill half (a
# lab that churns pods for days). Every status runs a CHECK per pod, and `up --watch` runs status every --resync
# seconds: the log grew without end. Cut to half, it is cut again only after as much again was written.
LOG_LIMIT = 2 << 20
KEEP_CHECKS = (8, 2, 0)
OUTPUT_LIMIT = 1 << 20  # bytes of a plugin's stdout or stderr netlab takes (its own bound: libcni has none)


class CallLog:
    """Every call, appended as one JSON line to ``<lab dir>/cni/calls.jsonl`` (from any thread). ``make``: false
    for a reader's calls (status's CHECKs), which never make the log nor its lock file: a lab's log that is not
    there (a ``down`` took the lab's folder, or is taking it) gets none of them, and no warning."""

    def __init__(self, path: str | None, make: bool = True):
        self.path, self.make = path, make
        self._lock = threading.Lock()

    def record(self, call: Call) -> None:
        if self.path is None:
            return
        line = (json.dumps(call.to_json(), sort_keys=True) + "\n").encode()
        # The lock file orders this process's threads and other processes (a status beside an up --watch):
        # a line appended while the log is cut would go to the file the cut replaces.
        with self._lock:
            try:
                with _locked(self.path + ".lock", self.make):
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
                                 | (os.O_CREAT if self.make else 0), 0o600)
                    try:
                        os.write(fd, line)
                        size = os.fstat(fd).st_size
                    finally:
                        os.close(fd)
                    if size > LOG_LIMIT:
                        compact_log(self.path)
            except FileNotFoundError as exc:
                if self.make:
                    _unwritten(self.path, exc)
            except OSError as exc:
                # Best effort (as a down's phase save): a full disk must not stop a DEL, so neither a rollback
                # nor a down (docs/reliability.md); the plugin's own failure is said by its caller. Said once.
                _unwritten(self.path, exc)
        _to_copy(call)
        if calls_kept.keeping():  # the pytest plugin's up: what a rollback takes with the lab's log
            calls_kept.heard(call_json(call.to_json()))


_said_unwritten: set[str] = set()  # the logs this process said it could not write


def _unwritten(path: str, exc: OSError) -> None:
    """One line, once a process per log, on stderr: the call log could not be written (``netlab cni log`` misses
    the calls from then on), whatever the plugin call did."""
    if path in _said_unwritten:
        return
    _said_unwritten.add(path)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(f"netlab: warning: cannot write the CNI call log {path}: {exc.strerror or exc}; the plugin "
                         "calls go on without it (`netlab cni log` misses them)\n")
        sys.stderr.flush()


@contextlib.contextmanager
def _locked(path: str, make: bool = True) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if make else 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


_Line = tuple[bytes, "tuple[Any, Any] | None"]  # a line of the log, and the (pod, plugin) of a CHECK


def compact_log(path: str, limit: int | None = None) -> None:
    """The log cut to half of ``limit`` (LOG_LIMIT): the CHECKs of each pod and plugin but their newest
    KEEP_CHECKS, then fewer; the oldest of the other calls last, when they alone are more than half."""
    calls: list[_Line] = []  # each line read once, with its (pod, plugin) if it is a CHECK
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                continue  # a line cut by a crash
            try:
                call = loads_json(raw)
            except ValueError:
                continue
            check = isinstance(call, dict) and call.get("command") == "CHECK"
            calls.append((raw, (call.get("pod"), call.get("plugin")) if check else None))
    target = (limit or LOG_LIMIT) // 2
    for keep in KEEP_CHECKS:
        calls = _checks_kept(calls, keep)
        if sum(len(raw) for raw, _ in calls) <= target:
            break
    size = sum(len(raw) for raw, _ in calls)
    while calls and size > target:
        size -= len(calls.pop(0)[0])
    write_atomic(path, b"".join(raw for raw, _ in calls))


def _checks_kept(calls: list[_Line], keep: int) -> list[_Line]:
    """``calls`` without the CHECKs of each pod and plugin older than its newest ``keep``."""
    seen: dict[tuple[Any, Any], int] = {}
    kept = []
    for raw, key in reversed(calls):
        if key is not None:
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > keep:
                continue
        kept.append((raw, key))
    return kept[::-1]


def logged_pods(calls: list[dict[str, Any]]) -> list[str]:
    """The pods the calls of a CNI log were made for (a pod taken out of the topology's too), sorted."""
    return sorted({c["pod"] for c in calls if isinstance(c.get("pod"), str) and c["pod"] != "-"})


def read_log(path: str) -> list[dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    out.append(loads_json(line))
                except ValueError:
                    continue  # a line cut by a crash
    except FileNotFoundError:
        pass
    return out


# What succeeds with no output to read: libcni runs DEL and CHECK (and 1.1.0's GC and STATUS) through
# ExecPluginWithoutResult, which throws away whatever a plugin that exits 0 printed.
NO_RESULT = frozenset({"DEL", "CHECK", "GC", "STATUS"})


def exec_plugin(log: CallLog, *, pod: str, network: str, plugin_path: str, command: str, conf: dict[str, Any],
                env: dict[str, str], node_netns: str | None, timeout: float | None = None,
                program: str | None = None) -> dict[str, Any] | None:
    """Run one plugin; its stdout as JSON (None when empty, and for a DEL or CHECK that exits 0, whatever it
    printed); PluginFailed otherwise. ``program``: the file executed, ``plugin_path`` as resolved and checked by
    cni.runtime (its argv[0] stays ``plugin_path``)."""
    plugin = os.path.basename(plugin_path)
    full_env = {"PATH": PATH, **env, "CNI_COMMAND": command}
    call = Call(pod=pod, network=network, plugin=plugin, command=command, env=full_env, stdin=conf,
                runs_in=node_netns or "(this namespace)")
    # The plugin runs in the node's network namespace (the runtime's "host") with a /sys of the node's, as `ip netns
    # exec` starts a command (kernel/node_exec.py: a thread enters the node, takes a mount namespace of its own and
    # starts the plugin, which is born there by vfork); CNI_NETNS names the pod's.
    # VERSION (validate, doctor) runs in this namespace: only a call into a node's loads the setns code.
    if node_netns is not None:
        from netlab.kernel.node_exec import popen_in_node
    deadline = timeout if timeout is not None else cni_timeout()
    t0 = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            # A session of its own: a Ctrl-C to netlab's group does not cut an ADD or DEL halfway. Not born with
            # the stop signals blocked (kernel/own_group.py): Go's runtime unblocks SIGINT and SIGTERM at its
            # start, so a plugin of Go takes one that reached it before its setsid all the same
            how: dict[str, Any] = dict(executable=program or plugin_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=full_env, start_new_session=True, close_fds=True)
            proc = popen_in_node(node_netns, [plugin_path], **how) if node_netns is not None else \
                subprocess.Popen([plugin_path], **how)
            break
        except OSError as exc:
            left = deadline - (time.monotonic() - t0)
            if exc.errno == errno.ETXTBSY and tries < BUSY_TRIES and left > 0:
                _wait_for_writer(min(BUSY_WAIT, left))
                continue
            call.stderr, call.exit_code = f"cannot run {plugin_path}: {_exec_words(exc, tries)}", 127
        except subprocess.SubprocessError as exc:
            call.stderr, call.exit_code = f"cannot run {plugin_path}: {exc}", 127
        log.record(call)
        raise PluginFailed(plugin_error(call))
    # A result is a few kB: a plugin that prints more than the bound is killed there, and the call fails; what it
    # printed is cut at the bound before it is decoded, logged and parsed (two plugins printing 30 MB each took
    # netlab to 300 MB; one printing without end would have grown netlab until its deadline).
    out, err, big, overrun = _exchange(proc, json.dumps(conf).encode(), deadline, t0)
    # A plugin that exited but left a process holding its output open: its own exit, and the deadline it was killed at
    call.exit_code = proc.returncode if overrun is None else overrun.exited
    call.killed_after_s = None if overrun is None else overrun.deadline
    call.duration = time.monotonic() - t0
    call.stdout = out.decode(errors="replace")
    call.stderr = err.decode(errors="replace")
    log.record(call)
    if big:
        raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: it printed more than {OUTPUT_LIMIT} bytes on "
                           + " and ".join(big) + ", netlab's own bound on a plugin's output (the CNI spec and libcni "
                           "set none; a result is a few kB): netlab killed it there, and its output is cut there in "
                           "the log")
    if overrun is not None or call.exit_code != 0:
        failed = PluginFailed(plugin_error(call, overrun))
        failed.plugin_said = overrun is None
        raise failed
    if command in NO_RESULT or not call.stdout.strip():
        return None  # what a DEL or CHECK that succeeded printed stays in the log, read by no one (libcni's way)
    try:
        answer: dict[str, Any] | None = loads_json(call.stdout)
        return answer
    except ValueError:
        raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: its output is not JSON: "
                           f"{one_line(call.stdout)[:200]}") from None


def _wait_for_writer(seconds: float) -> None:
    """The pause between two tries of an exec refused with ETXTBSY (a test makes it its own)."""
    time.sleep(seconds)


def _exec_words(exc: OSError, tries: int) -> str:
    """Why the plugin could not be started; ETXTBSY after its tries says what holds it and how long it was tried."""
    if exc.errno != errno.ETXTBSY:
        return exc.strerror or str(exc)
    return (f"{exc.strerror}: a process holds the file open for writing (a copy or install of it under way?); "
            f"netlab tried {tries} time{'s' if tries != 1 else ''}, {BUSY_WAIT:g} s apart, as libcni does")


def _exchange(proc: "subprocess.Popen[bytes]", stdin: bytes, deadline: float,
              t0: float) -> tuple[bytes, bytes, list[str], Overrun | None]:
    """Write the plugin's config and read its stdout and stderr, each up to OUTPUT_LIMIT bytes; the plugin (and its
    process group) is killed at the deadline or once a stream passes the bound. Returns (stdout, stderr, the
    streams that passed it, the deadline's Overrun or None); the plugin has been waited for. ``t0``: when the call
    began (time.monotonic())."""
    from netlab.kernel.sigpipe import sigpipe_held  # a signal mask only: validate loads no namespace code

    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    end = t0 + deadline  # from the call's start: the waits of an exec tried again (ETXTBSY) count
    got: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    big: list[str] = []
    overrun = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        if stdin:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
        else:
            proc.stdin.close()
        view = memoryview(stdin)
        while sel.get_map() and not big:
            left = end - time.monotonic()
            if left <= 0:  # a plugin that exited but left a process holding its output open is said as such
                held = tuple(k.data for k in sel.get_map().values() if k.data != "stdin")
                overrun = Overrun(deadline, exit_unreaped(proc), held)
                break
            for key, _ in sel.select(left):
                if key.data == "stdin":
                    try:
                        with sigpipe_held():
                            view = view[os.write(key.fd, view[:65536]):]
                    except BrokenPipeError:  # it stopped reading: its answer says why
                        view = view[:0]
                    if not view:
                        sel.unregister(key.fileobj)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = got[key.data]
                buf += chunk
                if len(buf) > OUTPUT_LIMIT:
                    del buf[OUTPUT_LIMIT:]
                    big.append(key.data)
    if big or overrun:
        kill_group(proc)
    else:
        try:  # both streams are closed: it is exiting (or has handed them to a child that closed them)
            proc.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            overrun = Overrun(deadline)
            kill_group(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()
    return bytes(got["stdout"]), bytes(got["stderr"]), big, overrun
