"""Colour and tables, only on a terminal.

Colour marks what failed (red: ``X!``, ``NOT SEEN``, ``FAIL``, drift) and,
sparingly, what passed (green); it is used only when the stream is a
terminal and ``NO_COLOR`` is not set (https://no-color.org), so piped output
and files stay plain. Tables: a rich box table on a terminal (when it fits), plain
aligned columns (like ``kubectl get``) when piped, so ``netlab list | awk`` works;
the same upper-case headers either way.
"""

from __future__ import annotations

import os
import re
import sys
from typing import IO, Any, Sequence

import click

# Words that say something failed or was not seen, in netlab's text outputs.
FAILURE = re.compile(r"(?<![\w-])(X!|X:[\w.-]+!?|[\w.-]+!(?=\s|$)|NOT SEEN|NOT AS EXPECTED|FAIL(?:ED)?|LOST|"
                     r"missing:|extra:|different:|exited|stopped)(?![\w-])")
SUCCESS = re.compile(r"(?<![\w-])(ok|seen|delivered|all as planned)(?![\w-])")


def on_terminal(stream: IO[str] | None = None) -> bool:
    """``stream`` is a terminal that draws more than plain text (not TERM=dumb): where box tables go."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return (stream or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return False


def use_color(stream: IO[str] | None = None) -> bool:
    """Colour: on a terminal, unless ``NO_COLOR`` is set (it asks for no colour, nothing else: tables keep their
    boxes)."""
    return not os.environ.get("NO_COLOR") and on_terminal(stream)


def highlight(text: str, stream: IO[str] | None = None) -> str:
    """``text`` with failures in red (and the few success words in green) when ``stream`` is a terminal."""
    if not use_color(stream):
        return text
    text = FAILURE.sub(lambda m: click.style(m.group(1), fg="red", bold=True), text)
    return SUCCESS.sub(lambda m: click.style(m.group(1), fg="green"), text)


def red(text: str, stream: IO[str] | None = None) -> str:
    return click.style(text, fg="red", bold=True) if use_color(stream) else text


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], stream: IO[str] | None = None) -> str:
    """Rows under headers, upper case as kubectl writes them: a rich box table on a terminal, plain columns
    otherwise (no trailing spaces). A box table wider than the terminal would cut its cells with "…" or fold
    them across lines (a topology path, a pod's labels: no longer whole to read or to copy), so then the plain
    columns are printed there too, which the terminal wraps as kubectl's."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    names = [h.upper() for h in headers]
    if on_terminal(stream):  # rich itself leaves colour out under NO_COLOR
        from rich.console import Console
        from rich.table import Table

        t = Table(*names)
        for row in cells:
            t.add_row(*row)
        console = Console(file=stream or sys.stdout, **({} if use_color(stream) else {"color_system": None}))
        if console.measure(t, options=console.options.update_width(1 << 16)).maximum <= console.width:
            with console.capture() as cap:
                console.print(t)
            return cap.get()
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(names)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(names, widths)).rstrip()]
    lines += ["   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def plural(n: int, word: str, words: str = "") -> str:
    """``1 frame``, ``2 frames``; ``1 entry``, ``0 entries`` (``words``: a plural that is not ``word`` + s)."""
    return f"{n} {word if n == 1 else words or word + 's'}"
