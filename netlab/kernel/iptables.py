"""iptables in a namespace: ``iptables-save`` and ``iptables-restore``, run inside it.

Backend: a lab's is chosen when it is made (``NETLAB_IPTABLES=legacy|nft``,
else what the system's ``iptables-save`` is: on Debian 12 iptables-nft; legacy
works the same inside a namespace) and recorded in its state; every later
command uses the recorded one (:func:`use`), whatever the system's
``iptables`` alternative says by then. The two backends keep separate rule
sets: rules made with one are invisible to the other, so a namespace is read
with both when the other one holds tables too (see live.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache

from netlab.errors import EnvironmentNotReady
from netlab.kernel import own_group, testhooks
from netlab.kernel.netns import binary, find_tool, run_in_netns

# the legacy backend's xtables lock is machine-wide, shared by every namespace
WAIT_SECONDS = testhooks.XTABLES_WAIT or "5"
RESTORE_TIMEOUT = 120.0


class IptablesError(Exception):
    """iptables-save or iptables-restore failed; the message is one line."""


BACKENDS = ("nft", "legacy")
_lab_backend = ""  # the backend of the lab this process acts on ("" none yet: the machine's)


def use(backend: str) -> None:
    """Act on a lab made with ``backend`` ("nft" or "legacy"; "" the machine's choice). NETLAB_IPTABLES is checked
    here too, whatever the lab's backend: every command that acts on a lab refuses a value that names none, as up
    and doctor do (status and probe said nothing of it)."""
    global _lab_backend
    if backend not in ("",) + BACKENDS:
        raise ValueError(backend)
    env_choice()
    _lab_backend = backend


def in_use() -> str:
    """The backend :func:`use` set ("" none)."""
    return _lab_backend


def env_choice() -> str:
    """NETLAB_IPTABLES, checked ("" when unset)."""
    chosen = os.environ.get("NETLAB_IPTABLES") or ""
    if chosen not in ("",) + BACKENDS:
        raise EnvironmentNotReady(f"NETLAB_IPTABLES={chosen!r}: use nft or legacy "
                                  "(or unset it for the system default)")
    return chosen


def _suffix(backend: str | None) -> str:
    backend = backend or _lab_backend or env_choice()
    if backend not in ("", "nft", "legacy"):
        raise EnvironmentNotReady(f"NETLAB_IPTABLES={backend!r}: use nft or legacy "
                                  "(or unset it for the system default)")
    return f"-{backend}" if backend else ""


def tools(backend: str | None = None) -> tuple[str, str]:
    """Absolute paths of (iptables-save, iptables-restore) for the chosen backend. iptables-restore is looked up
    first: with every iptables tool missing, the error (the doctor's `tool iptables-restore` line) names it."""
    suffix = _suffix(backend)
    restore = binary(f"iptables{suffix}-restore")
    return binary(f"iptables{suffix}-save"), restore


def default_backend(backend: str | None = None) -> str:
    """``nft`` or ``legacy``: the backend netlab writes to (the lab's, see :func:`use`, else the machine's)."""
    return backend or _lab_backend or machine_backend()


@lru_cache(maxsize=1)
def machine_backend() -> str:
    """``nft`` or ``legacy``: the backend a new lab gets here, NETLAB_IPTABLES or what ``iptables-save`` is."""
    chosen = env_choice()
    if chosen:
        return chosen
    save = binary("iptables-save")
    proc = own_group.run([save, "--version"], timeout=10, text=True)  # a terminal's Ctrl-C is netlab's
    return "legacy" if "legacy" in proc.stdout else "nft"


def command(tool: str = "iptables") -> str:
    """The command a person types to act on the lab's rules (``tool``: ``iptables``, ``iptables-save``): the plain
    one where the machine's ``iptables`` is the lab's backend, else the backend's own (``iptables-legacy``,
    ``iptables-legacy-save``), as a fix line copied into a shell must edit the ruleset the lab is in. Plain when no
    lab's backend is set (nothing read yet)."""
    backend = _lab_backend
    if not backend or backend == _plain_backend():
        return tool
    return tool.replace("iptables", f"iptables-{backend}", 1)


@lru_cache(maxsize=1)
def _plain_backend() -> str:
    """The backend the machine's plain ``iptables`` is (its alternative's target: xtables-nft-multi or
    xtables-legacy-multi); "" when it cannot be told (none installed, another layout)."""
    path = find_tool("iptables")
    target = os.path.basename(os.path.realpath(path)) if path else ""
    return next((b for b in BACKENDS if f"-{b}" in target), "")


def holding(netns: str) -> str:
    """The backend whose iptables tables hold rules or chains in ``netns`` ("" neither, or both): how a lab
    that an older netlab made, with no backend recorded, was made."""
    held = []
    for backend in BACKENDS:
        try:
            text = save(netns, backend=backend)
        except (IptablesError, EnvironmentNotReady):
            continue
        if any(line.startswith("-A ") or (line.startswith(":") and line[1:].split(" ")[0] not in _BUILTIN)
               for line in text.splitlines()):
            held.append(backend)
    return held[0] if len(held) == 1 else ""


_BUILTIN = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


def save(netns: str, table: str | None = None, backend: str | None = None, counters: bool = False) -> str:
    """``iptables-save [-c] [-t TABLE]`` inside the namespace (``-c``: each rule's [packets:bytes])."""
    tool, _ = tools(backend)
    argv = [tool] + (["-c"] if counters else []) + (["-t", table] if table else [])
    try:
        proc = run_in_netns(netns, argv, check=False)
    except FileNotFoundError:
        raise IptablesError(f"{netns}: namespace not found while reading iptables") from None
    except subprocess.TimeoutExpired:
        raise IptablesError(f"{netns}: iptables-save did not finish") from None
    if proc.returncode != 0:
        msg = _first_line(proc.stderr) or f"exit {proc.returncode}"
        raise IptablesError(f"{netns}: iptables-save{' -t ' + table if table else ''} failed: {msg}")
    return proc.stdout.decode(errors="replace")


def restore(netns: str, payload: str, noflush: bool = True, backend: str | None = None, label: str = "") -> None:
    """One ``iptables-restore [--noflush]`` in the namespace: the kernel sees all of it or none.

    ``label`` names what is restored in the error message (a table).
    """
    _, tool = tools(backend)
    argv = [tool, "-w", WAIT_SECONDS] + (["--noflush"] if noflush else [])
    try:
        proc = run_in_netns(netns, argv, input=payload.encode(), check=False, timeout=RESTORE_TIMEOUT)
    except FileNotFoundError:
        raise IptablesError(f"{netns}: namespace not found while writing iptables rules") from None
    except subprocess.TimeoutExpired:
        raise IptablesError(f"{netns}: iptables-restore did not finish in {RESTORE_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        what = f"iptables-restore ({label})" if label else "iptables-restore"
        raise IptablesError(f"{netns}: {what} failed: {explain(proc.stderr, payload)}")


def split_tables(text: str) -> dict[str, str]:
    """iptables-save output of several tables -> table name -> that table's text (``*t`` to COMMIT)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("*"):
            current = out.setdefault(line[1:].strip(), [])
        if current is not None and not line.startswith("#"):
            current.append(line)
        if line == "COMMIT":
            current = None
    return {name: "\n".join(lines) + "\n" for name, lines in out.items()}


def _first_line(data: bytes) -> str:
    text = data.decode(errors="replace").strip()
    return text.splitlines()[0] if text else ""


def explain(stderr: bytes, payload: str) -> str:
    """iptables-restore says "line N failed"; add what line N is."""
    text = stderr.decode(errors="replace").strip()
    msg = " ".join(text.split("\n")[:2]) if text else "no error message"
    m = re.search(r"line:? (\d+)", text)
    if m:
        lines = payload.splitlines()
        n = int(m.group(1))
        if 0 < n <= len(lines):
            msg += f" (payload line {n}: {lines[n - 1][:160]})"
    return msg
