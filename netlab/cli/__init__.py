"""The ``netlab`` command: a thin click layer.

Each command validates its input, calls one library function and renders the
result (a table on a terminal, ``-o json`` for machines). Errors are
NetlabError subclasses; :func:`main` prints them as one line and exits with
their code. Commands live in modules named after what they do; each module
registers its commands on :data:`netlab.cli.base.cli`.
"""

from __future__ import annotations

from netlab.cli.base import cli, main  # noqa: F401

# Importing a command module registers its commands.
from netlab.cli import lab  # noqa: F401,E402

for _optional in ("probe", "workload", "graph", "trace", "services"):
    try:
        __import__(f"netlab.cli.{_optional}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"netlab.cli.{_optional}":
            raise
