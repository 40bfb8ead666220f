"""``netlab graph``: draw a lab (Mermaid, Graphviz DOT, SVG, PNG)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from netlab import graph
from netlab.cli.base import cli
from netlab.cli.options import TOPOLOGY_FILE, lab_from_env
from netlab.cli.output import check_output_file, dash_is_stdout, force_option, write_output_file
from netlab.errors import EnvironmentNotReady, UsageError
from netlab.outkinds import GRAPH

if TYPE_CHECKING:
    from netlab.model.lab import Lab

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.model.lab", "netlab.model.load", "netlab.realize.state")


@cli.command("graph")
@click.option("--lab", "lab_name", metavar="NAME", envvar="NETLAB_LAB", show_envvar=True,
              callback=lab_from_env,
              help="Draw a running lab (its saved topology; reading it needs root). Default: $NETLAB_LAB.")
@click.option("-t", "--topology", "topology", metavar="FILE", type=TOPOLOGY_FILE,
              help="Draw this topology file. Needs no root and no running lab.")
@click.option("-o", "--output", "output", type=click.Choice(graph.FORMATS), default="mermaid", show_default=True,
              help="mermaid and dot are text; svg and png are laid out by Graphviz's dot.")
@click.option("-w", "--write", "write", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              callback=dash_is_stdout, help="Write to FILE instead of standard output (-: standard output).")
@force_option("-w's FILE")
@click.option("--policy", "policy", is_flag=True,
              help="Draw the pods by Kubernetes namespace and an arrow per pod-to-pod flow the "
                   "NetworkPolicies allow on a port the destination serves (labelled with those ports when not "
                   "all it serves are allowed); other ports are not evaluated.")
def graph_cmd(lab_name: str | None, topology: str | None, output: str, write: str | None, force: bool,
              policy: bool) -> None:
    """Draw a lab: underlay, nodes, bridges, pods, veths, tunnels, Services.

    \b
    What the picture shows:
      underlay   the <lab>-underlay namespace and its br0 bridge, the nodes' LAN
      node       a frame per node: eth0 (node IP), cni0 (bridge, the pods' gateway),
                 flannel.1 (VXLAN device: VNI, UDP port, MAC) in vxlan mode
      pod        name, IP, namespace, labels; the line to cni0 is its veth pair
                 (labelled with the host end's name, as `ip -n <node> link` shows it)
      tunnels    dashed "VXLAN VNI 1 UDP 8472" between every two nodes, or in
                 host-gw mode the routes each node holds for the other's pods
      Services   ClusterIP and ports, with an arrow to every endpoint pod
      internet   the gateway and hosts, when the topology has an internet: section

    Which lab: -t FILE draws a topology file; --lab NAME (or $NETLAB_LAB) a
    running lab; with neither, the only lab that is up, or else the built-in
    default lab.

    \b
    Examples:
      netlab graph -t lab.yaml                             # Mermaid text
      netlab graph -t lab.yaml -o svg -w lab.svg           # needs graphviz
      netlab graph -o dot | dot -Tpdf -o lab.pdf           # lay it out yourself
      sudo netlab graph --lab demo -o png -w demo.png
      netlab graph -t lab.yaml --policy                    # what the NetworkPolicies allow

    Mermaid text renders on GitHub and GitLab inside a ```mermaid block, or at
    mermaid.live. The same topology always gives the same text, so a graph
    kept in git shows topology changes as diffs.

    An existing -w FILE is replaced only when it is empty or holds a picture
    netlab drew (Mermaid, DOT, SVG, PNG); anything else (a typo'd
    /etc/passwd) is left as it is, exit 2, unless --force. A symlink is
    never followed onto a file of another kind, even with --force.
    """
    check_output_file(write, kind=GRAPH, force=force)
    lab = _pick_lab(lab_name, topology)
    if output == "png" and write is None and sys.stdout.isatty():
        raise UsageError("PNG is binary and would garble the terminal; write it with -w FILE.png "
                         "or redirect it: netlab graph -o png > lab.png")
    if policy:
        from netlab.graph_policy import policy_graph

        data = graph.render_graph(policy_graph(lab), output)
    else:
        data = graph.render(lab, output)
    if write is None:
        stream = sys.stdout.buffer  # click.get_binary_stream is deprecated (Click 8.5), and returns this
        stream.write(data)
        stream.flush()
        return
    write_output_file(write, data, GRAPH)
    click.echo(f"netlab: wrote {write} ({output}, {len(data)} bytes)", err=True)


def _pick_lab(lab_name: str | None, topology: str | None) -> Lab:
    """-t FILE, --lab NAME, the only running lab, or the built-in default."""
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology
    from netlab.realize import lab_name as lab_names, state
    from netlab.workload.terminal import served

    if topology is not None and lab_name is None:
        return resolve(load_topology(topology))  # a file is drawn as it is, running or not
    try:
        name = lab_names.select_lab_name(lab_name, topology, required=False)
    except (EnvironmentNotReady, PermissionError):
        if lab_name is not None:
            raise
        # The state directory is root's; a user can still draw files.
        click.echo("netlab: cannot read the running labs (root only); drawing the built-in default lab "
                   "(use -t FILE, or sudo)", err=True)
        return resolve(load_topology(None))
    if name is None:
        click.echo("netlab: no lab is up; drawing the built-in default lab", err=True)
        return resolve(load_topology(None))
    running = state.running_lab(name)
    return served(running.resolved(), running)  # its Completed/Error pods drawn as no Service's endpoints
