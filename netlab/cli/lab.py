"""Lab lifecycle commands: up, down, status, list (they touch the kernel: root only)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from netlab import api
from netlab.cli.base import cli, lab_options, output_option, print_json, require_root
from netlab.cli.progress import progress_bar
from netlab.cli.topology import TOPOLOGY_HELP
from netlab.errors import ChecksFailed, display_path
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.probe.neighbours import neighbour_budget_warning
from netlab.realize.state import StateCorrupt, iter_states, select_lab, select_lab_name


@cli.command()
@click.option("-t", "--topology", metavar="FILE", help=TOPOLOGY_HELP)
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for another netlab command that holds the lab.")
@click.option("--reconfigure", is_flag=True,
              help="Replace a running lab of the same name that was brought up from another file.")
@output_option("text", "json")
def up(topology: str | None, wait: float, reconfigure: bool, output: str) -> None:
    """Create the lab, or converge a running lab to its topology.

    Namespaces are <lab>-underlay, <lab>-<node>, <lab>-<pod>. Running `up`
    again with the same file changes nothing; with a changed file it adds and
    removes what differs, like a controller reconciling desired and current
    state. Another file whose name: is a running lab's is refused unless
    --reconfigure is given. A failed or interrupted `up` rolls back (exit 4,
    or 130 when interrupted).

    \b
    Then, for example:
      sudo ip netns exec demo-fedora-1 ping -c1 10.244.1.3    # TTL 62: two routers
      sudo ip -n demo-minikube -d link show flannel.1          # the VXLAN device
      sudo netlab status
    """
    lab = resolve(load_topology(topology))
    require_root()
    bar, progress = progress_bar()
    if bar:
        with bar:
            result = api.up(lab, source=topology, progress=progress, wait=wait, reconfigure=reconfigure)
    else:
        result = api.up(lab, source=topology, wait=wait, reconfigure=reconfigure)
    warnings = list(result.warnings)
    warning = neighbour_budget_warning(lab)
    if warning:
        warnings.append(warning)
    if output == "json":
        print_json({"lab": lab.name, "changed": result.changed, "created_netns": result.created_netns,
                    "removed_netns": result.removed_netns, "fixed": result.fixed,
                    "operations": result.operations, "warnings": warnings})
        return
    for w in warnings:
        click.echo(f"netlab: warning: {w}", err=True)
    if not result.changed:
        click.echo(f"lab {lab.name} is up and matches its topology; nothing to change")
        return
    parts = []
    if result.created_netns:
        parts.append(f"{len(result.created_netns)} namespaces created")
    if result.removed_netns:
        parts.append(f"{len(result.removed_netns)} removed")
    if result.fixed:
        parts.append(f"{len(result.fixed)} objects, containers or files added, changed or repaired")
    click.echo(f"lab {lab.name} is up ({', '.join(parts)}): {len(lab.nodes)} nodes, {len(lab.pods)} pods, "
               f"{lab.mode} overlay")
    if not result.created_netns:  # a repair or a change: say what was done
        for line in result.fixed[:20]:
            click.echo(f"  {line}")
        if len(result.fixed) > 20:
            click.echo(f"  ... and {len(result.fixed) - 20} more (`-o json` lists them all)")
    if lab.pods:
        first = lab.pods[0]
        other = next((p for p in lab.pods if p.node != first.node), None) or lab.pods[-1]
        click.echo(f"try: sudo ip netns exec {first.netns} ping -c1 {other.ip}")


@cli.command()
@lab_options
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for another netlab command that holds the lab.")
@click.option("--force", is_flag=True,
              help="Also when the lab's state file is corrupt or lost: delete every namespace <lab>-* whose lo "
                   "carries the tag netlab:<lab>:<run id> (any run id). Untagged namespaces are never touched.")
@output_option("text", "json")
def down(lab_name: str | None, topology: str | None, wait: float, force: bool, output: str) -> None:
    """Delete everything the lab made: its processes, links and namespaces.

    Works without the topology file (`--lab NAME`), after a crash, and when
    run twice. Only what the lab's saved state proves it created is deleted;
    with --force, what the namespaces' own netlab tags prove.
    """
    require_root()
    lab_name = select_lab_name(lab_name, topology, required=False)
    if lab_name is None:
        if output == "json":
            print_json({"lab": None, "was_up": False, "removed_netns": []})
        else:
            click.echo("no lab is up; nothing to do")
        return
    bar, progress = progress_bar()
    if bar:
        with bar:
            result = api.down(lab_name, wait=wait, progress=progress, force=force)
    else:
        result = api.down(lab_name, wait=wait, force=force)
    if output == "json":
        print_json({"lab": lab_name, "was_up": result.was_up, "removed_netns": result.removed_netns,
                    "skipped": result.skipped})
        return
    for line in result.skipped:
        click.echo(f"netlab: warning: {line}", err=True)
    if not result.was_up:
        click.echo(f"lab {lab_name} is not up; nothing to do")
    else:
        click.echo(f"lab {lab_name} is down ({len(result.removed_netns)} namespaces removed)")


@cli.command()
@lab_options
@output_option("text", "json")
def status(lab_name: str | None, topology: str | None, output: str) -> None:
    """Compare the live kernel with the lab's plan; exit 1 on drift.

    Lists every missing, extra or different namespace, link, address, route,
    neighbour, FDB entry, sysctl and rule, and containers that exited.
    `sudo netlab up` again repairs the drift.
    """
    require_root()
    state = select_lab(lab_name, topology)
    result = api.status(state)
    if output == "json":
        print_json({"lab": result.lab, "ok": result.ok, "objects": result.objects, "drift": result.drift,
                    "details": result.details})
    else:
        if result.ok:
            click.echo(f"lab {result.lab}: {result.objects} objects, all as planned")
        else:
            click.echo(f"lab {result.lab}: {len(result.drift)} differences from the plan:")
            for line in result.drift:
                click.echo(f"  {line}")
            click.echo("run `sudo netlab up` again to repair")
    if not result.ok:
        raise SystemExit(ChecksFailed.exit_code)


@cli.command(name="list")
@output_option("text", "json")
def list_labs(output: str) -> None:
    """Show the labs that are up."""
    require_root()
    rows = []
    for st in iter_states():
        if isinstance(st, StateCorrupt):  # listed, so the user can take it down with --force
            rows.append({"lab": st.lab, "phase": "corrupt", "namespaces": None, "nodes": None, "pods": None,
                         "source": None, "error": str(st)})
            continue
        topo = st.topology
        rows.append({"lab": st.lab, "phase": st.phase, "namespaces": len(st.netns),
                     "nodes": len(topo.get("nodes", [])), "pods": len(topo.get("pods", [])),
                     "source": st.source or "built-in default"})
    if output == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("no lab is up")
        return
    table = Table("lab", "phase", "nodes", "pods", "namespaces", "topology")
    for r in rows:
        cells = [r["nodes"], r["pods"], r["namespaces"]]
        table.add_row(r["lab"], r["phase"], *("?" if c is None else str(c) for c in cells),
                      "?" if r["source"] is None else display_path(r["source"]))
    Console().print(table)
    for r in rows:
        if r.get("error"):
            click.echo(f"netlab: {r['error']}", err=True)

