"""The features every lab has, in start order: Services' host-side work, pods' CNI attachment
(a no-op for builtin labs), containers, then impairments' qdiscs."""

from __future__ import annotations

from netlab.cni import lifecycle as cni
from netlab.feature import Feature, ModuleFeature
from netlab.impair import lifecycle as impair
from netlab.services import lifecycle as services
from netlab.workload import lifecycle as workload


def default_features() -> list[Feature]:
    return [ModuleFeature(services), ModuleFeature(cni), ModuleFeature(workload), ModuleFeature(impair)]
