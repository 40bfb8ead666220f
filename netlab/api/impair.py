"""``netlab impair NAME:IFACE``: change one interface's impairment of a running lab.

A run-time impairment is an edit of the lab's desired state, like ``kubectl
edit`` next to ``kubectl apply -f``: the lab's saved topology gets the new
``impair:`` entry (or loses it, with ``--clear``), and the lab is converged
to it by the same ``up`` that applies a file (the loss rule is a plan
resource, the qdiscs are the impairment feature's). So ``status`` compares
the kernel with it and does not call it drift; ``status -t FILE`` shows it as
a difference from the file, and ``up -t FILE`` (or ``up --watch`` seeing the
file change) puts the file's impairments back. The lab's state remembers
which interfaces were set at run time and when (``extra.impair.runtime``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

from pydantic import ValidationError

from netlab.api import lifecycle, results as R
from netlab.errors import ApplyFailed, NetlabError, UsageError
from netlab.impair import lifecycle as feature
from netlab.impair.show import Shown, read as read_impairments
from netlab.lab.up import UpResult
from netlab.model import naming
from netlab.model.impair import POD_INTERFACES, Impairment, describe, node_interfaces
from netlab.model.lab import Lab, resolve
from netlab.model.topology import Topology
from netlab.plan.cniadd import lab_bridge
from netlab.realize.interrupted import stalled, taken_down
from netlab.realize.state import LabState, load_state, running_lab, still_up
from netlab.realize.lab_lock import LabLock


@dataclass
class Impaired:
    """What :func:`impair` did, with the up it ran (:func:`result`: as the CLI's JSON and Lab.impair give it)."""

    lab: str
    target: str  # "<name>:<iface>"
    netns: str
    before: str  # "rate 10mbit loss 1%" or "none"
    after: str
    up: UpResult


def parse_target(text: str) -> tuple[str, str]:
    name, sep, iface = text.partition(":")
    if not sep or not name or not iface:
        raise UsageError(f"{text[:60]!r}: write the target as NAME:IFACE, such as fedora-1:eth0 or minikube:cni0")
    return name, iface


def cli_flag(name: str) -> str:
    return f"--{name}"


def options(rate: str | None, delay: str | None, jitter: str | None, loss: str | None, clear: bool,
            flag: Callable[[str], str] = cli_flag, show: str | None = None) -> Impairment | None:
    """What to set (None: ``clear``), checked like the topology's ``impair:``, before the lab is read: a UsageError
    naming the argument as ``flag`` spells it (the CLI's ``--rate``, the library's ``rate``); ``show``: what
    shows the interface's impairment instead (the CLI's is the same command with no option)."""
    if clear:
        if any(v is not None for v in (rate, delay, jitter, loss)):
            raise UsageError(f"{flag('clear')} takes no {flag('rate')}, {flag('delay')}, {flag('jitter')} "
                             f"or {flag('loss')}")
        return None
    try:
        spec = Impairment.model_validate({"rate": rate, "delay": delay, "jitter": jitter, "loss": loss})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{flag(str(err['loc'][0]))}: {msg}") from None
    if not any(spec.spec().values()):
        raise UsageError(f"say what to do: {flag('rate')}, {flag('delay')}, {flag('jitter')}, {flag('loss')}, "
                         f"or {flag('clear')}" + (f" ({show} shows what it has)" if show else ""))
    if spec.jitter and not spec.delay:
        raise UsageError(f"{flag('jitter')} varies a delay: give {flag('delay')} too")
    idle = spec.no_effect()
    if idle:
        raise UsageError(f"{flag(idle[0][0])}: {idle[0][1]}")
    return spec


def impair(lab_name: str, name: str, iface: str, spec: Impairment | None, wait: float = 60.0) -> Impaired:
    """Set (or with ``spec`` None clear) the impairment of ``name``'s ``iface`` and converge the lab to it;
    ``spec`` as :func:`options` checked it.

    The edit is made on the lab's state as it is once impair holds the lab's lock: read before the wait, it
    would be the lab as it was then, and its up would undo what the lock's holder changed meanwhile (another
    impair's rate, an ``up -t FILE``'s pod moved). The state read first only refuses a target the lab lacks
    at once, without waiting."""
    read = running(lab_name)
    _edited(read, name, iface, spec)
    with LabLock(lab_name, "netlab impair", wait=wait) as lock:
        state = still_up(lab_name, read.run_id, "this impair", lock.waited_for)  # a down may have come first
        if (line := stalled(state)) is not None:  # an up or down killed halfway meanwhile: list's line
            raise UsageError(line)
        topo = state.model()
        lab, before = _edited(state, name, iface, spec)
        netns = f"{lab_name}-{name}"
        key = f"{netns}:{iface}"
        # Write-ahead: the lab's state says the interface is set at run time before the up that sets it, so that
        # up words a qdisc it takes off for --clear as cleared (impair.lifecycle), not as left out of a file.
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        want = spec.spec() if spec is not None else {}
        file = _file_spec(feature.runtime(state).get(key), state, name, iface)
        had = _runtime_entry(state, key, {"spec": want, "at": now, **({"file": file} if file is not None else {})})
        try:
            done = _stopped_said(lifecycle.up_held(lab, source=state.source))
            # A qdisc change the kernel refuses leaves the interface as it was (netlab.kernel.tc) and is a
            # warning of up's; here it is the command's whole purpose: the lab's topology goes back to what it
            # was, and it fails.
            refused = done.refused.get(key)
            if refused is not None:
                lifecycle.up_held(resolve(topo), source=state.source)
                raise ApplyFailed(f"{refused}; rolled back: lab {lab_name} is impaired as it was")
            if file is not None and _set(want) == _set(file):  # as the file has it again: no run-time edit left
                after = load_state(lab_name)  # as the up saved it
                if after is not None:
                    _runtime_entry(after, key, None)
        except BaseException:
            try:
                after = load_state(lab_name)  # as the up left it (rolled back)
                if after is not None:  # the interface is as it was, and so its record
                    _runtime_entry(after, key, had)
            except NetlabError:
                pass  # no record to put back; what stopped the impair is said
            raise
    return Impaired(lab=lab_name, target=f"{name}:{iface}", netns=netns, before=before,
                    after=describe(spec.spec()) if spec is not None else "none", up=done)


def _stopped_said(done: UpResult) -> UpResult:
    """``done`` with the processes not the lab's that its stops stopped (a pod it made anew) said as its warnings,
    a line each after its own (kill.other_line): impair's result names no stopped processes."""
    from netlab.kernel.kill import other_line

    done.warnings += [other_line(p) for p in done.stopped]
    done.stopped = []
    return done


def _edited(state: LabState, name: str, iface: str, spec: Impairment | None) -> tuple[Lab, str]:
    """The lab of ``state``'s topology with ``name``'s ``iface`` impaired as ``spec`` says (None: cleared), and
    what it had before in words; a UsageError when the lab has no such pod or node or interface."""
    topo = state.model()
    data = topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    pods = {p["name"]: p for p in data.get("pods", [])}
    nodes = {n["name"]: n for n in data.get("nodes", [])}
    allowed: tuple[str, ...]
    lab: Lab | None = None
    bridge: str | None = None
    if name in pods:
        entry, allowed = pods[name], POD_INTERFACES
    elif name in nodes:
        lab = state.resolved()
        bridge = lab_bridge(lab)  # netlab's cni0, or the one a user's conflist's bridge plugin makes
        entry, allowed = nodes[name], node_interfaces(topo.network.mode, topo.network.vxlan.vni, bridge)
    else:
        raise UsageError(f"lab {state.lab} has no pod or node {name!r}")
    if iface not in allowed:
        raise UsageError(f"{name} has no interface {iface!r} to impair; use one of {', '.join(allowed)}")
    if lab is not None and iface == bridge:
        if (refused := no_bridge(lab, name)) is not None:
            raise UsageError(refused)
        if spec is not None and not lab.pods_on(name):  # as the file is (model/checks.py)
            raise UsageError(f"{name} has no pod: its {bridge}, kept since its last pod went, has no port to "
                             f"impair; use one of {_others(allowed, bridge)}")
    impairs = dict(entry.get("impair", {}))
    before = describe(impairs.get(iface, {}))
    if spec is None:
        impairs.pop(iface, None)
    else:
        impairs[iface] = spec.model_dump(exclude_none=True)
    entry["impair"] = impairs
    return resolve(Topology.model_validate(data)), before


def no_bridge(lab: Lab, node: str) -> str | None:
    """Why ``node`` has no pod bridge to impair or show (None: it has): netlab's cni0, which the bridge plugin makes
    at a node's first pod (Lab.bridge_nodes); a user's conflist's bridge plugin's (lab_bridge), made at the node's
    first pod too: a node without a pod has none to shape, and an impairment recorded there no `up` could put."""
    bridge = lab_bridge(lab) or naming.BRIDGE
    if node in lab.bridge_nodes(pod_side=True):
        return None
    allowed = node_interfaces(lab.topo.network.mode, lab.topo.network.vxlan.vni, bridge)
    return (f"{node} has no {bridge}: no pod ran there yet (the CNI bridge plugin makes it at the node's "
            f"first pod); use one of {_others(allowed, bridge)}")


def _others(allowed: tuple[str, ...], bridge: str | None) -> str:
    return ", ".join(i for i in allowed if i != bridge)


def result(done: Impaired) -> R.ImpairResult:
    """``netlab impair NAME:IFACE --rate ... -o json``, and what Lab.impair returns."""
    return R.ImpairResult(lab=done.lab, target=done.target, netns=done.netns, before=done.before, after=done.after,
                          changes=tuple(done.up.fixed), warnings=tuple(done.up.warnings),
                          failed=tuple(done.up.failed))


def view(lab_name: str, shown: list[Shown]) -> R.Impairments:
    """``netlab impair [NAME:IFACE] -o json`` with no option, and what Lab.impairments returns."""
    return R.Impairments(lab=lab_name, impairments=tuple(R.ImpairmentInfo(**s.to_json()) for s in shown))


def show(lab_name: str, target: str | None = None) -> list[Shown]:
    """What the lab's interfaces suffer now, read from the kernel (``target``: NAME:IFACE alone, shown even when
    nothing is on it); the ones with nothing on it and nothing wanted are left out."""
    state = running(lab_name)
    lab = state.resolved()
    only = None
    if target is not None:
        name, iface = parse_target(target)
        allowed: tuple[str, ...]
        if name in {p.name for p in lab.pods}:
            allowed = POD_INTERFACES
        elif name in {n.name for n in lab.nodes}:
            allowed = node_interfaces(lab.topo.network.mode, lab.topo.network.vxlan.vni, lab_bridge(lab))
        else:
            raise UsageError(f"lab {lab_name} has no pod or node {name!r}")
        if iface not in allowed:
            raise UsageError(f"{name} has no interface {iface!r} to impair; use one of {', '.join(allowed)}")
        if iface == lab_bridge(lab) and (refused := no_bridge(lab, name)) is not None:  # a node's (pods have none)
            raise UsageError(refused)
        only = (name, iface)
    return read_impairments(lab, feature.runtime(state), only)


def running(lab_name: str) -> LabState:
    """The state of lab ``lab_name``, which impair changes or reads only while it is up: one that is not, though its
    state remains, is refused as the lab's other commands refuse it, never made again by the ``up`` that sets an
    impairment. Gone (every namespace deleted behind netlab's back: StateGone, status's line, exit 3), being taken
    down by a ``down`` (probe's and get's line, exit 2; realize.interrupted.taken_down), or left halfway by an ``up`` or
    ``down`` that was killed (`netlab list`'s line, "... finishes it", exit 2: realize.interrupted.stalled)."""
    state = running_lab(lab_name)
    refused = taken_down(lab_name, "its interfaces go with it", read_up=False)
    if refused is None and (line := stalled(state)) is not None:
        refused = UsageError(line)  # list's words, and status's first line
    if refused is not None:
        raise refused
    return state


def _set(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if v is not None}


def _file_spec(entry: dict[str, Any] | None, state: LabState, name: str, iface: str) -> dict[str, Any] | None:
    """What the lab's file (its last `up`'s topology) gives ``name``'s ``iface``, which a run-time record keeps
    (``file``) so that an impair that puts it back (a --clear of an interface the file leaves alone) drops the record,
    and status and the repair lines are the file's again. The topology's before the first run-time edit; an older
    netlab's record has none: unknown (None), the record stays."""
    if entry is not None:
        file = entry.get("file")
        return dict(file) if isinstance(file, dict) else None
    data = state.model().model_dump(mode="json", by_alias=True, exclude_none=True)
    for item in data.get("pods", []) + data.get("nodes", []):  # pods first, as _edited looks them up
        if item.get("name") == name:
            return _set(dict(item.get("impair", {}).get(iface, {})))
    return {}


def _runtime_entry(state: LabState, key: str, entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """Record ``entry`` as the run-time impairment of ``key`` (None: no record) in ``state``, read and saved by
    a holder of the lab's lock; returns the one it had."""
    had = feature.runtime(state).pop(key, None)
    if entry is not None:
        feature.runtime(state)[key] = entry
    state.save()
    return had
