"""Impairments' qdiscs: rate (tbf) and delay (netem) on the interfaces the topology names.

Loss is a plan resource (netlab.plan.impair: an iptables rule, compared and
repaired with the lab's other rules); the qdiscs are this feature's. It
starts after the network (the interfaces must exist), reads each impaired
interface's root qdisc and changes only those that differ, and reports the
difference to ``status``. The lab's state records every interface it shaped
(``impair.shaped``, written before the change), so an impairment removed
from the topology is taken off again; ``down`` has nothing to do: qdiscs go
with their namespaces. A change the kernel refuses leaves the interface as it
was (kernel/tc.py replaces qdiscs whole) and is a warning; a run that fails
after changing qdiscs is rolled back to the lab's previous topology, and the
interfaces it changed get what they had (``NETLAB_FAULT_POINT=impair-set``
fails a run right after its first change: kernel/testhooks.py).

Run-time impairments (``netlab impair``, netlab.impair.runtime) change the
lab's saved topology, so ``status`` compares the kernel with them and does
not call them drift; ``status -t FILE`` shows where they differ from the
file, and ``up -t FILE`` puts the file's back. ``impair.runtime`` remembers
which interfaces were set at run time, for those messages.

Interface used by netlab.lab (a feature, netlab/feature.py)::

    preflight(lab)                    tbf/netem missing: EnvironmentNotReady with the doctor's line
    start(lab, state) -> StartResult  qdiscs set, replaced or removed
    stop(state, netns_names)          forget the records of those namespaces
    running(state, netns_names)       what was set at run time in pods `up` makes anew, before they go
    start_again(lab, state, netns_names, running)  a rollback made those pods again: their interfaces alone
    stop_made(state, netns_names)     a rollback deletes namespaces it made again: the records stay
    drift(lab, state) -> list[str]    one line per interface shaped otherwise than wanted
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.kernel import tc, testhooks
from netlab.model.impair import describe, rate_bits, time_us
from netlab.plan.impair import TABLE as LOSS_TABLE, hook_of, impaired

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

RECORD = "impair"  # its "runtime" is also read by realize.state.edited_at_run_time (the repair status names)
Spec = dict[str, "str | None"]


def preflight(lab: Lab) -> None:
    """A rate needs tbf, a delay netem, a loss nf_tables' netdev hooks (and nft): refused before any change, with
    the doctor's line (exit 3)."""
    if any(any(spec.values()) for _, _, spec in impaired(lab)):
        from netlab import doctor  # the machine's checks: only up's preflight loads them
        doctor.require_for(lab, only=("tbf", "netem", "nf_netdev", "nft"))


def _record(state: LabState) -> dict:
    rec = state.extra.get(RECORD)
    if not isinstance(rec, dict):
        rec = {}
    shaped = rec.get("shaped") if isinstance(rec.get("shaped"), dict) else {}
    runtime = rec.get("runtime") if isinstance(rec.get("runtime"), dict) else {}
    out = {"shaped": {ns: sorted({i for i in v if isinstance(i, str)}) for ns, v in shaped.items()
                      if isinstance(ns, str) and isinstance(v, list)},
           "runtime": {k: v for k, v in runtime.items() if isinstance(k, str) and isinstance(v, dict)}}
    state.extra[RECORD] = out
    return out


def runtime(state: LabState) -> dict[str, dict]:
    """``{"<netns>:<iface>": spec}`` of impairments set by ``netlab impair`` and not yet replaced by ``up``."""
    return _record(state)["runtime"]


def wanted(lab: Lab) -> dict[tuple[str, str], tc.Shaping]:
    """The qdisc shaping every impaired interface should have (loss is not a qdisc's)."""
    out = {}
    for netns, iface, spec in impaired(lab):
        out[(netns, iface)] = shaping(spec)
    return out


def shaping(spec: Spec) -> tc.Shaping:
    return tc.Shaping(rate_bits=rate_bits(spec["rate"]) if spec.get("rate") else None,
                      delay_us=time_us(spec["delay"]) if spec.get("delay") else None,
                      jitter_us=time_us(spec["jitter"]) if spec.get("jitter") else None)


