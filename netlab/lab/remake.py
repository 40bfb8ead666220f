"""Making a pod again as the lab's last good run had it, in a rollback (lab/rollback.py).

A pod that ``up`` makes anew (put on another node, or given another address) loses its old namespace, its veth
pair and its containers first: the new pod has the same namespace name. A run that fails after that cannot undo
the deletion; instead its rollback, once the state holds the previous topology again, makes the pod again from
it, as the next ``up --lab NAME`` would: the namespace with its sysctls, the veth pair on its node's cni0 with
the pod's old MAC and address, its routes, and then its containers: those that ran in it before the run, not the
others, nor any of another pod (the features' start_again; workload/again.py). Only what is missing, and only of
these pods: the pod's namespace whole, and on its node what the kernel deleted with the pod's veth (the veth, what
hung on it). Anything else missing in the lab was missing
before the run too, and a rollback is not a repair.

One attempt, never retried: a kernel that refused the run may refuse this too. What it made then goes again, and
the rollback's error names the pod as one it could not bring back.
"""

from __future__ import annotations

from typing import Any, Sequence

from netlab.errors import NetlabError
from netlab.feature import Feature, start_again
from netlab.kernel.base import Kernel, Op
from netlab.lab.announce import announce
from netlab.lab.ownership import create_netns, kernel_links
from netlab.lab.reading import drift_of, netns_sysctls, snapshots
from netlab.lab.teardown import delete_namespaces, stop_features
from netlab.plan.build import Plan, build_plan
from netlab.plan.resources import Resource, Veth
from netlab.realize.diff import Drift
from netlab.realize.expect import expected
from netlab.realize.repair import create_ops, ordered, repair_ops, stages
from netlab.realize.state import LabState


def make_again(kernel: Kernel, features: Sequence[Feature], state: LabState, tag: str,
               names: Sequence[str], running: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Make the pods of namespaces ``names`` again as ``state`` (put back) has them, and start in them what ran
    there before the run (``running``: each feature's :func:`~netlab.feature.running_of`, by its name).

    Returns (the namespaces still not back, what of them is left undone in words): the first are those the
    kernel refused (made, then deleted again), the second the pods' containers that could not start."""
    try:
        lab = state.resolved()
    except NetlabError:  # a saved topology that no longer resolves: the next up converges it
        return list(names), []
    plan = build_plan(lab)
    want = expected(plan)
    pods = {p.netns: p.name for p in lab.pods}
    names = [n for n in names if n in pods and n in want]
    made = [n for n in names if not kernel.netns_mounted(n)]
    created: list[str] = []  # those of ``made`` this run did make: a name another process took is not ours
    try:
        ops = _make(kernel, state, tag, plan, want, names, made, created)
    except Exception:  # the kernel refused again (or a bug): the pods stay gone, as the error says
        stop_features(features, state, created)
        delete_namespaces(kernel, [n for n in created if kernel.netns_mounted(n)])
        for name in made:
            state.netns.pop(name, None)
            kernel_links(state).pop(name, None)
        state.save(best_effort=True)
        return names, []
    announce(kernel, lab, plan, ops)  # their MACs are the ones they had: a stale entry can only be the new pod's
    left = []
    for feature in features:
        try:
            out = start_again(feature, lab, state, names, running.get(feature.name))
        except Exception as exc:
            left.append(f"{feature.name}: {exc}")
            continue
        left += [line for line in out.failed if any(line.startswith(f"pod {pods[n]} ") for n in names)]
    return [], left


def _make(kernel: Kernel, state: LabState, tag: str, plan: Plan, want: dict[str, list[Resource]], names: list[str],
          made: list[str], created: list[str]) -> list[Op]:
    """The namespaces ``made`` anew whole (each one the kernel made goes in ``created``; one whose name another
    process took since is refused: EEXIST, and nothing of it is touched); in the others of ``names`` (whose
    deletion never came) and in the namespaces that hold their veths' other ends, what is missing of them.
    Returns the ops sent."""
    sysctls = netns_sysctls(plan, made)  # those that exist before the namespace's links and tables
    links = kernel_links(state)
    for name in made:
        extra = create_netns(kernel, name, tag, sysctls.get(name, ()), state.lab)
        created.append(name)
        state.netns[name] = "created"
        if extra:
            links[name] = extra
    state.save(best_effort=True)  # named before anything is in them: `down` finds them whatever comes next
    # The pod's end of the pair is its eth0; the other end, planned in its node, is the veth: with it the
    # kernel deleted what hung on it there (its bridge port, any route or entry through it).
    veths = {(r.netns, r.name) for r in plan.of_kind("veth") if isinstance(r, Veth) and r.peer_netns in names}
    read = sorted({ns for ns, _ in veths} | (set(names) - set(made)))
    snaps = snapshots(kernel, want, read)
    observed = {}
    drifts: list[Drift] = []
    for ns in read:
        if ns not in snaps:
            continue
        observed[ns], found = drift_of(ns, want, snaps, links.get(ns, ()))
        drifts += [d for d in found if d.state == "missing" and (ns in names or _of_veth(d, veths))]
    ops = ordered(create_ops(r for r in plan.resources if r.netns in made) + repair_ops(drifts, want, observed))
    for stage in stages(ops):
        kernel.apply(stage, plan.netns)
    return ops


def _of_veth(drift: Drift, veths: set[tuple[str, str]]) -> bool:
    """Is the missing object one of ``veths``, or one the kernel deletes with it?"""
    r = drift.resource
    return ((r.netns, getattr(r, "name", None)) in veths and r.kind == "veth"
            or (r.netns, getattr(r, "dev", None)) in veths)
