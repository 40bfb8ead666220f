"""Where each object of a topology was written, so that a note about it is said where a problem would be.

A note (valid, probably not meant: a podSelector that selects no pod, a named
port nobody declares, an ipBlock with host bits) is about a field of one
object: a Service of the topology, a NetworkPolicy of the topology or of an
included manifest (``pol/deny.yaml``, document 2, ``items[1]``). The loader
keeps each object's :class:`Place` (its file, its path in its document, the
document's lines), and a note is then said as a problem is,
``FILE:LINE: field: message``, at the line of the field it is about (the
object's own line when the field was left out, as ``podSelector: {}`` may be).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netlab.errors import Problem
from netlab.model.location import ROOT_FIELD, Loc, format_path

Key = tuple[str, str, str]  # (kind, namespace, name): ("NetworkPolicy", "default", "deny-all")
TOPOLOGY: Key = ("Topology", "", "")  # the topology file itself: a note about one of its own fields


class Note(str):
    """A note's line as said (``FILE:LINE: field: message``; the message alone for an object written nowhere
    netlab read, as the cluster DNS netlab adds), which knows its parts for ``-o json``."""

    file: str | None
    line: int | None
    field: str
    message: str

    def __new__(cls, message: str, file: str | None = None, line: int | None = None, field: str = "") -> "Note":
        text = str(Problem(file, line, field, message)) if file else message
        self = super().__new__(cls, text)
        self.file, self.line, self.field, self.message = file, line, field, message
        return self

    def place(self) -> dict[str, Any]:
        """As validate's ``-o json`` gives a problem: file, line, field, message."""
        return {"file": self.file, "line": self.line, "field": self.field or None, "message": self.message}


@dataclass(frozen=True)
class Place:
    """An object's file, its path in its YAML document, and that document's lines (``offset``: the lines
    before the document in its file)."""

    file: str
    at: Loc
    lines: Mapping[Loc, int]
    offset: int = 0

    def note(self, within: Loc, message: str) -> Note:
        """``message`` said at the field ``within`` the object (``("spec", "podSelector")``)."""
        path = self.at + within
        line = next((self.lines[path[:end]] for end in range(len(path), -1, -1) if path[:end] in self.lines), None)
        return Note(message, self.file, line + self.offset if line else None, format_path(path) or ROOT_FIELD)


class Places(dict[Key, Place]):
    """Every located object of a topology, by kind, namespace and name."""

    def note(self, key: Key, within: Loc, message: str) -> Note:
        """``message`` at its object's field, or alone when the object has no place."""
        place = self.get(key)
        return place.note(within, message) if place else Note(message)


def service_places(file: str, services: list[Any], lines: Mapping[Loc, int]) -> Places:
    """The topology's own Services, at ``services[i]``."""
    return Places({("Service", s.namespace, s.name): Place(file, ("services", i), lines)
                   for i, s in enumerate(services)})
