"""The checks of the Python API's arguments that the CLI's options make (click's Choice, FloatRange and
IntRange): each a UsageError naming the argument and what it takes, before anything is sent or read.

A library caller's mistakes were taken as they came: ``proto="TCP"`` traced a packet no rule matches
(a false "look at the firewall" loss), ``timeout=-1`` waited for nothing, ``protos="tcp"`` was read
letter by letter. The CLI's options take their ranges from here, so a value one accepts the other does too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from netlab.errors import UsageError, display_path

PROTOS = ("icmp", "tcp", "udp")
# Seconds to wait for answers: the CLI's --timeout ranges (probe and reach send the matrix's probes,
# trace one marked packet).
PROBE_TIMEOUT = (0.05, 30)
TRACE_TIMEOUT = (0.1, 30)
TRACE_SIZE = (1, 65000)  # trace --size: an ICMP echo's payload with DF (0: the plain echo)
WAIT = (0, math.inf)  # seconds to wait for a lab another process holds: the CLI's --wait
SHOWN = 60  # characters of a refused value an error shows


@contextmanager
def method(name: str) -> Iterator[None]:
    """The checks of library method ``name``'s arguments, whose UsageError then names the method and the argument
    (``lab.impair: rate: 'fast' is not a rate``), where the CLI's name its option (``--rate``)."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def given(value: Any) -> str:
    """A refused value as an error names it, its type and repr (``int 5``), on one short printable line."""
    text = repr(value)
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return f"{type(value).__name__} {text[:SHOWN] + '...' if len(text) > SHOWN else text}"


def check_int(what: str, value: Any) -> None:
    """An int (not a bool): a port given as "8080" is said to be the wrong type, not out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be an integer, not {given(value)}")


def check_bool(what: str, value: Any) -> None:
    """A flag (``force``, ``mtu``, ``check`` ...): True or False, as the CLI's flags give, not any value Python would
    take for one (``strict="no"`` is true, ``services=0`` looks like a count)."""
    if not isinstance(value, bool):
        raise UsageError(f"{what} must be True or False, not {given(value)}")


def check_str(what: str, value: Any, *, none_ok: bool = False) -> None:
    """A name (a pod's, a node's, NAME:IFACE ...): a str, as the CLI's arguments are; ``none_ok``: or None."""
    if not isinstance(value, str) and not (none_ok and value is None):
        raise UsageError(f"{what} must be a string{' or None' if none_ok else ''}, not {given(value)}")


def check_strs(what: str, value: Any) -> None:
    """A list of names (sections, protocols): a str (one, or several comma-separated) or an iterable of str."""
    if isinstance(value, str):
        return
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise UsageError(f"{what} must be a string or a list of strings, not {given(value)}")
    for i, item in enumerate(value):
        check_str(f"{what}[{i}]", item)


def check_command(what: str, value: Any) -> list[Any]:
    """A command as ``netlab exec`` runs it: a str (run with ``/bin/sh -c``), or a program and its arguments,
    each a str, bytes or a path (as Popen takes them). Returns the argv."""
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise UsageError(f"{what} must be a string or a list of strings, not {given(value)}")
    argv = list(value)
    if not argv:
        raise UsageError("no command given")
    for i, arg in enumerate(argv):
        if not isinstance(arg, (str, bytes, os.PathLike)):
            raise UsageError(f"{what}[{i}] must be a string, bytes or a path, not {given(arg)}")
    return argv


