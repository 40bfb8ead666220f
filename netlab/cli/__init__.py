"""The ``netlab`` command: a thin click layer.

Each command validates its input, calls one library function and renders the
result (a table on a terminal, ``-o json`` for machines). Errors are
NetlabError subclasses; :func:`main` prints them as one line and exits with
their code. Commands live in modules named after what they do; importing a
module registers its commands on :data:`netlab.cli.base.cli`, in this order.
"""

from __future__ import annotations

from netlab.cli.base import cli, main  # noqa: F401

# isort: off  (the order of these imports is the order of `netlab --help`)
from netlab.cli import lab  # noqa: F401,E402  validate plan up down status list
from netlab.cli import workload  # noqa: F401,E402  exec logs
from netlab.cli import probe  # noqa: F401,E402
from netlab.cli import trace  # noqa: F401,E402  trace capture inspect
from netlab.cli import graph  # noqa: F401,E402
from netlab.cli import doctor  # noqa: F401,E402
# isort: on
