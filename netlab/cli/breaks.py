"""``netlab break`` and ``netlab quiz``: learn by breaking a lab on purpose."""

from __future__ import annotations

import random

import click

from netlab import api
from netlab.breaks import catalogue
from netlab.cli.base import attached, cli, require_packets, require_processes, require_root
from netlab.cli.options import lab_options
from netlab.cli.output import output_option, print_json, warn
from netlab.errors import LabBusy, UsageError, netlab_command, status_way

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.lab", "netlab.breaks.run", "netlab.realize.state")


def _list(output: str) -> None:
    if output == "json":
        print_json([s.to_json() for s in catalogue.SCENARIOS])
        return
    width = max(len(s.name) for s in catalogue.SCENARIOS)
    for s in catalogue.SCENARIOS:  # what it needs: its catalogue needs, as -o json gives them and break checks
        example = f": {s.example}" if s.example else ""
        needs = f"  [needs {s.needs_words()}{example}]" if s.needs else ""
        click.echo(f"{s.name:<{width}}  {s.breaks}{needs}")


def _complete_scenarios(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [s.name for s in catalogue.SCENARIOS if s.name.startswith(incomplete)]


def _faults_before(name: str, reader: str = "break", left_out: list[str] | None = None) -> int:
    """How many differences from its plan lab ``name`` has that `up` repairs (netlab.api.internals.faults_before);
    ``reader``: the command that asks, as its lines name it; ``left_out``: the line saying its containers were not
    looked at (root without CAP_SYS_PTRACE)."""
    from netlab.api.internals import faults_before

    return faults_before(attached(name, None), reader, left_out)


def _answer(name: str, what: str) -> str:
    """The quiz's answer as the user types it: `sudo netlab quiz answer --lab L SCENARIO` (or --reveal), its state
    folder named (errors.netlab_command)."""
    return netlab_command(f"quiz answer --lab {name} {what}")


@cli.command("break")
@click.argument("scenario", required=False, shell_complete=_complete_scenarios)
@lab_options
@click.option("--target", metavar="POD|NODE", help="The node or pod to break (default: the scenario's choice).")
@click.option("--list", "list_", is_flag=True, help="List the scenarios, one a line: name, then what it breaks.")
@output_option("text", "json")
def break_cmd(scenario: str | None, lab_name: str | None, topology: str | None, target: str | None, list_: bool,
              output: str) -> None:
    """Break a running lab on purpose, the way real clusters break; `netlab up` repairs it.

    Each SCENARIO is a real kernel change (netlink, a sysctl, an
    iptables-restore --noflush payload, a stopped pod) that someone once
    spent a day on. Investigate with `netlab probe`, `netlab trace`,
    `netlab inspect`, `netlab status` and plain `ip`, then repair with
    `sudo netlab up` (it puts back everything the plan says).

    \b
    Examples:
      netlab break --list                                # the catalogue
      sudo netlab break vxlan-arp-missing                # on the only lab that is up
      sudo netlab probe                                  # which flows fail (exit 1)
      sudo netlab trace fedora-1 fedora-2                # which hop, and why
      sudo netlab up                                     # repaired
      sudo netlab break bridge-port-down --target fedora-3

    A scenario about Services needs a lab with Services
    (topologies/services.yaml); bridge-nf-call-off also breaks a lab whose
    NetworkPolicies keep two pods of one node apart (topologies/netpol-3x3.yaml).
    On a lab where it would change nothing a scenario is refused with exit 2.
    On a lab that is not as planned already (`netlab status`) it breaks, and
    warns: the symptoms are not this fault's alone (where the kernel cannot
    make it on top of the other, as a port state on a port set down, it is
    refused with exit 2). On a lab that `up --watch` keeps it breaks, and
    warns: the watcher repairs it within a second. The same scenario again
    on the same target (not repaired since) changes nothing and says so.
    endpoint-pod-down and dns-pod-stopped stop a pod's containers: they need
    CAP_SYS_PTRACE (root without it is refused, exit 3, as `up` is); the
    others change the kernel's objects alone, and run without it.
    Practise without knowing the answer: `netlab quiz`.
    """
    if list_:
        if scenario is not None or target is not None:  # it would be ignored: the catalogue is the whole list
            raise UsageError("--list lists every scenario: give it no SCENARIO nor --target")
        _list(output)
        return
    if scenario is None:
        raise UsageError("name a scenario (netlab break --list shows them) or give --list")
    s = catalogue.scenario(scenario)
    if s is None:  # a usage error before root is needed
        raise UsageError(catalogue.unknown(scenario))
    require_root()
    if s.processes:  # it stops a pod's containers: the others change the kernel's objects alone
        require_processes()
    from netlab.breaks.run import break_lab, broken_already, warn_before
    from netlab.workload.reconfigure import repair_command

    name = api.selected_name(lab_name, topology)
    assert name is not None  # required: a usage error when no lab is up
    from netlab.breaks.quiz import watched_warning

    watched = watched_warning(name)  # `up --watch` keeps the lab: it repairs the fault at once (quiz refuses)
    left_out: list[str] = []  # the containers, when root may not read them (no CAP_SYS_PTRACE)
    before = _faults_before(name, left_out=left_out)
    result = break_lab(name, scenario, target)
    if watched is not None:
        result.warnings.append(watched)
    if warn_before(before, result):  # a fault on top of another is allowed (a lesson may want two)
        result.warnings.append(broken_already(name, before, status_way(name, api=False), repair_command(name)))
    result.warnings += left_out
    warn(result.warnings)
    if output == "json":
        print_json(result.to_json())
        return
    if result.already:  # the same break again: it is there, nothing to do (exit 0, as `ip link set up` twice)
        click.echo(f"lab {result.lab}: {s.name} is broken already on {s.target} {result.target} (not repaired "
                   f"since): nothing changed")
    elif result.in_place:  # half repaired by hand since the last break: only the rest was done
        click.echo(f"lab {result.lab}: broke {s.name} on {s.target} {result.target} again, in part: {s.breaks}")
    else:
        click.echo(f"lab {result.lab}: broke {s.name} on {s.target} {result.target}: {s.breaks}")
    for line in result.done:
        click.echo(f"  {'added: ' if result.in_place else ''}{line}")
    for line in result.in_place:
        click.echo(f"  in place already: {line}")
    click.echo(f"expect: {s.symptom}")
    # Each command names the lab: typed as printed it is this lab's, whatever other lab is up.
    named = f"--lab {result.lab}"
    shows = s.trace.format(target=result.target) if s.trace else "SRC DST"  # a flow a fresh trace misses: named
    click.echo(f"investigate: {netlab_command('probe', named, *s.probe)}; {netlab_command('trace', named, shows)}; "
               f"repair: {repair_command(result.lab)}")


@cli.group("quiz", invoke_without_command=True)
@lab_options
@click.option("--seed", type=int, default=None, help="Seed of the random pick (the same seed, the same fault).")
@click.pass_context
def quiz(ctx: click.Context, lab_name: str | None, topology: str | None, seed: int | None) -> None:
    """Break the lab with a fault picked at random, without saying which; then find it.

    \b
    Investigate with probe, trace, inspect, status and plain `ip`, then answer:
      sudo netlab quiz --seed 7          # picks and breaks; says nothing more
      sudo netlab probe                  # what fails?
      sudo netlab trace fedora-1 fedora-2
      sudo netlab quiz answer pod-cidr-route-missing   # seed 7's fault
      sudo netlab quiz answer --reveal   # give up: the answer, then the repair

    An answer is judged by the scenario it names against the quiz's. A right
    one shows the fault, the trace that proves it (or, on a lab repaired
    before the answer, that the fault is no longer there; on one changed by
    hand since, that its trace no longer shows it), and repairs the lab
    (`netlab up`). A wrong one (exit 1) says it is wrong and not what the fault is: the
    lab stays broken and the quiz open for another try; but on a lab found
    as planned before the answer (repaired, or healed by itself) there is
    nothing left to find, so a wrong one is told the answer too, and the lab
    is repaired and the quiz closed. `quiz answer --reveal` gives up: the
    answer, its trace, then the repair. Only scenarios that change something on
    this lab are picked; `netlab break --list` names them all. A lab that is
    not as planned already (`netlab status`) is refused with exit 2: repair it
    first. A lab that `up --watch` keeps is refused with exit 3 (it would
    repair the fault at once): stop the watcher first. A machine without the tools the answer's trace runs (conntrack,
    iptables-save) is refused with exit 3, nothing broken.
    """
    if ctx.invoked_subcommand is not None:  # its --lab / -t reach the subcommand (options.from_group)
        if seed is not None:
            raise UsageError(f"--seed picks a new quiz's fault; `quiz {ctx.invoked_subcommand}` takes none")
        return
    require_root()
    require_processes()
    require_packets()  # its answer is a trace
    from netlab.breaks import quiz as qz
    from netlab.breaks.run import break_lab

    name = api.selected_name(lab_name, topology)
    assert name is not None
    if qz.load(name) is not None:
        raise UsageError(f"lab {name} has a quiz open; answer it first: {_answer(name, 'SCENARIO')} "
                         f"(or give up: {_answer(name, '--reveal')})")
    from netlab.breaks.run import differences
    from netlab.workload.reconfigure import repair_command
    from netlab.realize.state import running_lab
    from netlab.workload.terminal import served

    if (keeper := qz.watcher(name)) is not None:  # it would repair the fault at once: the quiz would be useless
        raise LabBusy(qz.watched_refusal(name, keeper))
    if before := _faults_before(name, "quiz"):  # the answer's trace would show whichever fault it meets first
        raise UsageError(f"lab {name} is not as planned ({differences(before)}; `{status_way(name, api=False)}` "
                         f"lists them): a quiz breaks a clean lab; repair it first: {repair_command(name)}")

    state = running_lab(name)
    lab = served(state.resolved(), state)  # a Completed/Error pod is no endpoint the quiz may pick
    from netlab import doctor  # the answer is a trace: without the tools it runs, the lab would stay broken

    doctor.require_tools(lab, doctor.TRACE_TOOLS, f"lab {name}: nothing broken, as the quiz's answer (a trace) "
                         "could not be checked")
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    s = qz.pick(lab, seed)
    result = break_lab(name, s.name, holder=qz.LOCK_HOLDER)
    qz.record(name, s.name, result.target, seed)
    click.echo(f"lab {name} is broken (quiz seed {seed}). Find what is wrong: {netlab_command(f'probe --lab {name}')}, "
               f"{netlab_command(f'trace --lab {name}')}, {netlab_command(f'inspect --lab {name}')}, ip ...; then: "
               f"{_answer(name, 'SCENARIO')} (netlab break --list)")


def _met(traced: dict) -> str:
    """What a trace (its JSON) that does not show the quiz's fault met instead, in a few words."""
    if traced.get("ok"):
        return "delivers the packet and its reply"
    lost = traced.get("lost") or traced.get("reply_lost")
    if lost and lost.get("netns"):
        what = "its reply" if traced.get("lost") is None else "the packet"
        return f"loses {what} in {lost['netns']} for another reason"
    return "fails for another reason"


def _undone(scenario: str, lab, target, state) -> str:
    """How much of the quiz's change is still in the kernel (breaks.run.still_to_do), for an answer whose trace no
    longer shows the fault."""
    from netlab.breaks.run import steps_of, still_to_do

    steps = steps_of(scenario, lab, target)
    todo = still_to_do(steps, state)
    if not todo:  # the packet went around it: a route of the student's beside the deleted one, say
        return "the quiz's change is still in the kernel, but the packet went around it (by a change made since)"
    if all(any(st is t for t in todo) for st in steps):
        return "the quiz's change is no longer in the kernel (undone since, by hand): what differs is something else"
    return "the quiz's change was undone in part since (by hand), and what is left of it is not on the packet's way"


@quiz.command("answer")
@click.argument("scenario", required=False, shell_complete=_complete_scenarios)
@lab_options
@click.option("--reveal", is_flag=True, help="Show the answer and repair the lab, whatever SCENARIO says (give up).")
def quiz_answer(scenario: str | None, lab_name: str | None, topology: str | None, reveal: bool) -> None:
    """Answer the open quiz, judged by the scenario named against the quiz's. Right: the fault, the trace that
    proves it (when it still shows it), then the repair. Wrong (exit 1): wrong, not what it is; the lab stays
    broken and the quiz open, to look again and answer again (on a lab found repaired before the answer: the
    answer too, then the repair). --reveal gives up: the answer, its trace and the repair (with SCENARIO: judged
    first, as before)."""
    if scenario is None and not reveal:
        raise UsageError("name the scenario you found, or give up with --reveal (the answer, then the repair)")
    if scenario is not None and catalogue.scenario(scenario) is None:  # a typo: said first, with the closest name
        raise UsageError(catalogue.unknown(scenario))
    require_root()
    require_processes()
    require_packets()  # its answer is a trace
    from netlab.breaks import quiz as qz, symptoms
    from netlab.workload.reconfigure import repair_up
    from netlab.realize.state import running_lab
    from netlab.trace.render import render_text
    from netlab.workload.terminal import served
    from netlab.trace.run import run

    name = api.selected_name(lab_name, topology)
    assert name is not None
    open_quiz = qz.load(name)
    if open_quiz is None:
        raise UsageError(f"lab {name} has no open quiz; start one with: {netlab_command(f'quiz --lab {name}')}")
    state = running_lab(name)
    lab = served(state.resolved(), state)  # as the quiz picked its target
    s = catalogue.scenario(open_quiz["scenario"])
    assert s is not None
    right = scenario == s.name
    target = catalogue.resolve_target(s, lab, open_quiz["target"])
    check = symptoms.trace_check(s, lab, target)
    fault = qz.fault(s, lab, target)  # this lab's commands, as break printed them
    flags = (f" --proto {check.proto}" if check.proto else "") + (f" --port {check.port}" if check.port else "") \
        + (f" --size {check.size}" if check.size else "") + (f" --sport {check.sport}" if check.sport else "")
    # Repaired before the answer (`netlab up`, or by hand): the lab is as planned, so any trace passes; a passing
    # trace is no proof of the fault, so none is shown.
    before = _faults_before(name, "quiz")
    gone = not before
    if not right and not reveal and not gone:  # another try: nothing revealed, nothing repaired
        click.echo(f"wrong: it is not {scenario}; lab {name} stays broken and its quiz open: look again, then answer "
                   f"again ({_answer(name, 'SCENARIO')}), or see the answer and repair the lab: "
                   f"{_answer(name, '--reveal')}")
        raise SystemExit(1)
    result = None if gone else run(lab, check.src, check.dst, proto=check.proto, port=check.port, size=check.size,
                                   sport=check.sport, repair=lambda: repair_up(state))
    # A trace that does not show the fault (the lab changed by hand since the quiz: a route put back with a metric
    # of its own) is no proof of it, and not shown as one; how much of the quiz's change the kernel still holds is
    # read before the repair. The verdict is the name's against the quiz's fault, as always.
    traced = result.to_json(repair="") if result is not None else None
    undone = _undone(s.name, lab, target, state) if traced is not None and not symptoms.shows(check, traced) else None
    # Repaired before a word is written: a reader that stops reading (`| head -1`) must not leave the lab broken
    # and the quiz open.
    repaired = api.Lab.up_loaded(api.load_running(name))  # the topology it was broken from (a dict's too)
    qz.close(name)
    fixed = repaired.last_up.fixed if repaired.last_up else []
    what = "object or container" if len(fixed) == 1 else "objects or containers"
    verdict = f"it was {s.name}" if scenario is None else "right" if right else f"wrong: it was {s.name}"
    click.echo(f"{verdict} ({s.breaks}, on {open_quiz['target']})")
    click.echo("  the fault:")
    for line in fault:
        click.echo(f"    {line}")
    click.echo(f"  the lesson: {s.lesson}")
    trace = netlab_command(f"trace --lab {name} {check.src} {check.dst}{flags}")
    see = f"{netlab_command(f'break --lab {name} {s.name} --target', open_quiz['target'])}, then {trace}"
    if result is None:
        click.echo(f"the fault is no longer there: lab {name} was as planned before this answer ({qz.gone_why(s.name)}"
                   f"), so no trace shows it; to see it: {see}")
    elif undone is not None and traced is not None:
        from netlab.breaks.run import differences

        click.echo(f"the trace no longer shows it: lab {name} was not as planned before this answer "
                   f"({differences(before)}; `{status_way(name, api=False)}` lists them), yet {trace} {_met(traced)}: "
                   f"{undone}; to see it: {see}")
    else:
        click.echo(f"the trace that shows it: {trace}")
        click.echo(render_text(result), nl=False)
    click.echo(f"repaired: lab {name} is up again ({len(fixed)} {what} put back)")
    if not right and scenario is not None:  # a give-up (--reveal alone) answered nothing wrong
        raise SystemExit(1)
