"""The features every lab has, in start order: Services' host-side work, containers, impairments' qdiscs."""

from __future__ import annotations

from netlab.feature import Feature, ModuleFeature
from netlab.impair import lifecycle as impair
from netlab.services import lifecycle as services
from netlab.workload import lifecycle as workload


def default_features() -> list[Feature]:
    return [ModuleFeature(services), ModuleFeature(workload), ModuleFeature(impair)]
