"""Render a plan for people: ip(8)-like lines grouped by namespace, then a CNI lab's ADD steps."""

from __future__ import annotations

from typing import Any, Sequence

from netlab.plan.build import Plan
from netlab.plan.cniadd import CniAdd


def render_commands(plan: Plan, cni: Sequence[CniAdd] = ()) -> str:
    """One command per line, in apply order; what a learner could type instead. A CNI lab's pods are the
    plugins' (``up`` runs their ADD after the network exists): one commented step per pod, last."""
    return "\n".join([r.command() for r in plan.resources] + [s.command() for s in cni]) + "\n"


def plan_json(plan: Plan, cni: Sequence[CniAdd] = ()) -> dict[str, Any]:
    """The plan's objects, and under ``cni_add`` each pod's ADD step (empty when netlab wires the pods)."""
    return {**plan.to_json(), "cni_add": [s.to_json() for s in cni]}
