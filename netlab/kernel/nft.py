"""nftables in a namespace: one ``nft -f`` transaction and ``nft [-j] list table``, run inside it.

kube-proxy's nftables mode lives in one table of its own (``ip kube-proxy``);
netlab writes it with one ``nft -f`` transaction per node, so the kernel sees
the whole change or none of it, and reads it back as JSON (and, for
``netlab inspect``, as the text nft prints to a person). Tables of
iptables-nft (``ip nat``, ``ip filter``) are iptables' business
(kernel/iptables.py); nothing here touches them.

The transaction goes through nft's own library, libnftables
(:mod:`netlab.kernel.libnftables`), in this process, with the calling thread
in the node's namespace: the same parser, the same single netlink batch and
the same error text as the ``nft`` program, without starting one (a 5-line
partial sync on a node of 4,000 chains: ~13 ms instead of ~38 ms). The
library keeps process-wide state, so one thread at a time is in it; a thread
that finds it busy runs the ``nft`` program instead, on another core (a full
sync of several nodes is CPU-bound parsing, and the nodes go side by side as
before), unless both its transaction and the one in the library are small
(SMALL: partial syncs), when it waits for its turn (up to SMALL_WAIT): one
takes ~10 ms there, now that the context's socket is let go of on another
thread (kernel/nfclose.py), against 25-40 ms for the program. Without the
library (``libnftables1`` not installed), or with ``NETLAB_NFT=process``,
every call runs the ``nft`` program;
``NETLAB_NFT=library`` waits for the library instead.

A forked child (``status``'s readers, kernel/readns.py) has only the thread
that forked: if another thread was in the library then, its lock would stay
held for ever in the child and the library's state would be half-way through
that call. Such a child never uses the library (the program, whatever
``NETLAB_NFT`` says); a child forked while the library was free gets a lock
of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import subprocess
import threading
from typing import Callable, TypeVar

from netlab.errors import EnvironmentNotReady, netlab_command
from netlab.kernel import libnftables, nfclose
from netlab.kernel import netns as nsmod
from netlab.kernel.child import write_all
from netlab.kernel.netns import binary, run_in_netns

NFT_TIMEOUT = 120.0
ENV = "NETLAB_NFT"  # "library", "process", or unset: the library when it is free, else the program
STDIN = "/dev/stdin"  # the input's name in nft's errors, as ``nft -f -`` prints it
# A table's or family's name as nft's scanner reads it unquoted (src/scanner.l: string).
NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9/\-_.]*")

_library_lock = threading.Lock()  # libnftables 1.0.6 keeps process-wide state: one thread in it at a time
_holder_small = False  # the thread in the library is writing a small transaction (the last one to take it was)
SMALL = 64 << 10  # bytes: a partial sync (a full sync of 1,000 Services is 1.7 MB)
SMALL_WAIT = 0.1  # s a small transaction waits at most for the library before it runs the program
_library_busy_at_fork = False  # in a forked child: another thread was in the library when this process forked
T = TypeVar("T")


def _after_fork_in_child() -> None:
    global _library_lock, _library_busy_at_fork
    _library_busy_at_fork = _library_busy_at_fork or _library_lock.locked()
    _library_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class NftError(Exception):
    """nft failed; the message is one line."""


# What an nft (or libnftables) built without ``--with-json`` answers ``nft -j``: netlab reads every table as JSON.
NO_JSON = "JSON support not compiled-in"
JSON_FIX = "an nft built with JSON support: apt-get install nftables libnftables1 (Debian's and Ubuntu's have it)"
LIBRARY_FIX = "reinstall nft's library: apt-get install --reinstall libnftables1 nftables"
# How the dynamic loader says that a program could not start for its libraries (exit 127, or a missing symbol).
_LOADER = ("error while loading shared libraries", "symbol lookup error")


def did_not_start(status: int, text: str) -> bool:
    """``nft`` could not start (its library missing or broken: the loader's words), whatever the kernel has."""
    return status == 127 or any(words in text for words in _LOADER)


def fix_for(text: str) -> str:
    """The fix for an nft failure's text: a JSON-less build, a broken library; "" for anything else."""
    if NO_JSON in text:
        return JSON_FIX
    return LIBRARY_FIX if did_not_start(0, text) else ""


class NftUnreadable(EnvironmentNotReady):
    """A lab's nftables table could not be read (nft -j failed): the machine's nft, said in one line, exit 3."""


def unreadable(exc: NftError) -> NftUnreadable:
    """A read's NftError as the one line a command ends with: what failed, and the fix when it is known."""
    fix = fix_for(str(exc))
    return NftUnreadable(f"{exc}; " + (f"fix: {fix}" if fix else "netlab reads nftables as nft -j prints them; "
                                       f"`{netlab_command('doctor')}` tries it"))


def library_json_error() -> str | None:
    """In the calling thread's namespace: why ``list tables`` as JSON through libnftables fails; None when it
    works, or when netlab does not use the library here (NETLAB_NFT=process, or no library that loads)."""
    if mode() == "process" or (lib := libnftables.load()) is None:
        return None
    with _library_lock, nfclose.closing_after():
        try:
            rc, out, err = libnftables.run_command(lib, "list tables", json=True)
        except OSError as exc:
            return str(exc)
    if rc != 0:
        return explain(err)
    try:
        json.loads(out or b"{}")
    except ValueError:
        return "its JSON output is not JSON"
    return None


def run(netns: str, payload: str, label: str = "") -> None:
    """``nft -f`` in the namespace: one transaction, all of it or none."""
    what = f"nft -f{' (' + label + ')' if label else ''}"
    lib = _take_library(small=len(payload) <= SMALL)
    if lib is None:
        rc, err = _run_process(netns, payload, what)
    else:
        try:
            rc, err = _run_library(lib, netns, payload)
        finally:
            _library_lock.release()
    if rc != 0:
        raise NftError(f"{netns}: {what} failed: {explain(err)}")


def _run_library(lib: ctypes.CDLL, netns: str, payload: str) -> tuple[int, bytes]:
    """The payload as a file that nft opens by name, as ``nft -f`` does, so its errors give the line number
    and quote that line (in nftables 1.0.6 ``nft_run_cmd_from_buffer``'s errors quote the first line)."""
    fd = os.memfd_create("nft-input", os.MFD_CLOEXEC)
    try:
        write_all(fd, payload.encode())
        path = f"/proc/self/fd/{fd}"
        with nfclose.closing_after():
            rc, _, err = _inside(netns, "writing nftables rules", lambda: libnftables.run_file(lib, path))
    finally:
        os.close(fd)
    return rc, err.replace(f"{path}:".encode(), f"{STDIN}:".encode())


def _run_process(netns: str, payload: str, what: str) -> tuple[int, bytes]:
    try:
        proc = run_in_netns(netns, [binary("nft"), "-f", "-"], input=payload.encode(), check=False,
                            timeout=NFT_TIMEOUT)
    except FileNotFoundError:
        raise NftError(f"{netns}: namespace not found while writing nftables rules") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"{netns}: {what} did not finish in {NFT_TIMEOUT:g} s") from None
    return proc.returncode, proc.stderr


