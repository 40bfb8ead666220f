"""capture's -w: a classic pcap written as the frames come, as ``tcpdump -w`` writes one with ``-U``.

The header goes out as the capture starts and each frame as it is handed on, flushed at once: a reader at a
pipe's other end (``-w - | tshark -r -``) or of a file being written sees each frame as it crosses, not the
whole capture at its end. The frame's bytes as the socket read them (libpcap's record: seconds, microseconds,
captured and wire length, in this machine's byte order, as tcpdump writes). A reader that went away is the
write's BrokenPipeError, left to the program's boundary (cli/base.py: exit 141, quietly, as under SIGPIPE); a
file the disk cannot take is one line (outfile.output_unwritable: a full disk exit 3).
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from netlab import outfile
from netlab.errors import output_unwritable
from netlab.outkinds import PCAP

STDOUT = "-"
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144  # tcpdump's default snapshot length: no frame is cut
MAGIC = 0xA1B2C3D4  # microsecond timestamps


class PcapStream:
    """A pcap at ``path`` (``-`` for standard output), written frame by frame; ``written`` frames so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.written = 0
        self._fh: BinaryIO | None = None

    def __enter__(self) -> PcapStream:
        if self.path == STDOUT:  # as tcpdump -w - (cli.output.check_pcap_file: not a terminal's)
            sys.stdout.flush()
            self._fh = sys.stdout.buffer
        else:
            self._fh = outfile.open_output(self.path, kind=PCAP)
        self._write(struct.pack("=IHHiIII", MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        return self

    def write(self, data: bytes, ts: float) -> None:
        """One frame: its bytes and when it was read (seconds since the epoch)."""
        sec = int(ts)
        usec = min(999_999, int(round((ts - sec) * 1e6)))
        self._write(struct.pack("=IIII", sec, usec, len(data), len(data)) + data)
        self.written += 1

    def _write(self, data: bytes) -> None:
        assert self._fh is not None
        try:
            self._fh.write(data)
            self._fh.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            if self.path == STDOUT:
                raise
            raise output_unwritable(self.path, exc) from None

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None and self.path != STDOUT:
            try:
                self._fh.close()
            except OSError as err:
                if exc[0] is None:
                    raise output_unwritable(self.path, err) from None
