"""Status: the live kernel compared with the plan of a running lab (built again from its saved topology), and each feature's drift.

Every namespace is read once (its tag, then one snapshot: a dump per object
kind), by the kernel's batch calls, which read several namespaces side by
side; the comparison is made in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from netlab.kernel import netns as nsmod
from netlab.kernel.base import Kernel
from netlab.feature import Feature
from netlab.lab.ownership import kernel_links, tag_for
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
    # Each namespace is read once: its tag (two sysctls no plan holds) with everything else.
    tag_keys = list(nsmod.TAG_SYSCTLS)
    asks = {ns: ([r.name for r in want.get(ns, []) if r.kind == "sysctl"] + tag_keys, True)  # type: ignore
            for ns in plan.netns if kernel.netns_mounted(ns)}
    # The features' drift (containers, Services' files, plugins' CHECK) needs no snapshot: it is worked out
    # while the other readers finish theirs.
    feature_drift: list[str] = []
    snaps = kernel.snapshot_many(asks, lambda: feature_drift.extend(
        line for feature in features for line in feature.drift(lab, state)))
    present = []
    for name in plan.netns:
        if name not in snaps:
            result.drift.append(f"missing: namespace {name}")
        elif nsmod.tag_of([snaps[name].sysctls.pop(key, None) for key in tag_keys]) != tag:
            result.drift.append(f"different: namespace {name} is not tagged as this lab's")
        else:
            present.append(name)
    links = kernel_links(state)
    made = plugin_made(lab, state)  # what a user's CNI plugins made: their CHECK judges it
    for ns in present:
        obs = observe(snaps[ns], {r.key: r for r in want.get(ns, [])}, snaps)
        for d in diff_netns(want.get(ns, []), obs, links.get(ns, ())):
            if is_plugin_made(d, made):
                continue
            result.drift.append(str(d))
            result.details.append(d.to_json())
    result.drift += feature_drift
    return result