def list_table(netns: str, family: str, table: str) -> dict | None:
    """``nft -j list table FAMILY TABLE``: the parsed JSON, or None when there is no such table."""
    out = _list(netns, family, table, json_output=True)
    if out is None:
        return None
    try:
        return json.loads(out or b"{}")
    except ValueError:
        raise NftError(f"{netns}: nft -j printed something that is not JSON") from None


def list_ruleset(netns: str) -> dict:
    """``nft -j list ruleset`` in ``netns``: every table, chain and rule, parsed; through the library as every other
    read (the program only where the library is not used: `trace` failed without the program, QA hostenv57 5)."""
    rc, out, err = _read(netns, ["list", "ruleset"], json_output=True)
    if rc != 0:
        raise NftError(f"{netns}: nft -j list ruleset failed: {explain(err)}")
    try:
        return json.loads(out or b"{}")
    except ValueError:
        raise NftError(f"{netns}: nft -j printed something that is not JSON") from None


_CHAIN = re.compile(r'^\s*chain (\S+) \{\s*$')
_HOOK_DEVICE = re.compile(r'^\s*type \S+ hook \S+ device "?([^"\s]+)"?')


def add_devices(data: dict, text: str) -> None:
    """Put each netdev base chain's device into ``nft -j``'s answer where nft left it out (nft 1.0.6's JSON
    has no ``dev``), from the same table as nft prints it to a person (``type filter hook ingress device
    "veth1" priority filter``)."""
    devices: dict[str, str] = {}
    chain = None
    for line in text.splitlines():
        if m := _CHAIN.match(line):
            chain = m.group(1).strip('"')
        elif chain and (m := _HOOK_DEVICE.match(line)):
            devices[chain] = m.group(1)
    for o in data.get("nftables", []):
        c = o.get("chain") if isinstance(o, dict) else None
        if isinstance(c, dict) and "hook" in c and "dev" not in c and c.get("name") in devices:
            c["dev"] = devices[c["name"]]


def list_table_text(netns: str, family: str, table: str) -> str | None:
    """``nft list table FAMILY TABLE``: the table as nft prints it to a person (counters in place), or None
    when there is no such table."""
    out = _list(netns, family, table, json_output=False)
    return None if out is None else out.decode(errors="replace")


