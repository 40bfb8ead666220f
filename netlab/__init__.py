"""netlab: real network-namespace labs of the Kubernetes network model.

``from netlab import Lab`` is the Python API (netlab.api); it is imported on
first use, so ``import netlab`` (and ``netlab validate``) stays light.
"""

# Nothing is imported here: the `netlab` program loads this package before its Ctrl-C handling is in place
# (launch.py), so a Ctrl-C while it loaded (typing, 2-3 ms) ended in a traceback. typing's own constant:
TYPE_CHECKING = False

__version__ = "0.1.0"
__all__ = ["Lab", "__version__"]

if TYPE_CHECKING:
    from typing import Any

    from netlab.api import Lab as Lab


def __getattr__(name: str) -> "Any":
    if name == "Lab":
        from netlab.api import Lab

        return Lab
    raise AttributeError(f"module 'netlab' has no attribute {name!r}")


def __dir__() -> "list[str]":
    """``Lab`` (loaded on first use) beside the package's own names: dir() and help() (pydoc lists what dir() gives
    and ``__all__`` names) showed no Lab."""
    return sorted(set(globals()) | set(__all__))
