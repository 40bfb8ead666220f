"""The features every lab has, in start order: Services' host-side work, pods' CNI attachment
(a no-op for builtin labs), containers, then impairments' qdiscs."""

from __future__ import annotations

from netlab.feature import Feature, ModuleFeature, RecordedFeature
from netlab.services import lifecycle as services
from netlab.workload import lifecycle as workload


def default_features() -> list[Feature]:
    # CNI and impairments load the topology's models: not for the down of a lab that has no record of them.
    return [ModuleFeature(services), RecordedFeature("netlab.cni.lifecycle", records="cni"), ModuleFeature(workload),
            RecordedFeature("netlab.impair.lifecycle", records="impair")]
