"""netlab's ownership tag of a namespace: which lab, which run of it, and which state folder made it.

A namespace netlab makes carries its tag in three sysctls that the kernel gives no meaning (``tag`` of the
``all``, ``lo`` and ``default`` IPv4 devconfs, 31-bit numbers, 0 meaning untagged), written before the
namespace gets its name: ``down --force`` and ``up`` tell a lab's namespaces from look-alikes by it, never by
name alone. Pure: kernel/netns.py writes and reads the numbers.
"""

from __future__ import annotations

from typing import Iterable

from netlab.model import digest

TAG_PREFIX = "netlab:"
# (lab hash, run hash, state folder hash). A link made in (or moved into) the namespace starts with the default's
# tag: the kernel gives the number no meaning, and only these three are read.
TAG_SYSCTLS = ("net.ipv4.conf.all.tag", "net.ipv4.conf.lo.tag", "net.ipv4.conf.default.tag")


def _hash31(text: str) -> int:
    """A nonzero 31-bit number from text (a tag sysctl takes 0 .. 2**31-1; 0 means untagged)."""
    return int.from_bytes(digest.blake2b(text.encode(), digest_size=4).digest(), "big") % 0x7FFFFFFF + 1


def lab_hash(lab: str) -> str:
    return f"{_hash31(TAG_PREFIX + lab):08x}"


def folder_hash(folder: str) -> str:
    """The tag's hash of a state folder, from its path (realpath: one folder, however it is spelled)."""
    return f"{_hash31('state folder:' + folder):08x}"


def make_tag(lab: str, run_id: str, folder: str | None = None) -> str:
    """The tag of every namespace of one run of a lab: ``netlab:<lab hash>:<run hash>``, and ``:<folder hash>``
    (folder_hash) for a run that records its state folder (a lab of an older netlab records none)."""
    tag = f"{TAG_PREFIX}{lab_hash(lab)}:{_hash31(run_id):08x}"
    return f"{tag}:{folder}" if folder else tag


def tag_values(tag: str) -> tuple[int, ...]:
    """The sysctl values a tag is written as (two, or three with the state folder's hash)."""
    head, *values = tag.split(":")
    if head + ":" != TAG_PREFIX or len(values) not in (2, 3):
        raise ValueError(f"not a netlab tag: {tag!r}")
    return tuple(int(value, 16) for value in values)


def tag_of(values: Iterable[str | None]) -> str | None:
    """The tag that the values of TAG_SYSCTLS (as read) make; None for an untagged namespace. A folder hash of 0
    (or none read): a namespace of an older netlab, whose tag names no state folder."""
    lab, run, folder = (list(values) + [None, None, None])[:3]
    if not all(v and v.isdigit() and v != "0" for v in (lab, run)):
        return None
    tag = f"{TAG_PREFIX}{int(lab):08x}:{int(run):08x}"  # type: ignore[arg-type]
    return f"{tag}:{int(folder):08x}" if folder and folder.isdigit() and folder != "0" else tag


