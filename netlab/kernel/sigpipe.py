"""Writes to a child's stdin that kill no caller, whatever the caller's SIGPIPE.

A write to a pipe whose reader is gone (a program that exited without reading all its input: an
``iptables-restore`` or ``nft -f -`` stopping at a bad line, a ``dot`` that failed, a command given input it
never reads) fails with EPIPE, and the kernel also sends the writing thread a SIGPIPE. Python ignores SIGPIPE
from its start, so the write's BrokenPipeError is all it sees (subprocess drops it: the program's exit status
says what happened). A program using netlab's API may have set SIGPIPE back to its default (as many do, to stop
quietly when their own output is cut): there the signal ended the whole program, silently, status 141.
Every such write here is made with SIGPIPE blocked in the writing thread (:func:`sigpipe_held`); the children
start before it is blocked, with the caller's mask (a mask is inherited through fork and exec)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator, Sequence
from typing import IO, Any, Callable


@contextlib.contextmanager
def sigpipe_held() -> Iterator[None]:
    """The block's writes with SIGPIPE blocked in this thread: a write to a pipe whose reader has gone fails with
    EPIPE only. A SIGPIPE the block's writes left pending is taken before the mask is as it was; one pending
    before the block is left."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
    pending = signal.SIGPIPE in signal.sigpending()
    try:
        yield
    finally:
        if not pending and signal.SIGPIPE in signal.sigpending():
            signal.sigtimedwait({signal.SIGPIPE}, 0)
        if signal.SIGPIPE not in old:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_fed(argv: Sequence[str], input: bytes | str | None, timeout: float | None, check: bool = False,
            start: Callable[..., subprocess.Popen] = subprocess.Popen, **popen: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, input=input, capture_output=True, timeout=timeout, check=check, **popen)``, its
    input written with SIGPIPE held (no input: stdin is /dev/null). The program starts (``start``: Popen, or
    own_group.popen) with the caller's signal mask; only the exchange (subprocess's communicate: input, output
    and the wait, all in this thread) runs with SIGPIPE blocked. At the timeout, or when the wait is cut short
    (Ctrl-C), the program is killed, as subprocess.run does."""
    stdin = subprocess.DEVNULL if input is None else subprocess.PIPE
    with start(list(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen) as proc:
        try:
            with sigpipe_held():
                out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()  # the output read so far is in the exception already
            raise
        except BaseException:
            proc.kill()  # Popen's exit waits for it
            raise
        code = proc.poll()
        if check and code:
            raise subprocess.CalledProcessError(code, proc.args, out, err)
    return subprocess.CompletedProcess(proc.args, code, out, err)


def stdin_fed(stream: IO[bytes], data: bytes) -> None:
    """All of ``data`` to a child's stdin, then the end of input (the pipe closed); a child that exited, or
    closed its stdin, without reading it all leaves the rest unwritten."""
    with sigpipe_held():
        with contextlib.suppress(BrokenPipeError):
            stream.write(data)
        with contextlib.suppress(BrokenPipeError):
            stream.close()  # what the buffer still held; the pipe is closed either way
