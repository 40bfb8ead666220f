"""Render a plan for people: ip(8)-like lines grouped by namespace, then a CNI lab's ADD steps."""

from __future__ import annotations

from typing import Any, Sequence

from netlab.plan.build import Plan
from netlab.plan.cniadd import CniAdd
from netlab.plan.impair import QdiscStep


def render_commands(plan: Plan, cni: Sequence[CniAdd] = (), qdiscs: Sequence[QdiscStep] = ()) -> str:
    """One command per line, in apply order; what a learner could type instead. A CNI lab's pods are the
    plugins' (``up`` runs their ADD after the network exists): one commented step per pod; then the
    impairments' qdiscs (``up`` sets them once the interfaces exist), last."""
    lines = [r.command() for r in plan.resources] + [s.command() for s in cni] + [q.command() for q in qdiscs]
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan, cni: Sequence[CniAdd] = (), qdiscs: Sequence[QdiscStep] = ()) -> dict[str, Any]:
    """The plan's objects, under ``cni_add`` each pod's ADD step (empty when netlab wires the pods), and under
    ``qdiscs`` the impairments' qdiscs (empty when no rate or delay is set)."""
    return {**plan.to_json(), "cni_add": [s.to_json() for s in cni], "qdiscs": [q.to_json() for q in qdiscs]}
