"""``-o json``: the text of ``json.dumps(data, indent=2, default=str)``, written faster.

Python 3.11's C encoder cannot indent, so ``json.dump(..., indent=2)`` runs the
pure-Python encoder over every value: for a 500-pod probe that is 22 million
pieces and seconds of CPU. Most of that JSON is flat objects, one per probe,
whose values are numbers, strings, null or empty lists. The C encoder writes
such an object with its items joined by a separator we choose; with ",\\n" and
the indentation of the object's depth, that is exactly the indented text once
its braces are opened onto lines of their own. So only the nesting above the
flat objects and lists is walked in Python, and the text is the same, byte for
byte (tests/unit/test_jsonout.py checks it against ``json.dumps``).
"""

from __future__ import annotations

import json
from typing import Any, Callable

INDENT = 2
CONTAINERS = (dict, list, tuple)  # what json writes as objects and arrays


def dumps(data: Any) -> str:
    """``json.dumps(data, indent=2, default=str)``."""
    parts: list[str] = []
    dump(data, parts.append)
    return "".join(parts)


def dump(data: Any, write: Callable[[str], Any]) -> None:
    """Write ``json.dumps(data, indent=2, default=str)`` through ``write``, piece by piece."""
    _Writer(write).value(data, 0)


class _Writer:
    def __init__(self, write: Callable[[str], Any]):
        self.write = write
        self.encoders: dict[int, json.JSONEncoder] = {}

    def encoder(self, depth: int) -> json.JSONEncoder:
        """The C encoder, separating items as the indented text separates them at ``depth``."""
        enc = self.encoders.get(depth)
        if enc is None:
            enc = json.JSONEncoder(separators=(",\n" + " " * (INDENT * depth), ": "), default=str)
            self.encoders[depth] = enc
        return enc

    def value(self, v: Any, depth: int) -> None:
        if isinstance(v, dict):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            self.write(self.encoder(depth).encode(v))  # a number, a string, null; anything else as str()
            return
        if not v:
            self.write("{}" if isinstance(v, dict) else "[]")
            return
        pad, inner = "\n" + " " * (INDENT * depth), "\n" + " " * (INDENT * (depth + 1))
        if not any(isinstance(item, CONTAINERS) and item for item in items):
            text = self.encoder(depth + 1).encode(v)  # flat: the C encoder writes it whole
            self.write(text[0] + inner + text[1:-1] + pad + text[-1])
            return
        if not isinstance(v, dict) and all(type(item) is dict and item and _flat(item) for item in v):
            self.write(self.records(v, depth, pad, inner))
            return
        if isinstance(v, dict):
            sep = "{" + inner
            for key, item in v.items():
                self.write(sep + _key(key) + ": ")
                self.value(item, depth + 1)
                sep = "," + inner
            self.write(pad + "}")
        else:
            sep = "[" + inner
            for item in v:
                self.write(sep)
                self.value(item, depth + 1)
                sep = "," + inner
            self.write(pad + "]")

    def records(self, v: list | tuple, depth: int, pad: str, inner: str) -> str:
        """A list of flat objects (a probe's results: 250,000 of them at 500 pods), written by the C encoder in one
        call: the objects' items separated as at ``depth + 2``, and so the objects themselves; then each boundary
        between two objects, ``},`` newline, that indentation, ``{``, moved out to the list's. Only there does ``{``
        follow a separator: inside an object a key follows it (a string), and no string holds a newline (the
        encoder writes ``\\n``)."""
        deeper = "\n" + " " * (INDENT * (depth + 2))
        text = self.encoder(depth + 2).encode(v)  # [{...},<deeper>{...}]
        body = text[2:-2].replace("}," + deeper + "{", inner + "}," + inner + "{" + deeper)
        return "[" + inner + "{" + deeper + body + inner + "}" + pad + "]"


SCALARS = frozenset((str, int, float, bool, type(None)))


def _flat(d: dict) -> bool:
    """Every value of ``d`` that is not empty, zero or false is a string, number or bool: no container with something
    in it (an empty one is written ``{}`` or ``[]`` at any depth), nor anything else (a named tuple, written as a
    list; an object, as its str()). Checked in C (filter, map, set): a Python loop over 22 values for each of a
    probe's 2,500 results cost ~5 ms."""
    return set(map(type, filter(None, d.values()))) <= SCALARS


def _key(key: Any) -> str:
    """An object's key as json writes it: strings quoted; numbers, true, false and null as their text, quoted."""
    if not isinstance(key, str):
        if not (key is None or isinstance(key, (bool, int, float))):
            raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
        key = json.dumps(key)  # 1 -> "1", True -> "true", None -> "null", 1.5 -> "1.5"
    return json.dumps(key)
