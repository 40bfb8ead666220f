"""How features (containers, Services' host-side work, and later CNI, policies, impairments) plug into a lab.

A feature is what the lab needs besides its plan's kernel objects: processes,
files, conntrack entries. ``up`` starts features after the network is in
place (a feature may also start early, overlapping the network work), ``down``
stops them before the namespaces go, ``status`` asks each for its drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from netlab.model.lab import Lab
from netlab.realize.state import LabState


@dataclass
class FeatureResult:
    """What a feature's start did (``actions``: restarted a container, rewrote a file) and could not do."""

    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Feature(Protocol):
    name: str

    def preflight(self, lab: Lab) -> None:
        """Raise EnvironmentNotReady when the machine lacks what this feature needs (before any change)."""

    def start_early(self, lab: Lab, state: LabState) -> Any:
        """A fresh lab: start what needs only the namespaces; returns a handle for start() (or None)."""

    def abort_early(self, handle: Any) -> None:
        """The lab is rolled back: stop what start_early began."""

    def start(self, lab: Lab, state: LabState, early: Any = None) -> FeatureResult:
        """After the network: make this feature match the topology. Idempotent."""

    def stop(self, state: LabState, netns_names: Iterable[str], everything: bool = False) -> list[str]:
        """Before these namespaces go (``everything``: the whole lab goes)."""

    def drift(self, lab: Lab, state: LabState) -> list[str]:
        """One line per difference from the topology, for status."""


class ModuleFeature:
    """A feature written as a module of functions (netlab.workload.lifecycle, netlab.services.lifecycle)."""

    def __init__(self, module: Any):
        self.module = module
        self.name = module.__name__.rsplit(".", 2)[-2]

    def preflight(self, lab: Lab) -> None:
        if hasattr(self.module, "preflight"):
            self.module.preflight(lab)

    def start_early(self, lab: Lab, state: LabState) -> Any:
        return self.module.start_early(lab, state) if hasattr(self.module, "start_early") else None

    def abort_early(self, handle: Any) -> None:
        if handle is not None and hasattr(self.module, "abort_early"):
            self.module.abort_early(handle)

    def start(self, lab: Lab, state: LabState, early: Any = None) -> FeatureResult:
        kwargs = {"early": early} if early is not None else {}
        out = self.module.start(lab, state, **kwargs)
        if isinstance(out, FeatureResult):
            return out
        if hasattr(out, "actions") and hasattr(out, "problems"):
            return FeatureResult(list(out.actions), list(out.problems))
        return FeatureResult(problems=list(out or []))

    def stop(self, state: LabState, netns_names: Iterable[str], everything: bool = False) -> list[str]:
        return self.module.stop(state, list(netns_names), everything=everything) or []

    def drift(self, lab: Lab, state: LabState) -> list[str]:
        return self.module.drift(lab, state)