def same(have: tc.Shaping, want: tc.Shaping) -> bool:
    """Equal as the kernel keeps them: a rate in whole bytes a second, times in scheduler ticks (~1 us); and
    every other parameter of netlab's qdiscs as netlab sets it (a burst changed with `tc` is drift too)."""
    def near(a: int | None, b: int | None, slack: int) -> bool:
        return (a or 0) == (b or 0) or (a is not None and b is not None and abs(a - b) <= slack)

    return (have.other is None and not have.off and near(have.rate_bits, want.rate_bits, 8)
            and near(have.delay_us, want.delay_us, 2) and near(have.jitter_us, want.jitter_us, 2))


def words(s: tc.Shaping | None) -> str:
    if s is None:
        return "no such interface"
    parts = []
    if s.other:
        parts.append(f"root qdisc {s.other}")
    if s.rate_bits:
        parts.append(f"rate {_rate_words(s.rate_bits)}")
    if s.delay_us or s.jitter_us:  # a jitter round no delay: netem's "delay 0ms 10ms"
        parts.append(f"delay {_time_words(s.delay_us or 0)}")
    if s.jitter_us:
        parts.append(f"jitter {_time_words(s.jitter_us)}")
    parts += s.off
    return " ".join(parts) or "none"


def _rate_words(bits: int) -> str:
    for unit, n in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits >= n and bits % n == 0:
            return f"{bits // n}{unit}"
    return f"{bits}bit"


def _time_words(us: int) -> str:
    return f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us"


def _observe(targets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tc.Shaping | None]:
    by_ns: dict[str, list[str]] = {}
    for ns, iface in targets:
        by_ns.setdefault(ns, []).append(iface)
    out: dict[tuple[str, str], tc.Shaping | None] = {}
    for ns, ifaces in sorted(by_ns.items()):
        if not nsmod.is_netns_mount(ns):
            out.update({(ns, i): None for i in ifaces})
            continue
        out.update({(ns, i): s for i, s in tc.read(ns, ifaces).items()})
    return out


def start(lab: Lab, state: LabState, only: set[tuple[str, str]] | None = None) -> StartResult:
    """Make every impaired interface's qdiscs match the topology, and undo those it no longer names (``only``:
    of these interfaces alone, (namespace, interface); the others are not read, their records kept)."""
    rec = _record(state)
    before = json.dumps(rec, sort_keys=True)
    want = {key: v for key, v in wanted(lab).items() if only is None or key in only}
    done = StartResult()
    lab_netns = set(n.netns for n in lab.nodes) | set(p.netns for p in lab.pods)
    old = {(ns, i) for ns, ifaces in rec["shaped"].items() for i in ifaces if ns in lab_netns
           and (only is None or (ns, i) in only)}
    if not want and not old and not rec["runtime"]:
        if rec["shaped"]:
            rec["shaped"] = {}
            state.save()
        return done  # nothing impaired, before or now: no qdisc to read
    have = _observe(set(want) | old)
    # Write-ahead: the record names an interface before it is shaped.
    for ns, iface in want:
        rec["shaped"][ns] = sorted(set(rec["shaped"].get(ns, [])) | {iface})
    if only is None:
        rec["shaped"] = {ns: v for ns, v in rec["shaped"].items() if ns in lab_netns}
    if json.dumps(rec, sort_keys=True) != before:
        state.save()
    changed: list[tuple[str, str, tc.Shaping]] = []  # interfaces changed by this run, and what they had
    try:
        _change(want, old, have, rec, done, changed)
    except BaseException:
        _put_back(changed)
        raise
    rec["shaped"] = {ns: v for ns, v in rec["shaped"].items() if v}
    # Run-time impairments the topology now says otherwise about were replaced (by `up` from the file).
    specs = {f"{ns}:{iface}": spec for ns, iface, spec in impaired(lab)}
    for key in [k for k, v in rec["runtime"].items() if specs.get(k, {}) != v.get("spec")
                and (only is None or tuple(k.split(":", 1)) in only)]:
        rec["runtime"].pop(key)
    if json.dumps(rec, sort_keys=True) != before:
        state.save()
    return done


