"""nft's own library, libnftables, called in this process through ctypes.

``nft`` is a thin program around libnftables: ``nft -f FILE`` is
``nft_run_cmd_from_filename`` and ``nft -j list table ...`` is
``nft_run_cmd_from_buffer`` with the JSON output flag. Calling the library
here does the same parse, the same evaluation and the same single netlink
batch (one transaction, all of it or none) as the program, without starting a
process: for a 5-line partial sync that is most of the cost.

What the library does that matters to its caller (nftables 1.0.6,
src/libnftables.c):

- ``nft_ctx_new`` opens the context's netfilter netlink socket at once, in
  the calling thread's network namespace, and every command of the context
  talks through that socket. Interface names (``iif``/``oif`` by index) are
  looked up through a routing socket opened at the moment of the command. So
  the whole life of a context, from new to free, runs inside the namespace.
- A context is cheap (~25 µs with its socket; the socket's close right after
  a commit is not: kernel/nfclose.py takes it off the caller's path), and one made per command keeps
  nothing of a previous command (the library's cache of the ruleset is kept
  between commands of one context when the ruleset's generation has not
  changed).
- The library is not thread-safe across contexts: it keeps process-wide state
  (counters numbering new chains and sets in a batch, the ruleset generation
  of the last dump, the interface cache). :mod:`netlab.kernel.nft` lets one
  thread at a time in.
- It calls ``exit()`` when it cannot open its netlink socket; :func:`run_file`
  opens one first, so that a missing nf_tables or a full descriptor table is an
  OSError here instead of the end of the process.

ctypes releases the GIL for the call, so other threads (netlink work in other
namespaces, an ``nft`` process started for another node) go on meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import socket

from netlab.kernel import nfclose

SONAME = "libnftables.so.1"
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_JSON = 1 << 4
NETLINK_NETFILTER = 12

_lib: ctypes.CDLL | None = None
_load_error: str | None = None


def _bind(lib: ctypes.CDLL) -> None:
    """The prototypes of include/nftables/libnftables.h that netlab uses (a pointer is not an int)."""
    ctx = ctypes.c_void_p
    lib.nft_ctx_new.argtypes, lib.nft_ctx_new.restype = [ctypes.c_uint32], ctx
    lib.nft_ctx_free.argtypes, lib.nft_ctx_free.restype = [ctx], None
    lib.nft_ctx_buffer_output.argtypes, lib.nft_ctx_buffer_output.restype = [ctx], ctypes.c_int
    lib.nft_ctx_buffer_error.argtypes, lib.nft_ctx_buffer_error.restype = [ctx], ctypes.c_int
    lib.nft_ctx_get_output_buffer.argtypes, lib.nft_ctx_get_output_buffer.restype = [ctx], ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes, lib.nft_ctx_get_error_buffer.restype = [ctx], ctypes.c_char_p
    lib.nft_ctx_output_set_flags.argtypes, lib.nft_ctx_output_set_flags.restype = [ctx, ctypes.c_uint], None
    lib.nft_run_cmd_from_buffer.argtypes, lib.nft_run_cmd_from_buffer.restype = [ctx, ctypes.c_char_p], ctypes.c_int
    lib.nft_run_cmd_from_filename.argtypes = [ctx, ctypes.c_char_p]
    lib.nft_run_cmd_from_filename.restype = ctypes.c_int


def load() -> ctypes.CDLL | None:
    """The library, loaded once; None when it is not installed or lacks a function netlab calls."""
    global _lib, _load_error
    if _lib is None and _load_error is None:
        try:
            lib = ctypes.CDLL(SONAME)
            _bind(lib)
        except (OSError, AttributeError) as exc:
            _load_error = str(exc)
        else:
            _lib = lib
    return _lib


def load_error() -> str | None:
    """Why :func:`load` found no library (None when it did, or was not tried yet)."""
    return _load_error


class _Context:
    """One ``nft_ctx`` with its output and errors kept in memory, freed on exit."""

    def __init__(self, lib: ctypes.CDLL, flags: int = 0):
        self.lib = lib
        before = nfclose.sockets()
        self.ptr = lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not self.ptr:
            raise OSError("nft_ctx_new failed")
        # A second reference to the context's socket, so that its close in nft_ctx_free does not wait for the
        # kernel's deferred frees (kernel/nfclose.py); None when the socket could not be told apart.
        self.held = nfclose.hold(before, nfclose.sockets())
        lib.nft_ctx_buffer_output(self.ptr)
        lib.nft_ctx_buffer_error(self.ptr)
        if flags:
            lib.nft_ctx_output_set_flags(self.ptr, flags)

    def __enter__(self) -> "_Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.lib.nft_ctx_free(self.ptr)
        if self.held is not None:
            nfclose.let_go(self.held)

    def result(self, rc: int) -> tuple[int, bytes, bytes]:
        return (rc, self.lib.nft_ctx_get_output_buffer(self.ptr) or b"",
                self.lib.nft_ctx_get_error_buffer(self.ptr) or b"")


def _check_socket() -> None:
    """Open a netfilter netlink socket here, where the library would exit() instead of this OSError; closed
    on kernel/nfclose.py's thread (a close right after another node's commit waits for the kernel)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    nfclose.let_go(sock.detach())


def run_file(lib: ctypes.CDLL, path: str) -> tuple[int, bytes, bytes]:
    """``nft -f PATH`` in the calling thread's namespace: (return code, output, errors as nft prints them)."""
    _check_socket()
    with _Context(lib) as ctx:
        return ctx.result(lib.nft_run_cmd_from_filename(ctx.ptr, os.fsencode(path)))


def run_command(lib: ctypes.CDLL, command: str, json: bool = False) -> tuple[int, bytes, bytes]:
    """``nft [-j] COMMAND`` in the calling thread's namespace: (return code, output, errors)."""
    _check_socket()
    with _Context(lib, NFT_CTX_OUTPUT_JSON if json else 0) as ctx:
        return ctx.result(lib.nft_run_cmd_from_buffer(ctx.ptr, command.encode()))
