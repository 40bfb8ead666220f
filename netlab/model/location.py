"""Where a problem is in a topology document, and how to say it on one line.

A location is the path of keys and list indexes from the document's root:
``("pods", 3, "ip")``, shown as ``pods[3].ip`` in ``FILE:LINE: field: message``.
The YAML reader, the model's own validators and the cross-field checks all
speak about places and values this way, so each message reads the same
wherever it was found.
"""

from __future__ import annotations

import json
import re
from typing import Any

Loc = tuple[str | int, ...]

# Field shown for problems in the YAML text itself, before any field is known.
YAML_FIELD = "yaml"
# Field shown for problems with the document as a whole.
ROOT_FIELD = "topology"

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def format_path(path: Loc, limit: int = 120) -> str:
    """``('pods', 3, 'ip')`` -> ``pods[3].ip``; odd keys are quoted so the path stays one safe line."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += ("." if out else "") + clip(part)
        else:
            # JSON string escapes, and no spaces: a field is one word in "FILE:LINE: field: message".
            out += "[" + json.dumps(clip(part)).replace(" ", "\\u0020") + "]"
        if len(out) > limit:
            return out[:limit] + "..."
    return out


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def show(value: Any, limit: int = 40) -> str:
    """A value as it may appear in a one-line message: repr, escaped, clipped."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def yaml_kind(value: Any) -> str:
    """What a YAML author wrote, in YAML words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