def _list(netns: str, family: str, table: str, json_output: bool) -> bytes | None:
    """``nft [-j] list table``'s output, or None when there is no such table; the library or the program."""
    for name in (family, table):
        if not NAME.fullmatch(name):
            raise NftError(f"{netns}: nft cannot name the table {family} {table!r} unquoted")
    words = ["list", "table", family, table]
    command = " ".join(words)
    rc, out, err = _read(netns, words, json_output)
    if rc != 0:
        if "No such file or directory" in err.decode(errors="replace"):
            return None
        raise NftError(f"{netns}: nft{' -j' if json_output else ''} {command} failed: {explain(err)}")
    return out


def _read(netns: str, words: list[str], json_output: bool) -> tuple[int, bytes, bytes]:
    """``nft [-j] WORDS`` (a listing) in ``netns``, through the library, or the program where it is not used: its
    return code, output and errors."""
    lib = _take_library()
    if lib is None:
        return _read_process(netns, words, json_output)
    try:
        with nfclose.closing_after():
            return _inside(netns, "reading nftables",
                           lambda: libnftables.run_command(lib, " ".join(words), json=json_output))
    finally:
        _library_lock.release()


def _read_process(netns: str, words: list[str], json_output: bool) -> tuple[int, bytes, bytes]:
    argv = [binary("nft")] + (["-j"] if json_output else []) + words
    try:
        proc = run_in_netns(netns, argv, check=False)
    except FileNotFoundError:
        raise NftError(f"{netns}: namespace not found while reading nftables") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"{netns}: nft {' '.join(words[:2])} did not finish") from None
    return proc.returncode, proc.stdout, proc.stderr


def mode() -> str:
    """``NETLAB_NFT``: "library", "process" or "" (the library when it is free); anything else is refused."""
    choice = os.environ.get(ENV, "")
    if choice not in ("", "library", "process"):
        raise EnvironmentNotReady(f"{ENV}={choice!r}: use library or process (or unset it: the library "
                                  "when it can be loaded, else the nft program)")
    return choice


def _take_library(small: bool = False) -> ctypes.CDLL | None:
    """libnftables, held by this thread (the caller releases ``_library_lock``), or None: run the program.
    ``small``: a transaction of at most SMALL bytes, which waits for another small one in the library."""
    global _holder_small
    choice = mode()
    if choice == "process" or _library_busy_at_fork:
        return None
    lib = libnftables.load()
    if lib is None:
        if choice == "library":
            raise EnvironmentNotReady(f"{ENV}=library: {libnftables.SONAME} cannot be loaded "
                                      f"({libnftables.load_error()}); run scripts/setup.sh (package libnftables1)")
        return None
    if choice == "library" or not _have_program():
        _library_lock.acquire()
    elif not _library_lock.acquire(blocking=False):
        # Another thread is in the library. A small transaction behind a small one waits for it (the library
        # holds one ~10 ms, the program takes 25-40 ms to start, read the table's cache and end); anything else
        # goes by the program, on another core.
        if not (small and _holder_small and _library_lock.acquire(timeout=SMALL_WAIT)):
            return None
    _holder_small = small
    return lib


def library_alone() -> bool:
    """Whether netlab writes and reads nftables through the library alone here: no nft program in netns.TOOL_DIRS,
    and a library that loads, not refused by NETLAB_NFT=process (the doctor's nft line is then ok)."""
    return not _have_program() and mode() != "process" and libnftables.load() is not None


def in_library(commands: dict[str, tuple[str, bool]]) -> dict[str, tuple[int, str]]:
    """In the calling thread's namespace, each ``name: (command, as JSON)`` through the library, as the program would
    run ``nft [-j] COMMAND``: by name, its return code and what it printed (errors after output). The doctor's
    probes where there is no program (:func:`library_alone`)."""
    lib = libnftables.load()
    if lib is None:
        return {}
    out: dict[str, tuple[int, str]] = {}
    with _library_lock, nfclose.closing_after():
        for name, (command, as_json) in commands.items():
            rc, printed, err = libnftables.run_command(lib, command, json=as_json)
            out[name] = (rc, (printed + err).decode(errors="replace"))
    return out


def _have_program() -> bool:
    return nsmod.find_tool("nft") is not None


def _inside(netns: str, doing: str, fn: Callable[[], T]) -> T:
    """``fn()`` with this thread in the namespace (libnftables opens its sockets where the thread is)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(nsmod.entered(netns))
        except FileNotFoundError:
            raise NftError(f"{netns}: namespace not found while {doing}") from None
        return fn()


def explain(stderr: bytes) -> str:
    """nft's error (``/dev/stdin:12:5-20: Error: ...``) and the input line it names."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    if not lines:
        return "no error message"
    return lines[0] + (f" (in: {lines[1].strip()[:160]})" if len(lines) > 1 else "")
