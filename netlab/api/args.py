"""The checks of the Python API's arguments that the CLI's options make (click's Choice, FloatRange and
IntRange): each a UsageError naming the argument and what it takes, before anything is sent or read.

A library caller's mistakes were taken as they came: ``proto="TCP"`` traced a packet no rule matches
(a false "look at the firewall" loss), ``timeout=-1`` waited for nothing, ``protos="tcp"`` was read
letter by letter. The CLI's options take their ranges from here, so a value one accepts the other does too.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from netlab.errors import UsageError

PROTOS = ("icmp", "tcp", "udp")
# Seconds to wait for answers: the CLI's --timeout ranges (probe and reach send the matrix's probes,
# trace one marked packet).
PROBE_TIMEOUT = (0.05, 30)
TRACE_TIMEOUT = (0.1, 30)
TRACE_SIZE = (1, 65000)  # trace --size: an ICMP echo's payload with DF (0: the plain echo)


@contextmanager
def method(name: str) -> Iterator[None]:
    """The checks of library method ``name``'s arguments, whose UsageError then names the method and the argument
    (``lab.impair: rate: 'fast' is not a rate``), where the CLI's name its option (``--rate``)."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def check_int(what: str, value: Any) -> None:
    """An int (not a bool): a port given as "8080" is said to be the wrong type, not out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be an integer, not {type(value).__name__} {value!r}")


def check_proto(proto: str | None) -> None:
    """None (the destination's own) or one of icmp, tcp, udp, in lower case as the CLI's --proto and the
    probes' JSON write them: "TCP" is refused, not taken for another protocol."""
    if proto is not None and proto not in PROTOS:
        raise UsageError(f"proto {proto!r}: want one of {', '.join(PROTOS)}")


def check_seconds(what: str, value: Any, bounds: tuple[float, float]) -> float:
    """A number of seconds within ``bounds``, as the CLI's --timeout (not a bool, nan or inf)."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{what} must be a number of seconds, not {type(value).__name__} {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{what} {value!r} is not in the range {low:g}-{high:g} (seconds)")
    return float(value)


def check_size(size: Any) -> None:
    """trace's ``size``: 0 (a plain echo) or the CLI's --size range."""
    low, high = TRACE_SIZE
    check_int("size", size)
    if not (size == 0 or low <= size <= high):
        raise UsageError(f"size {size!r} is not in the range {low}-{high} (0: a plain echo)")


def items(what: str, value: str | Iterable[str], choices: Collection[str]) -> tuple[str, ...]:
    """A list argument's items: a str is one item (or several, comma-separated, as the CLI's option takes
    them), not its letters; each one of ``choices``, else a UsageError naming the others."""
    given = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [v for v in given if v not in choices]
    if unknown:
        raise UsageError(f"{what} {', '.join(map(repr, unknown))}: want some of {', '.join(choices)}")
    return tuple(dict.fromkeys(given))


def check_choice(what: str, value: Any, choices: Collection[str]) -> None:
    if value not in choices:
        raise UsageError(f"{what} {value!r}: want one of {', '.join(choices)}")
