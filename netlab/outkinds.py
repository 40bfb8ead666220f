"""What a file netlab wrote for a user starts with, by the kind of output: the rule by which an existing file is
replaced (netlab/outfile.py) only when it is empty or already holds what the same command writes.

netlab often runs as root: ``graph -w /etc/passwd`` (a slip of the shell's history) would have replaced the
system's users with a picture. A file that holds something else is left as it is, and the line says how to
replace it anyway (``--force``) or to remove it first. Each test looks at the file's first bytes (:data:`HEAD`)
only, as netlab writes them: a pcap's magic number, graph's DOT (``digraph netlab {`` and netlab's comment line),
Graphviz's SVG of it, a PNG with netlab's tEXt chunk, Mermaid with netlab's comment line (an older netlab's DOT, PNG
and Mermaid files lack them: another kind now, replaced with --force once, which the refusal says), trace's first
line, probe's JUnit root element, NETLAB_CNI_LOG's copy's first JSON line, the pytest plugin's JSON dumps (these
two have no --force: the file is removed first).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, replace
from typing import Callable

HEAD = 4096  # bytes read from an existing file to tell what it holds
FORCE = "give --force to replace it, or remove it first"
API_FORCE = "pass force=True to replace it, or remove it first"  # the API's words for it (Lab.trace's pcap=)


@dataclass(frozen=True)
class Kind:
    """An output's kind: its words (what the file should hold), the test of a file's first bytes, and how to
    replace a file that holds something else."""

    words: str
    holds: Callable[[bytes], bool]
    fix: str = FORCE  # how to replace such a file anyway
    older: Callable[[bytes], bool] = lambda head: False  # what an older netlab wrote of this kind, without its mark


# libpcap's magic (microseconds, nanoseconds, either byte order) and pcapng's Section Header Block
_PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1",
                b"\x0a\x0d\x0d\x0a")


def _pcap(head: bytes) -> bool:
    return head[:4] in _PCAP_MAGICS


MERMAID_MARK = "%% drawn by netlab"  # graph's Mermaid: a comment line of its own after `flowchart TB`
DOT_MARK = "// drawn by netlab"  # graph's DOT: a comment line of its own after `digraph netlab {`
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = b"Software\0netlab"  # the tEXt chunk netlab adds to Graphviz's PNG (which writes none)


def mark_png(data: bytes) -> bytes:
    """Graphviz's PNG with netlab's tEXt chunk right after its IHDR (the first 33 bytes): what tells a PNG netlab
    drew from anyone's (:func:`_picture`). Anything else is returned as it is."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return data
    chunk = b"tEXt" + _PNG_TEXT
    return data[:33] + struct.pack(">I", len(_PNG_TEXT)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


def _picture(head: bytes) -> bool:
    """graph's and trace's pictures as netlab writes them: Mermaid with its title block and netlab's comment, DOT
    of ``digraph netlab``, Graphviz's SVG of that graph (titled netlab), a PNG with netlab's tEXt chunk."""
    if head.startswith(_PNG_SIGNATURE):
        mark = struct.pack(">I", len(_PNG_TEXT)) + b"tEXt" + _PNG_TEXT
        return head[33:33 + len(mark)] == mark
    if head.startswith(f"digraph netlab {{\n  {DOT_MARK}\n".encode()):
        return True
    if head.startswith(b'---\ntitle: "') and f'"\n---\nflowchart TB\n  {MERMAID_MARK}\n'.encode() in head:
        return True
    return head.startswith(b"<?xml") and b"<!-- Title: netlab " in head and b"<svg" in head


def _older_picture(head: bytes) -> bool:
    """A picture an older netlab drew, before it marked them (DOT's and Mermaid's comment line, PNG's tEXt chunk):
    what now needs --force once, which the refusal says."""
    return (head.startswith(b"digraph netlab {\n") or head.startswith(_PNG_SIGNATURE)
            or head.startswith(b'---\ntitle: "') and b'"\n---\nflowchart TB\n' in head) and not _picture(head)


def _trace(head: bytes) -> bool:
    """trace's -w: its text (first line ``trace SRC (IP) → DST (IP): ..., marker N``), its JSON or YAML (lab first,
    then source), or its picture."""
    first = head.split(b"\n", 1)[0]
    if first.startswith(b"trace ") and "→".encode() in first and b", marker " in first:
        return True
    if head.startswith(b'{\n  "lab": ') and b'\n  "source": ' in head:
        return True
    return (head.startswith(b"lab: ") and b"\nsource:" in head) or _picture(head)


def _junit(head: bytes) -> bool:
    return head.startswith(b"<?xml") and b'<testsuites name="netlab probe"' in head


def _cni_calls(head: bytes) -> bool:
    """NETLAB_CNI_LOG's copy of up's CNI calls (cni/invoke.py): JSON lines with their keys sorted, a call's
    (``command`` first of them) or a watcher's apply's header line (``lab``, then ``netlab_cni_log``)."""
    first = head.split(b"\n", 1)[0]
    return first.startswith(b'{"command": "') or (first.startswith(b'{"lab": "') and b'", "netlab_cni_log": "' in first)


_EXCEPTION_LINE = re.compile(rb"[A-Z][A-Za-z0-9_]*: ")


def _artifact(head: bytes) -> bool:
    """A failed test's dump as netlab's pytest plugin writes it (netlab/pytest_artifacts.py): JSON as
    ``json.dumps(indent=2)`` gives it (an object or a list, empty or not), or error.txt's line (an error's class,
    then its words)."""
    return (head.startswith((b'{\n  "', b"[\n  ")) or head in (b"{}\n", b"[]\n")
            or _EXCEPTION_LINE.match(head) is not None)


PCAP = Kind("a pcap or pcapng capture", _pcap)
GRAPH = Kind("a picture netlab draws (Mermaid, DOT, SVG, PNG)", _picture, older=_older_picture)
TRACE = Kind("a trace netlab writes (text, JSON, YAML, or its DOT, SVG, PNG picture)", _trace, older=_older_picture)
OLDER = "if an older netlab drew it (its pictures carried no mark of netlab's), "  # the refusal's fix, before --force
JUNIT = Kind("netlab probe's JUnit XML", _junit)
CNI_CALLS = Kind("a copy of netlab's CNI calls (NETLAB_CNI_LOG's JSON lines)", _cni_calls,
                 fix="name another file in NETLAB_CNI_LOG, or remove it first")
ARTIFACT = Kind("a test's dump netlab's pytest plugin writes (its JSON, error.txt)", _artifact,
                fix="write the artifacts elsewhere (--netlab-artifacts DIR), or remove it first")


def for_api(kind: Kind) -> Kind:
    """``kind`` as the API says how to replace a file of another kind: its ``force=True``, not the CLI's --force."""
    return replace(kind, fix=API_FORCE)
