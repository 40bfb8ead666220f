"""``netlab list``: the labs that are up, and a line for each that is not as a finished ``up`` left it."""

from __future__ import annotations

import click

from netlab import api
from netlab.api.jsonio import to_json
from netlab.cli.base import cli, require_root
from netlab.cli.output import output_option, print_json
from netlab.cli.style import table
from netlab.errors import display_path, down_command


@cli.command(name="list")
@output_option("text", "json")
def list_labs(output: str) -> None:
    """Show the labs that are up (a table on a terminal, plain columns when piped or wider than the terminal).

    \b
    PHASE: up (as a finished `up` left it), creating or deleting (an `up` or
    `down` at work, or one that ended before it finished), and, each with a
    line on stderr that says why and what to do:
      corrupt      its state file cannot be read
      newer        its state file was written by a newer netlab
      lost         its state file is gone, its namespaces are not
      gone         its namespaces are gone, its state file is not
      elsewhere    up with another state folder (NETLAB_STATE_DIR), named
      interrupted  an `up` killed before it wrote its state

    Exit 0, also when no lab is up (`netlab: no lab is up` on stderr); 3 not
    root, or the state folder cannot be used.

    \b
    Examples:
      sudo netlab list
      sudo netlab list -o json      # each lab's keys: docs/json.md
      sudo NETLAB_STATE_DIR=/tmp/st netlab list    # another state folder's labs
    """
    require_root()  # state files only: no other process read
    rows = api.labs()
    if output == "json":
        print_json([to_json(r) for r in rows])  # every key, null when it does not apply (docs/json.md)
        _say_rows(rows)  # on stderr whatever -o is, as status -o json says its lab's (QA q43 6)
        return
    if not rows:  # on stderr: no row for a script that reads them
        click.echo("netlab: no lab is up", err=True)
        return
    cells = [[r.lab, r.phase, *("?" if c is None else str(c) for c in (r.nodes, r.pods, r.namespaces)),
              "?" if r.source is None else display_path(r.source)] for r in rows]
    click.echo(table(["lab", "phase", "nodes", "pods", "namespaces", "topology"], cells), nl=False)
    _say_rows(rows)


def _say_rows(rows: "tuple[api.LabInfo, ...]") -> None:
    """Each lab's line, on stderr: why it is not as a finished up left it, or that its owner ended."""
    for r in rows:
        if r.error:
            click.echo(f"netlab: {r.error}", err=True)
        elif r.owner_gone:
            click.echo(f"netlab: lab {r.lab} was brought up by {r.owner}, which has ended without taking it down "
                       f"(killed, or the lab kept by --netlab-keep): `{down_command(r.lab)}` takes it down",
                       err=True)
