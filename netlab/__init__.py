"""netlab: real network-namespace labs of the Kubernetes network model.

``from netlab import Lab`` is the Python API (netlab.api); it is imported on
first use, so ``import netlab`` (and ``netlab validate``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lab", "__version__"]

if TYPE_CHECKING:
    from netlab.api import Lab as Lab


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from netlab.api import Lab

        return Lab
    raise AttributeError(f"module 'netlab' has no attribute {name!r}")
