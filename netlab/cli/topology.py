"""Topology commands: validate and plan, which read a file and never touch the system (no root)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from netlab.cli.base import cli
from netlab.cli.options import TOPOLOGY_FILE, TOPOLOGY_HELP
from netlab.cli.output import output_option, note, print_json, warn
from netlab.errors import EnvironmentNotReady, NetlabError, Problem, TopologyError, display_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab as ModelLab

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.topology", "netlab.model.load", "netlab.plan.build", "netlab.plan.cniadd", "netlab.plan.render")

@cli.command()
@click.option("-t", "--topology", metavar="FILE", type=TOPOLOGY_FILE, help=TOPOLOGY_HELP)
@output_option("text", "json")
def validate(topology: str | None, output: str) -> None:
    """Check a topology file without touching the system (no root needed).

    Every problem is reported as FILE:LINE: field: message (with -o json, a
    document whose `problems` lists {file, line, field, message}, on standard
    output); exit code 2
    when the topology is invalid. What is valid and probably not meant (a
    policy's podSelector that selects no pod) is a note on stderr, located
    the same way: netlab: note: FILE:LINE: field: message. The cross-checks (names, nodes, addresses)
    run once every field is valid; until then a last line after several
    problems says so (-o json: `note`, after one too). A valid
    CNI file whose plugins this machine lacks: exit 3, one line naming them
    and the fix (-o json: the valid document, its `machine_missing` says it).

    \b
    Examples:
      netlab validate -t topologies/services.yaml
      netlab validate -t my-lab.yaml -o json    # problems[]: file, line, field, message
    """
    from netlab.api.topology import load, topology_notes
    from netlab.model.places import Note

    try:
        loaded = load(topology, running=False)
    except TopologyError as exc:
        if output != "json":
            raise
        # The keys of a valid topology's answer; what the problems kept from being checked is one of its notes,
        # and `note` too (README), as before: null when the cross-checks ran (docs/json.md: always written)
        notes = [Note(exc.note)] if exc.note else []  # of no place
        print_json({"valid": False, "lab": _named(topology), "problems": _problems_json(exc.problems), "notes": notes,
                    "note_places": [n.place() for n in notes], "note": exc.note or None})
        raise SystemExit(exc.exit_code) from None
    lab = loaded.lab
    cni_problems, missing = cni_check(loaded)  # the plugins answer VERSION
    if cni_problems:
        if output == "json":
            print_json({"valid": False, "lab": lab.name, "problems": _problems_json(cni_problems), "notes": [],
                        "note_places": [], "note": None})
            raise SystemExit(TopologyError(cni_problems).exit_code)
        raise TopologyError(cni_problems)
    if missing and output != "json":  # the file is valid; this machine lacks the plugins it names (exit 3, as `up`
        raise missing[0]             # and `doctor`)
    notes = topology_notes(loaded)  # valid, probably not meant: said, each at its FILE:LINE: field
    if lab.cni == "conflist":  # a field its plugin here is too old to read (up's warning): its binary says it
        from netlab.cni.fields import unread_notes

        notes += unread_notes(lab, loaded.places)
    if output == "json":  # a valid file's document, and what this machine lacks to run it (exit 3), or null
        print_json({"valid": True, "lab": lab.name, "problems": [], "notes": notes,
                    "note_places": [n.place() for n in notes], "note": None,
                    "nodes": len(lab.nodes),
                    "pods": len(lab.pods), "services": len(lab.services),
                    "added": {"pods": loaded.added_pods, "services": loaded.added_services},
                    "machine_missing": missing[1] if missing else None})
    else:
        click.echo(f"{display_path(topology) if topology is not None else 'built-in default'}: ok "
                   f"(lab {lab.name}: {loaded.counts()})")
    note(notes)  # on stderr with -o json too, as a command's warnings (cli.output.warn), as up says them
    if missing:
        raise SystemExit(missing[0].exit_code)


def _problems_json(problems: list[Problem]) -> list[dict]:
    from netlab.cli.error_doc import problem_json

    return [problem_json(p) for p in problems]


def _named(topology: str | None) -> str | None:
    """The lab an invalid topology names, when its ``name:`` is itself a valid lab name; else None."""
    from netlab.model.load import read_source
    from netlab.model.naming import lab_name_problem

    try:
        src = read_source(topology)
    except (NetlabError, OSError, ValueError):
        return None
    if any(p.field == "name" for p in src.problems):  # written twice: which one is meant is the problem
        return None
    name = src.data.get("name") if isinstance(src.data, dict) else None
    return name if lab_name_problem(name) is None else None


def cni_check(loaded) -> tuple[list[Problem], tuple[EnvironmentNotReady, dict] | None]:
    """network.cni's plugins, asked VERSION: the file's problems, located, and the error of those the machine lacks
    (Debian's plugins where it keeps them: a valid file cannot mend that), which names the fix, with -o json's
    ``machine_missing`` (builtin: nothing to ask)."""
    if loaded.lab.cni == "builtin":
        return [], None
    from netlab.cni.check import split_problems  # runs plugins: loaded only for a CNI lab
    from netlab.cni.conf import bin_dirs
    from netlab.model.load import load_source

    found, machine, fix, plugins = split_problems(loaded.lab)
    if not found and not machine:
        return [], None
    src = load_source(loaded.source) if loaded.source else None
    file = loaded.source or loaded.origin

    def located(problems: list) -> list[Problem]:
        return [Problem(file, src.line_of(loc) if src else None, ".".join(loc), msg) for loc, msg in problems]

    missing = None
    if machine:
        from netlab.realize.cni_path import PATH_ENV

        (loc, _), what = machine[0], "; ".join(msg for _, msg in machine)
        elsewhere = "" if PATH_ENV in fix else \
            f"; plugins elsewhere (kubeadm's or containerd's /opt/cni/bin): {PATH_ENV}=DIR"  # not when it is set
        line = located([(loc, f"{what}: the topology is valid, this machine lacks them; fix: {fix}{elsewhere}")])[0]
        missing = (EnvironmentNotReady(str(line)), {"plugins": plugins, "folders": bin_dirs(loaded.lab),
                                                    "fix": fix, "message": str(line)})
    return located(found), missing


@cli.command()
@click.option("-t", "--topology", metavar="FILE", type=TOPOLOGY_FILE, help=TOPOLOGY_HELP)
@output_option("text", "json")
def plan(topology: str | None, output: str) -> None:
    """Print what `up` would create, as ip(8)-like commands (a dry run, no root needed).

    The plan is deterministic: the same topology gives the same namespaces,
    names, addresses and MACs every time, but for a lab of that name that is
    up: its pods and Services keep the addresses they hold, as `up` keeps
    them (read as root; the state is root's). `-o json` lists every object.
    With network.cni reference or a conflist the plugins make the pods'
    eth0, address and routes: the plan ends with each pod's CNI ADD step
    (the networks and plugins, CNI_NETNS, CNI_IFNAME, CNI_ARGS, what they
    are expected to make); `-o json` lists them under cni_add. Last, the
    qdiscs of impairments' rates and delays, as tc commands (their loss is a
    rule of the plan); `-o json` lists them under qdiscs.
    For a lab of that name that is up, a warning for each pod `up` would
    make anew, in up's words (`-o json`: warnings).

    \b
    Examples:
      netlab plan                                  # the built-in lab 'demo'
      netlab plan -t topologies/services.yaml -o json
      netlab plan -t examples/cni/bash-bridge/topology.yaml    # with its CNI ADD steps
    """
    from netlab.api.topology import load
    from netlab.plan.build import build_plan
    from netlab.plan.cniadd import add_steps
    from netlab.plan.impair import qdisc_steps
    from netlab.plan.render import plan_json, render_commands

    lab = load(topology).lab
    p, cni, qdiscs = build_plan(lab), add_steps(lab, _plugin_dirs(lab)), qdisc_steps(lab)
    ahead = _up_ahead(lab)
    warn(ahead)
    if output == "json":
        print_json({**plan_json(p, cni, qdiscs), "warnings": ahead})
    else:
        click.echo(render_commands(p, cni, qdiscs), nl=False)


def _plugin_dirs(lab: "ModelLab") -> list[str]:
    """The folders of the machine's CNI plugins `up` would run (CNI_PATH after a conflist's binDir): those the
    running lab of that name was made with (its state's record, read as root), else the setting (NETLAB_CNI_PATH,
    else Debian's /usr/lib/cni), as realize.cni_path.choose picks them; none for a builtin lab."""
    if lab.cni == "builtin":
        return []
    from netlab.realize import cni_path
    from netlab.realize.state import load_state

    recorded: list[str] = []
    if lab.held_before is not None:  # up, and its state readable here
        try:
            state = load_state(lab.name)
            recorded = cni_path.recorded(state) if state is not None else []
        except (NetlabError, OSError):
            pass
    return recorded or cni_path.machine_dirs()


def _up_ahead(lab: "ModelLab") -> list[str]:
    """For a lab of that name that is up (its state read: root's), what `up` does to it that the plan's objects
    do not show, in up's words (realize.attachments.up_ahead): the pods it makes anew, the addresses another's
    ip: takes. Nothing for a lab that is not up, or whose state cannot be read here."""
    from netlab.realize.attachments import up_ahead
    from netlab.realize.state import load_state

    if lab.held_before is None:  # not up, or not readable here: the plan is a fresh lab's
        return []
    try:
        return up_ahead(lab, load_state(lab.name))
    except (NetlabError, OSError):
        return []
