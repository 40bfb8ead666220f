"""How a CNI plugin call that did not end well is said, on one line (cni/invoke.py makes the calls): its exit, its
error object, its stderr, and a call past its deadline (``NETLAB_CNI_TIMEOUT``): one still running, or one that
exited but left a process holding its output open (the call cannot end before that output closes)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netlab.errors import loads_json

if TYPE_CHECKING:
    from netlab.cni.invoke import Call

TIMEOUT_VAR = "NETLAB_CNI_TIMEOUT"


def exit_words(code: int | None) -> str:
    """How a plugin ended, in words: ``exit 1``, ``killed by SIGKILL`` (Python's returncode -9), ``timed out``."""
    if code is None:
        return "timed out"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def one_line(text: Any) -> str:
    """A plugin's text on one line: each line stripped, the lines joined by `` | `` (iptables' output in an
    error's details is several), and safe on a terminal: every other control character (C0, DEL, C1: a NUL, the
    ESC of a colour or of a title escape, a BEL) is written as ``\\xNN``, a tab as a space (QA q20 #4)."""
    lines = (line.strip() for line in str(text).splitlines() if line.strip())
    return " | ".join(line.translate(_CONTROLS) for line in lines)


_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {0x09: " "}


@dataclass(frozen=True)
class Overrun:
    """A call that reached its deadline: the plugin's own exit status when it had exited (``held``: its output
    streams a process it left running kept open, so the call could not end), else None (it was still running)."""

    deadline: float
    exited: int | None = None
    held: tuple[str, ...] = ()

    def words(self) -> str:
        when = f"the call's deadline, {self.deadline:g} s ({TIMEOUT_VAR}): netlab killed its process group"
        if self.exited is None or not self.held:
            return f"timed out: it ran past {when}"
        how = f"it exited {self.exited}" if self.exited >= 0 else f"it was {exit_words(self.exited)}"
        return f"{how}, but a process it left running held its {' and '.join(self.held)} open until {when}"


def plugin_error(call: Call, overrun: Overrun | None = None) -> str:
    """The plugin's error object and stderr, in one line (the log keeps them as the plugin wrote them); a call past
    its deadline (``overrun``) says so first, and what the plugin printed."""
    what = f"pod {call.pod}: CNI plugin {call.plugin} {call.command}"
    if overrun is not None:
        text = f"{what}: {overrun.words()}"
        if call.stdout.strip():
            text += f"; its output: {one_line(call.stdout)[:200]}"
    else:
        text = f"{what}: failed ({exit_words(call.exit_code)})" + _said(call.stdout)
    stderr = " ".join(call.stderr.split()).translate(_CONTROLS)
    if stderr:
        text += f"; stderr: {stderr[:300]}"
    return text


def _said(stdout: str) -> str:
    """A failed plugin's words on stdout: its error object's msg, details and code, else its text."""
    try:
        err = loads_json(stdout) if stdout.strip() else None
    except ValueError:
        err = None
    if isinstance(err, dict) and "msg" in err:
        return error_object_words(err)
    return f": {one_line(stdout)[:200]}" if stdout.strip() else ""


def error_object_words(err: dict[str, Any]) -> str:
    """``: msg (details) [code N]`` of a CNI error object."""
    text = f": {one_line(err.get('msg'))}"
    if err.get("details"):
        text += f" ({one_line(err['details'])})"
    if err.get("code") is not None:
        text += f" [code {one_line(err['code'])}]"
    return text
