"""The ``netlab`` command: a thin click layer.

Each command validates its input, calls one library function and renders the
result (a table on a terminal, ``-o json`` for machines). Errors are
NetlabError subclasses; :func:`main` prints them as one line and exits with
their code. Commands live in modules named after what they do
(:data:`netlab.cli.base.COMMANDS` says which); a module is imported when one
of its commands runs, and registers its commands on :data:`netlab.cli.base.cli`.
"""

from __future__ import annotations

from netlab.cli.base import cli
from netlab.cli.boundary import main

__all__ = ["cli", "main"]
