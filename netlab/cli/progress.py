"""A progress bar on a terminal, for the commands that wait on the kernel (up, down, trace)."""

from __future__ import annotations

import sys


def progress_bar(title: str | None = None):
    """A transient rich progress bar on stderr when it is a terminal that draws one (not TERM=dumb); (None, None)
    otherwise.

    Returns (bar, update) where update(what, done, total) advances one task
    per ``what`` (shown as ``title`` when one is given). Use ``with bar:``.
    """
    if sys.stderr is None or not sys.stderr.isatty():  # None: started with standard error closed (`2>&-`)
        return None, None
    # rich is loaded only for a terminal: a script's run starts without it.
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_interactive:  # TERM=dumb (or unknown): rich draws no bar there, and left an empty line
        return None, None
    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), TimeElapsedColumn(),
                   console=console, transient=True)
    tasks: dict[str, int] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(title or what, total=total)
        bar.update(tasks[what], completed=done)

    return bar, update