def check_env(what: str, value: Any) -> None:
    """None (the caller's environment) or a program's environment: a dict of str to str."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise UsageError(f"{what} must be a dict of strings to strings or None, not {given(value)}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise UsageError(f"{what}'s names must be strings, not {given(key)}")
        check_str(f"{what}[{given(key).removeprefix('str ')}]", item)


def check_mapping(what: str, value: Any) -> None:
    """A dict (JSON's object)."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{what} must be a dict, not {given(value)}")


def check_no_nul(command: object, argv: list[Any], env: Mapping[str, str] | None) -> None:
    """After :func:`check_command` and :func:`check_env`: a NUL byte after the program's name (in an argument, the
    ``sh -c`` command, a variable of ``env``) cannot reach any program: the kernel hands a program its arguments
    and environment as NUL-ended strings, and Popen refuses them with a ValueError that reads as the program's
    fault. Say which one holds it. A NUL in the program's own name is api.exec.cannot_run's (126), as a shell
    would have it."""
    if isinstance(command, str):
        if "\0" in command:
            raise UsageError(f"the command {display_path(command[:80])} holds a NUL byte, which a program's "
                             "command line cannot")
    else:
        for i, arg in enumerate(argv[1:], 1):
            text = os.fsdecode(arg)
            if "\0" in text:
                raise UsageError(f"argument {i} ({display_path(text[:80])}) holds a NUL byte, which a program's "
                                 "argument cannot")
    for key, value in (env or {}).items():
        if "\0" in key or "\0" in value:
            raise UsageError(f"env[{display_path(key[:40])}] holds a NUL byte, which a program's environment "
                             "cannot")


# The arguments of subprocess.Popen that lab.popen cannot pass on, and why: it runs the command itself, and joins the
# pod's network and UTS namespaces in the child before exec (setns, which needs root's CAP_SYS_ADMIN) with its own
# preexec_fn, called after Popen has set the child's user: a process already another user cannot join them.
POPEN_OWN = {
    "args": "the command is popen's argv",
    "preexec_fn": "popen's own enters the pod's namespaces; it takes no other",
    "shell": "a string argv runs with /bin/sh -c already",
    "user": "the process would be that user before it enters the pod's namespaces, which only root may enter; "
            "run the program as another user with argv ['runuser', '-u', USER, '--', PROGRAM, ...]",
}


def check_popen_kwargs(kwargs: Mapping[str, Any]) -> None:
    """``lab.popen``'s keyword arguments: subprocess.Popen's, less :data:`POPEN_OWN` (each left at its default is
    taken: ``shell=False``, ``user=None``); a misspelt one is said before the lab is read, not by Popen after."""
    import inspect
    import subprocess

    known = inspect.signature(subprocess.Popen).parameters
    for key, value in kwargs.items():
        if key not in known:
            raise UsageError(f"{key}: not an argument of subprocess.Popen")
        default = known[key].default
        if key in POPEN_OWN and (default is inspect.Parameter.empty or value is not default):
            raise UsageError(f"{key}: {POPEN_OWN[key]}")


def check_callable(what: str, value: Any) -> None:
    """A callback (``progress``) or None: refused before the lab is touched, not when first called."""
    if value is not None and not callable(value):
        raise UsageError(f"{what} must be a function or None, not {given(value)}")


def check_path(what: str, value: Any) -> None:
    """A file's path (a str or path object) or None."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"{what} must be a path or None, not {given(value)}")


def check_topology(value: Any) -> None:
    """What :func:`netlab.api.topology.load` reads: a file's path, a dict shaped like the YAML, or None."""
    if value is not None and not isinstance(value, (str, os.PathLike, Mapping)):
        raise UsageError(f"topology must be a path, a dict or None, not {given(value)}")
    if isinstance(value, (str, os.PathLike)) and os.fspath(value) == "":  # was ": no such file", naming no file
        raise UsageError("topology: the path is empty; give a topology file's path, a dict, or None for the "
                         "built-in default")


def check_proto(proto: str | None) -> None:
    """None (the destination's own) or one of icmp, tcp, udp, in lower case as the CLI's --proto and the
    probes' JSON write them: "TCP" is refused, not taken for another protocol."""
    if proto is not None and proto not in PROTOS:
        raise UsageError(f"proto {proto!r}: want one of {', '.join(PROTOS)}")


def check_seconds(what: str, value: Any, bounds: tuple[float, float]) -> float:
    """A number of seconds within ``bounds``, as the CLI's --timeout and --wait (not a bool, nan or inf)."""
    return _seconds(what, value, bounds, "")


def check_seconds_or_none(what: str, value: Any, bounds: tuple[float, float]) -> float | None:
    """:func:`check_seconds`, or None (no limit: ``lab.exec``'s timeout)."""
    return None if value is None else _seconds(what, value, bounds, " or None")


def _seconds(what: str, value: Any, bounds: tuple[float, float], alternative: str) -> float:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{what} must be a number of seconds{alternative}, not {given(value)}")
    if not math.isfinite(value) or not low <= value <= high:
        if high == math.inf:  # --wait's: no upper bound, and inf is no number of seconds either
            raise UsageError(f"{what} {value!r} is not a finite number of seconds, {low:g} or more")
        raise UsageError(f"{what} {value!r} is not in the range {low:g}-{high:g} (seconds)")
    return float(value)


def check_size(size: Any) -> None:
    """trace's ``size``: 0 (a plain echo) or the CLI's --size range."""
    low, high = TRACE_SIZE
    check_int("size", size)
    if not (size == 0 or low <= size <= high):
        raise UsageError(f"size {size!r} is not in the range {low}-{high} (0: a plain echo)")


def items(what: str, value: str | Iterable[str], choices: Collection[str]) -> tuple[str, ...]:
    """A list argument's items: a str is one item (or several, comma-separated, as the CLI's option takes
    them), not its letters; each one of ``choices``, else a UsageError naming the others."""
    check_strs(what, value)
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [v for v in names if v not in choices]
    if unknown:
        raise UsageError(f"{what} {', '.join(map(repr, unknown))}: want some of {', '.join(choices)}")
    return tuple(dict.fromkeys(names))


def check_choice(what: str, value: Any, choices: Collection[str]) -> None:
    if value not in choices:
        raise UsageError(f"{what} {value!r}: want one of {', '.join(choices)}")
