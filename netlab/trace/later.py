"""A command a trace works out the first time a line names it: the lab's repair (realize.state.repair_up), which
reads and validates the lab's file (source_changed: 0.23-0.27 s at 500 pods) and asks the CNI whether the lab needs
--reconfigure, for a line most traces never print (a packet delivered, a fix `up` does not put right)."""

from __future__ import annotations

from typing import Callable


class Later:
    """``value``, or what ``value()`` gives, worked out at the first call and kept."""

    __slots__ = ("_make", "_value")

    def __init__(self, value: str | Callable[[], str]) -> None:
        self._value: str | None = value if isinstance(value, str) else None
        self._make: Callable[[], str] | None = None if isinstance(value, str) else value

    def __call__(self) -> str:
        if self._value is None:
            assert self._make is not None
            self._value, self._make = self._make(), None
        return self._value