def _change(want: dict[tuple[str, str], tc.Shaping], old: set[tuple[str, str]],
            have: dict[tuple[str, str], tc.Shaping | None], rec: dict[str, Any], done: StartResult,
            changed: list[tuple[str, str, tc.Shaping]]) -> None:
    """Set the interfaces that differ, take the qdiscs off those the topology no longer names."""
    for (ns, iface), target in sorted(want.items()):
        now = have.get((ns, iface))
        if now is None:
            done.problems.append(f"impair: {iface} does not exist in {ns}; not shaped")
            continue
        if same(now, target):
            continue
        try:
            tc.replace_root(ns, iface, target.rate_bits, target.delay_us, target.jitter_us)
        except tc.TcError as exc:  # refused: the interface keeps what it had (kernel/tc.py)
            _refused(done, ns, iface, exc)
            continue
        changed.append((ns, iface, now))
        testhooks.fault_point("impair-set")
        if target.empty:  # a loss alone is a rule, not a qdisc: the interface's qdisc goes
            done.actions.append(f"removed {words(now)} from {iface} in {ns} (the impairment has no rate or delay now)")
        elif now.empty:  # the plan's, where there was none: part of making the pod when this run made it
            done.made.append((ns, f"set {words(target)} on {iface} in {ns} (it had none)"))
        else:
            done.actions.append(f"set {words(target)} on {iface} in {ns} (it had {words(now)})")
    for ns, iface in sorted(old - set(want)):
        now = have.get((ns, iface))
        if now is not None and not now.empty:
            try:
                tc.delete_root(ns, iface)
            except tc.TcError as exc:
                _refused(done, ns, iface, exc)
                continue
            changed.append((ns, iface, now))
            # An interface no impair: entry names now: `netlab impair --clear` took it out of the lab's topology
            # (its run-time record, written ahead, is empty), or the file up applies has none for it.
            cleared = (rec["runtime"].get(f"{ns}:{iface}") or {}).get("spec") == {}
            why = "cleared by `netlab impair --clear`" if cleared else "no longer in the topology"
            done.actions.append(f"removed {words(now)} from {iface} in {ns} ({why})")
        rec["shaped"][ns] = [i for i in rec["shaped"].get(ns, []) if i != iface]


def _refused(done: StartResult, ns: str, iface: str, exc: tc.TcError) -> None:
    done.problems.append(f"impair: {exc}")
    done.refused[f"{ns}:{iface}"] = str(exc)


def _put_back(changed: list[tuple[str, str, tc.Shaping]]) -> None:
    """A run that fails after changing qdiscs is rolled back to the lab's previous topology: the interfaces it
    changed get what they had (best effort, as the rest of a rollback; a qdisc netlab does not make cannot be
    made again: `status` names it)."""
    for ns, iface, had in reversed(changed):
        if had.other:
            continue
        try:
            tc.replace_root(ns, iface, had.rate_bits, had.delay_us, had.jitter_us)
        except OSError:  # TcError, or the namespace is gone (NetnsGone)
            pass


def remade(lab: Lab, netns_names: list[str]) -> set[tuple[str, str]]:
    """The interfaces a pod made again brings anew: every one of its namespace's, and its veth's end on its node
    (the kernel deletes a veth pair with either end's namespace)."""
    names = set(netns_names)
    pods = [p for p in lab.pods if p.netns in names]
    nodes = {n.name: n.netns for n in lab.nodes}
    return ({(ns, iface) for ns, iface, _ in impaired(lab) if ns in names}
            | {(nodes[p.node], p.host_veth) for p in pods if p.node in nodes})


