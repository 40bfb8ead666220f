"""Waiting for descriptors with poll(2), never select(2).

select() takes descriptors below FD_SETSIZE (1,024) only, and netlab's processes hold more in a big lab: a
watcher two netlink sockets a namespace and a pidfd a container (about 1,500 for 500 pods), a probe's agent or a
trace a socket a namespace. Past it select() raises ("filedescriptor out of range in select()"): `up --watch` of
a 500-pod lab failed at its first wait.
"""

from __future__ import annotations

import select
from typing import Iterable, Protocol, TypeVar, Union


class HasFileno(Protocol):
    def fileno(self) -> int: ...


W = TypeVar("W", bound=Union[int, HasFileno])


def _fd(obj: int | HasFileno) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


def ready(objs: Iterable[W], timeout: float | None, events: int = select.POLLIN) -> list[W]:
    """Those of ``objs`` (descriptors, or objects with ``fileno()``) that are ready for ``events`` within
    ``timeout`` seconds (None: no limit; 0: now), in the order given; an error or hang-up counts as ready (a read
    then says what happened)."""
    objs = list(objs)
    if not objs:
        return []
    poller = select.poll()
    for obj in objs:
        poller.register(_fd(obj), events)
    got = {fd for fd, _ in poller.poll(None if timeout is None else max(0.0, timeout) * 1000)}
    return [obj for obj in objs if _fd(obj) in got]


def readable(obj: int | HasFileno, timeout: float | None) -> bool:
    """``obj`` has something to read (or an error, or its peer hung up) within ``timeout`` seconds."""
    return bool(ready([obj], timeout))


def writable(obj: int | HasFileno, timeout: float | None) -> bool:
    """``obj`` can be written (a connecting TCP socket: connected, or failed) within ``timeout`` seconds."""
    return bool(ready([obj], timeout, select.POLLOUT))
