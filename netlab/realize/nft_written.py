"""What netlab knows its nf_tables tables hold, kept from one run to the next in the lab's folder.

The kernel's generation tells whether anything was committed in a namespace since netlab's last
transaction there or its last read (kernel/nftgen.py); this file keeps, between runs, the tables' listings
at that generation, so that an `up` changing one endpoint of a lab in kube-proxy's nftables mode reads no
table back, and `status` neither, while nothing else has changed them. It only saves reading: a file that is
missing, unreadable or stale (the namespace moved on) makes them read the tables, as before; it is written
by `up` (holding the lab's lock) into the lab's folder, never making the folder, and without fsync: a crash
that loses it costs one read.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Iterator, Mapping

from netlab.errors import NetlabError
from netlab.kernel.base import Kernel, Snapshot
from netlab.model.files import Unreadable, read_regular
from netlab.realize.lab_writes import in_lab_dir
from netlab.realize.state_dir import write_atomic

FILE = "nft-written.json"
MAX_BYTES = 64 << 20  # kube-proxy's table of 1,000 Services is ~1.5 MB a node


def load(lab: str, kernel: Kernel) -> None:
    """What the lab's last `up` left known, into ``kernel`` (nothing when the file is not there or not netlab's)."""
    kernel.nft_written.load_json(None)
    where = in_lab_dir(lab, FILE)
    if where is None:
        return
    try:
        data = json.loads(read_regular(where, MAX_BYTES, follow=False))
    except (Unreadable, ValueError):
        return
    kernel.nft_written.load_json(data)


def save(lab: str, kernel: Kernel) -> None:
    """Keep what ``kernel`` knows for the lab's next run; best effort (the folder gone with a new lab's rollback,
    a full disk: the next run reads the tables)."""
    where = in_lab_dir(lab, FILE)
    if where is None:
        return
    known = kernel.nft_written.to_json()
    try:
        if known:
            write_atomic(where, json.dumps(known, separators=(",", ":")).encode(), durable=False)
        else:
            os.unlink(where)
    except (NetlabError, OSError):
        pass


@contextlib.contextmanager
def kept(lab: str, kernel: Kernel) -> Iterator[None]:
    """A run of `up` (the caller holds the lab's lock): what the last one knew, loaded; what this one knows,
    saved as it ends, whether it succeeded or rolled back (a transaction is known only as the kernel took it)."""
    load(lab, kernel)
    before = kernel.nft_written.changes
    try:
        yield
    finally:
        if kernel.nft_written.changes != before:
            save(lab, kernel)


def listed(kernel: Kernel, snaps: Mapping[str, Snapshot]) -> None:
    """Each snapshot's nftables tables in the plan's words (realize/nftables.listing: what up and status compare,
    and all they read of a table), noted in ``kernel`` as known at the generation they were read at."""
    from netlab.realize.nftables import listing

    for ns, snap in snaps.items():
        if not snap.nft and snap.nft_stamp is None:
            continue
        lines = {key: listing(data) for key, data in snap.nft.items()}
        snap.nft = {key: {"netlab-listing": list(v)} for key, v in lines.items()}
        kernel.nft_written.read(ns, snap.nft_stamp, lines)
