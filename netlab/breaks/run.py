"""Carry out a break: resolve the scenario and target on the running lab, then make the change.

The change goes through the kernel door (``LiveKernel.apply``: netlink, the
sysctl writer, ``iptables-restore --noflush``), under the lab's lock so it
never meets a running ``up``. Nothing is recorded in the lab's state: the
plan still says how the lab should be, which is how ``status`` sees the
drift and ``up`` repairs it.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace

from netlab.breaks import catalogue
from netlab.breaks.changes import CHANGES, Action, Step, command_of
from netlab.errors import ApplyFailed, UsageError, status_way
from netlab.kernel.base import GONE, KernelError, Op, TableText
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.plan.build import build_plan
from netlab.workload.reconfigure import repair_command
from netlab.realize.state import LabState, running_lab, still_up
from netlab.workload.terminal import served
from netlab.realize.lab_lock import LabLock


@dataclass
class BreakResult:
    lab: str
    scenario: str
    target: str
    done: list[str] = field(default_factory=list)  # each change, in words
    warnings: list[str] = field(default_factory=list)  # the lab was not as planned before: broken_already's line
    already: bool = False  # the scenario's change was in place already on this target: nothing was changed
    # Half in place (a step put back by hand since the last break): the steps that were in place already, in
    # words; ``done`` then holds only the steps this break added.
    in_place: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"lab": self.lab, "scenario": self.scenario, "target": self.target, "changes": self.done,
                "already": self.already, "in_place": self.in_place, "warnings": self.warnings}


def warn_before(before: int, result: BreakResult) -> bool:
    """Whether the lab's ``before`` differences from its plan are another fault's (broken_already's warning):
    not when the break was in place (all its own), nor when there are no more of them than the steps of the
    break that were in place (a half-repaired break's own differences)."""
    return before > len(result.in_place) and not result.already


def differences(n: int) -> str:
    return f"{n} difference{'' if n == 1 else 's'} from its plan"


def broken_already(lab: str, before: int, status: str, repair: str) -> str:
    """The warning of a break on lab ``lab`` that had ``before`` differences from its plan that `up` repairs (a
    fault there already, netlab break's or one made by hand): a fault on top of another is allowed (a lesson may
    want two), but what probe and trace show is then both's. ``status`` and ``repair``: how the caller lists
    and repairs them (the CLI's commands, or the library's calls)."""
    return (f"lab {lab} was broken already ({differences(before)} before this break): what probe and trace show "
            f"is not this fault's alone; `{status}` lists them, `{repair}` repairs them all")


def check(name: str, lab: Lab, target: str | None) -> tuple[catalogue.Scenario, NodeInfo | PodInfo]:
    """The scenario and its target on this lab, or a UsageError (exit 2) saying why not."""
    s = catalogue.scenario(name)
    if s is None:
        raise UsageError(catalogue.unknown(name))
    reason = catalogue.why_not(s, lab)
    if reason:
        raise UsageError(reason)
    try:
        return s, catalogue.resolve_target(s, lab, target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def steps_of(name: str, lab: Lab, target: NodeInfo | PodInfo) -> list[Step]:
    return CHANGES[name](lab, build_plan(lab), target)


def break_lab(lab_name: str, name: str, target: str | None = None, wait: float = 60.0,
              holder: str | None = None) -> BreakResult:
    """Make the scenario's kernel change in the running lab ``lab_name``. ``holder``: the name the lab's lock
    holds while it does (others' waits and ``up --watch``'s line say it); by default "netlab break SCENARIO",
    and a quiz's is "netlab quiz", which names no scenario: the lock file's text is the quiz's answer."""
    state = running_lab(lab_name)
    lab = served(state.resolved(), state)  # a Completed/Error pod is no endpoint to break (workload/terminal.py)
    s, tgt = check(name, lab, target)  # refused at once, without waiting for the lab
    with LabLock(lab.name, holder or f"netlab break {s.name}", wait=wait) as lock:
        now = still_up(lab.name, state.run_id, "this break", lock.waited_for)  # read before: a down may have come
        if now != state:  # changed while this break waited (an impair, an `up -t FILE`): broken as it is now
            state = now
            lab = served(state.resolved(), state)
            s, tgt = check(name, lab, target)
        steps = steps_of(s.name, lab, tgt)
        result = BreakResult(lab=lab.name, scenario=s.name, target=tgt.name)
        todo, why = _todo(steps, state)
        if why:  # another fault in the way: the kernel cannot make this one on top of it
            raise UsageError(f"{s.name} cannot break {s.target} {tgt.name}: {why} (another fault: "
                             f"`{status_way(lab.name, api=False)}` names it, `{repair_command(lab.name)}` repairs it)")
        if not todo:  # broken this way already (not repaired since): the same again changes nothing
            result.already = True
            return result
        result.in_place = in_place_words(steps, todo)
        _apply(todo, lab, state, result)
    return result


def in_place_words(steps: list[Step], todo: list[Step]) -> list[str]:
    """The steps (or a restore's lines) of ``steps`` that ``todo`` leaves out, in words: in place already."""
    out: list[str] = []
    for st in steps:
        if any(st is t for t in todo):
            continue
        cut = next((t for t in todo if isinstance(st, Op) and isinstance(t, Op) and isinstance(st.res, TableText)
                    and isinstance(t.res, TableText) and (t.netns, t.res.table) == (st.netns, st.res.table)), None)
        if cut is None:
            out.append(command_of(st))
            continue
        assert isinstance(st, Op) and isinstance(st.res, TableText) and isinstance(cut.res, TableText)
        # The restore still to do is a new object (already._rules_left): its lines left out are in place. When
        # it keeps them all (a lab as planned), nothing of it is (an empty command was "in place already").
        gone = [line for line in st.res.text.splitlines() if line not in cut.res.text.splitlines()]
        words = command_of(replace(st, res=replace(st.res, text="\n".join(gone) + "\n")))
        if words:
            out.append(words)
    return out


def in_place(steps: list[Step], state: LabState) -> bool:
    """Every change of ``steps`` is in the kernel already (netlab.breaks.already; the actions read here)."""
    return not still_to_do(steps, state)


def still_to_do(steps: list[Step], state: LabState) -> list[Step]:
    """The steps not in the kernel yet, in their order (netlab.breaks.already; the actions read here): all of
    them on a lab as planned, none when the break is in place, the rest when a user put back some by hand."""
    return _todo(steps, state)[0]


def _todo(steps: list[Step], state: LabState) -> tuple[list[Step], str | None]:
    """still_to_do, and why the kernel cannot make them on top of what it holds (already.refusal; None: it can)."""
    from netlab.breaks import already
    from netlab.kernel.live import LiveKernel

    ops = [s for s in steps if isinstance(s, Op)]
    todo: list[Step] = list(ops)
    why = None
    if ops:
        kernel = LiveKernel()
        try:
            seen = already.read(kernel, ops)
            todo, why = list(already.still_to_do(ops, seen)), already.refusal(ops, seen)
        except KernelError:  # unreadable: the apply says what is wrong
            todo = list(ops)
        finally:
            kernel.close()
    return todo + [a for a in steps if isinstance(a, Action) and not _action_in_place(a, state)], why


def _action_in_place(action: Action, state: LabState) -> bool:
    if action.kind == "stop-pod":  # the pod's containers are all stopped
        from netlab.workload.lifecycle import running

        pod = running(state, [action.netns])["pods"].get(action.args[0])
        return pod is not None and not pod["running"]
    if action.kind == "conntrack-stale":  # the entry is there, DNATed to the gone endpoint
        import socket

        from netlab.kernel import conntrack

        src, sport, cip, port, gone = action.args
        want = {"src": src, "sport": str(sport), "dst": cip, "dport": str(port)}
        try:
            entries = conntrack.tuples(action.netns, socket.IPPROTO_UDP)
        except OSError:
            return False
        return any(orig == want and reply.get("src") == gone for orig, reply in entries)
    return False


def _apply(steps: list[Step], lab: Lab, state: LabState, result: BreakResult) -> None:
    from netlab.kernel.live import LiveKernel

    ops = [s for s in steps if isinstance(s, Op)]
    kernel = LiveKernel()
    try:
        if ops:
            kernel.apply(ops)
            result.done += [command_of(op) for op in ops]
    except KernelError as exc:
        if exc.code in GONE or exc.code == errno.EEXIST:  # the object is not as the plan says: broken already?
            raise ApplyFailed(f"break {result.scenario}: {exc}: the lab is not as planned (broken already?); "
                              f"`{status_way(result.lab, api=False)}` shows how, "
                              f"`{repair_command(result.lab)}` repairs it") from None
        raise ApplyFailed(f"break {result.scenario}: {exc}; `{repair_command(result.lab)}` puts back what was done"
                          ) from None
    finally:
        kernel.close()
    for action in (s for s in steps if isinstance(s, Action)):
        result.done += _act(action, lab, state)


def _act(action: Action, lab: Lab, state: LabState) -> list[str]:
    if action.kind == "stop-pod":
        from netlab.workload.pod_teardown import stop_pod

        stopped = stop_pod(state, lab.pod(action.args[0]))
        if not stopped:
            raise ApplyFailed(f"pod {action.args[0]} runs no container to stop (is it down already? "
                              f"`{status_way(lab.name, api=False)}`)")
        return [f"stopped container {c}" for c in stopped]
    if action.kind == "conntrack-stale":
        import socket

        from netlab.kernel import conntrack

        src, sport, cip, port, gone = action.args
        try:
            # The client's live flow from that port (a query in the last 120 s: UDP's assured timeout) holds the
            # tuple: the insert (ctnetlink, as conntrack -I) would fail EEXIST. The fault is that flow steered to a gone
            # endpoint, so its entry is deleted (by its exact tuple), then the stale one put in its place.
            conntrack.delete_flows(action.netns, [conntrack.Flow(socket.IPPROTO_UDP, src, sport, cip, port)])
            conntrack.insert_dnat(action.netns, "udp", src, sport, cip, port, gone, port)
        except OSError as exc:
            raise ApplyFailed(f"break conntrack-stale-entry: {exc}") from None
        return [action.describe()]
    raise ValueError(action.kind)
