"""Status: the live kernel compared with the saved plan of a running lab, and each feature's drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from netlab.kernel.base import Kernel
from netlab.feature import Feature
from netlab.lab.ownership import owned, tag_for
from netlab.lab.up import kernel_links
from netlab.plan.build import build_plan
from netlab.realize.attachments import is_plugin_made, plugin_made
from netlab.realize.diff import diff_netns
from netlab.realize.expect import expected
from netlab.realize.observe import observe
from netlab.realize.state import LabState


@dataclass
class StatusResult:
    lab: str
    drift: list[str] = field(default_factory=list)
    objects: int = 0
    details: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift


def status(state: LabState, kernel: Kernel, features: Sequence[Feature] = ()) -> StatusResult:
    """Every difference between the lab's plan and the kernel, and what its features report."""
    lab = state.resolved()
    plan = build_plan(lab)
    tag = tag_for(state)
    want = expected(plan)
    result = StatusResult(lab=lab.name, objects=sum(len(v) for v in want.values()))
    present = []
    for name in plan.netns:
        if not kernel.netns_mounted(name):
            result.drift.append(f"missing: namespace {name}")
        elif not owned(kernel, name, tag):
            result.drift.append(f"different: namespace {name} is not tagged as this lab's")
        else:
            present.append(name)
    snaps = {ns: kernel.snapshot(ns, [r.name for r in want.get(ns, []) if r.kind == "sysctl"])  # type: ignore
             for ns in present}
    links = kernel_links(state)
    made = plugin_made(lab, state)  # what a user's CNI plugins made: their CHECK judges it
    for ns in present:
        obs = observe(snaps[ns], {r.key: r for r in want.get(ns, [])}, snaps)
        for d in diff_netns(want.get(ns, []), obs, links.get(ns, ())):
            if is_plugin_made(d, made):
                continue
            result.drift.append(str(d))
            result.details.append(d.to_json())
    for feature in features:
        result.drift += feature.drift(lab, state)
    return result
