"""The features every lab has, in start order: Services' host-side work, pods' CNI attachment
(a no-op for builtin labs), containers, then impairments' qdiscs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.feature import Feature, ModuleFeature, RecordedFeature
from netlab.services import lifecycle as services
from netlab.workload import lifecycle as workload

if TYPE_CHECKING:
    from netlab.model.lab import Lab


def default_features() -> list[Feature]:
    # CNI and impairments load the topology's models: not for the down of a lab that has no record of them, nor
    # (CNI) for the status of a lab whose pods are not attached by CNI plugins (netlab.cni.lifecycle.drift: none).
    return [ModuleFeature(services), RecordedFeature("netlab.cni.lifecycle", records="cni", concerns=_uses_cni),
            ModuleFeature(workload), RecordedFeature("netlab.impair.lifecycle", records="impair", parts=True)]


def _uses_cni(lab: Lab) -> bool:
    return lab.cni != "builtin"
