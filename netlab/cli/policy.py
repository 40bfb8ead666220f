"""``netlab policy table``: the NetworkPolicy truth table, evaluated and probed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from netlab.api.args import PROBE_TIMEOUT
from netlab.cli.base import attached, cli, require_root
from netlab.cli.options import Seconds, lab_options
from netlab.cli.output import note, output_option, print_json, said_first
from netlab.errors import UsageError

if TYPE_CHECKING:
    from netlab.model.lab import Lab

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.lab", "netlab.model.lab", "netlab.model.load", "netlab.probe.policytable")


@cli.group("policy")
def policy_group() -> None:
    """NetworkPolicies: what they allow, and whether the kernel agrees."""


@policy_group.command("table")
@lab_options
@output_option("text", "json")
@click.option("--probe/--no-probe", "send", default=True, show_default=True,
              help="Send every flow for real and compare (root, a running lab); --no-probe only evaluates "
                   "the policies (with -t FILE: no root, no lab).")
@click.option("--timeout", type=Seconds(*PROBE_TIMEOUT), default=0.5, show_default=True,
              help="Seconds to wait for each reply.")
def table(lab_name: str | None, topology: str | None, output: str, send: bool, timeout: float) -> None:
    """Print the cyclonus-style matrix of every pod-to-pod flow; exit 1 on any mismatch, or a pod not probed
    because its namespace was deleted (as probe).

    \b
    One matrix per protocol/port the pods serve; rows are sources, columns
    destinations:
      .  allowed by the policies, and reached
      X  denied by the policies, and blocked
      !  allowed but BLOCKED   (a mismatch: the kernel disagrees)
      ?  denied but REACHED    (a mismatch)
      -  the destination does not serve this port (a terminal pod,
         Completed or Error, serves and sends nothing: a note says so),
         or a flow not probed: its source's namespace was deleted (a
         note says so; the count leaves it out: "2/2 probed flows as
         the policies say, 2 not probed")

    What is allowed comes from the policies' meaning alone (netlab's
    evaluator, not the iptables rules it wrote); --probe sends every flow.
    With -t FILE the policies are the file's, as `probe -t FILE` expects
    them (edited, no `up` needed): a flow the lab's older version of the
    file judges otherwise is a mismatch, and a note says so.
    A pod reaching its own address never leaves it (loopback): always allowed.
    A lab with no pods has no table: one line, exit 2 (as `probe` says).

    \b
    Examples:
      sudo netlab policy table --lab netpol     # lab of topologies/netpol-3x3.yaml
      netlab policy table -t lab.yaml --no-probe -o json
    """
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology
    from netlab.probe import policytable

    said: list[str] = []  # the notes of -t FILE said on stderr (the lab runs other policies): -o json's too
    if not send and topology is not None and lab_name is None:
        model = resolve(load_topology(topology))
        no_pods(model)
        result = policytable.evaluate(model)
    else:
        from netlab.api.internals import killed_first
        from netlab.lab.readahead import seen_first
        from netlab.realize.interrupted import seen

        require_root()
        before = seen_first(lab_name, topology)  # who holds the lab as the probes begin: an up's work is no verdict
        lab = attached(lab_name, topology)
        before = before if before is not None and before.lab == lab.name else seen(lab.name)
        state = lab.state()
        # an up or down killed halfway: list's line first, as status and probe say it (-o json: its error)
        served = lab._served(state)  # as up serves it: its Completed/Error pods terminal
        error = killed_first(served, state, said_first, running=send)
        model = served if topology is None else of_file(lab, topology, said)
        no_pods(model)
        with before.reading("policy table"):  # probes an up's work cut short: its work half done, as probe says
            result = policytable.probe(model, timeout=timeout, drift=policy_drift) if send else \
                policytable.evaluate(model)
        meanwhile = before.meanwhile("policy table") if send and (result.mismatches or result.deleted) else None
        if meanwhile is not None:  # flows not as the policies say while an up made the lab: LabBusy, as probe's
            raise meanwhile
        for line in result.deleted if error is None else ():  # a pod's namespace deleted: exec's line, as probe
            said_first(line)
        result.error = error or (result.deleted[0] if result.deleted else None)
    if output == "json":  # a note said on stderr is the document's too (README), first: it was said first
        data = result.to_json()
        print_json({**data, "notes": said + data["notes"]})
    else:
        click.echo(result.render())
    if result.mismatches or result.deleted:  # a pod's flows not checked, its namespace deleted: no pass, as probe
        raise SystemExit(1)


def policy_drift(lab: "Lab") -> list[str] | str:
    """What `status` finds of the nodes' policy rules not as planned (a rule missing, one no one planned, a chain
    in another order: its NETPOL- lines); [] when the lab's state cannot be read. Read with the lab's lock taken
    shared, as `list` judges a lab: no `up` or `down` changes the rules meanwhile (one that tries waits that moment
    out). While another command holds the lab, the rules are not read (its work half done would be named as the
    mismatch's cause): the note that says so instead."""
    from netlab.kernel.live import LiveKernel
    from netlab.lab import status as lab_status
    from netlab.realize.lab_lock import lab_lock_holder, unheld
    from netlab.realize.state import load_state

    with unheld(lab.name) as free:
        if free is False:
            holder = lab_lock_holder(lab.name)
            return (f"the nodes' policy rules were not compared with the plan: {holder or 'another command'} is "
                    f"changing lab {lab.name}; run the table again once it is done")
        state = load_state(lab.name)
        if state is None:
            return []
        kernel = LiveKernel()
        try:
            return [line for line in lab_status.status(state, kernel).drift if "NETPOL" in line]
        finally:
            kernel.close()


def no_pods(model: "Lab") -> None:
    """A table whose rows and columns are the lab's pods has nothing to say of a lab without one: a run that
    checks nothing is no pass (as `probe` says of it), exit 2."""
    if not model.pods:
        raise UsageError(f"nothing to tabulate in lab {model.name}: lab {model.name} has no pods "
                         f"(the table's rows and columns are pods)")


def of_file(lab: Any, topology: str, said: list[str]) -> "Lab":
    """The lab as ``topology`` has it, policies and labels, checked on the running ``lab`` (the same pods at the
    same addresses, as ``probe -t FILE``): the table judges the kernel by the file's policies, edited or not. A
    running lab whose policies judge a flow otherwise (an older version of the file, not `up` since) is said in a
    note on stderr, with the `up` that applies the file, and added to ``said`` (-o json's ``notes``)."""
    from netlab.api.internals import other_policies, same_pods

    running = lab._served()  # as up serves it: its Completed/Error pods terminal
    loaded = lab._loaded_for(topology)
    same_pods(loaded, running, "policy table")
    lines = other_policies(running, loaded, topology, lab.state(), "the table")
    note(lines)
    said += lines
    return loaded.lab.with_terminal(running.terminal)  # the running lab's: the file cannot say which exited
