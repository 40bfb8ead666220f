"""Render a plan for people: ip(8)-like lines grouped by namespace."""

from __future__ import annotations

from netlab.plan.build import Plan


def render_commands(plan: Plan) -> str:
    """One command per line, in apply order; what a learner could type instead."""
    return "\n".join(r.command() for r in plan.resources) + "\n"