def running(state: LabState, netns_names: list[str]) -> dict[str, dict]:
    """What of the impairments of these namespaces was set at run time (``netlab impair``), before `up` stops
    their pods to make them anew: their stop drops it, and a rollback that makes them again puts it back."""
    names = set(netns_names)
    rec = state.extra.get(RECORD)
    runtime = rec.get("runtime") if isinstance(rec, dict) else None  # read only: no record made for a lab without
    return {k: v for k, v in (runtime if isinstance(runtime, dict) else {}).items()
            if isinstance(k, str) and isinstance(v, dict) and k.split(":", 1)[0] in names}


def start_again(lab: Lab, state: LabState, netns_names: list[str], was: dict[str, dict] | None) -> StartResult:
    """A rollback made these namespaces' pods again: their interfaces get the qdiscs the topology put back names
    (their veths' ends on their nodes too), and nothing else is read or set: an interface of another pod or node
    shaped by hand otherwise keeps what it has (a rollback is not a repair; the next ``up`` is)."""
    rec = _record(state)
    for key, value in (was or {}).items():
        rec["runtime"].setdefault(key, value)
    return start(lab, state, only=remade(lab, netns_names))


def stop_made(state: LabState, netns_names: list[str]) -> list[str]:
    """A rollback deletes namespaces its run made again for pods or nodes the lab had: their qdiscs go with them,
    and the records of what the pods had before the run stay (stop would drop them)."""
    return []


def stop(state: LabState, netns_names: list[str], everything: bool = False) -> list[str]:
    """Qdiscs go with their namespace: only the records are dropped."""
    rec = _record(state)
    gone = set(netns_names)
    for part in ("shaped",):
        rec[part] = {} if everything else {ns: v for ns, v in rec[part].items() if ns not in gone}
    rec["runtime"] = {} if everything else {k: v for k, v in rec["runtime"].items() if k.split(":")[0] not in gone}
    return []


def drift(lab: Lab, state: LabState) -> list[str]:
    """One line per interface whose qdiscs differ from the topology's impairment."""
    rec = _record(state)
    want = wanted(lab)
    lab_netns = set(n.netns for n in lab.nodes) | set(p.netns for p in lab.pods)
    old = {(ns, i) for ns, ifaces in rec["shaped"].items() for i in ifaces if ns in lab_netns}
    have = _observe(set(want) | old)
    out = []
    for key in sorted(set(want) | old):
        ns, iface = key
        target = want.get(key, tc.Shaping())
        now = have.get(key)
        if now is None:
            if key in want:
                out.append(f"impair: {iface} in {ns} does not exist (wanted {words(target)})")
            continue
        if not same(now, target):
            note = ""
            rt = rec["runtime"].get(f"{ns}:{iface}")
            if rt is not None:
                note = f" (set at run time by `netlab impair`: {describe(rt.get('spec') or {})})"
            out.append(f"impair: {iface} in {ns} has {words(now)}, the topology says {words(target)}{note}")
    return out


def loss_notes(lab: Lab, state: LabState) -> dict[str, str]:
    """For ``status``: namespace -> why its loss table (plan/impair.py) differs from a file's, where ``netlab
    impair`` set interfaces at run time whose loss is dropped there (``status -t FILE`` names them as it names a
    rate: "set at run time by `netlab impair`: pa:eth0 loss 3%")."""
    names = {p.netns: p.name for p in lab.pods} | {n.netns: n.name for n in lab.nodes}
    lossy = {(ns, iface) for ns, iface, spec in impaired(lab) if spec.get("loss")}
    said: dict[str, list[str]] = {}
    for key, entry in sorted(running(state, list(names)).items()):
        ns, _, iface = key.partition(":")
        if not (entry.get("spec") or {}).get("loss") and (ns, iface) not in lossy:
            continue  # a rate or a delay alone: a qdisc, said by drift()
        hook = hook_of(lab, names[ns], ns, iface, "")
        said.setdefault(hook.netns, []).append(f"{hook.target} {describe(entry.get('spec') or {})}")
    return {ns: f"set at run time by `netlab impair`: {', '.join(v)}" for ns, v in said.items()}


def is_loss_table(resource: object) -> bool:
    return getattr(resource, "table", None) == LOSS_TABLE and getattr(resource, "family", None) == "netdev"
