"""netlab's Python API: labs in your own programs and tests, the way the CLI works with them.

::

    from netlab import Lab

    with Lab.up("lab.yaml", name="t1") as lab:
        assert lab.reach("client", "web-1").reachable

:class:`Lab` brings a lab up (from a file, a dict shaped like the YAML, or
the built-in default), attaches to a running one, runs commands in it,
probes, traces and inspects it, and takes it down. Results are the frozen
dataclasses of :mod:`netlab.api.results`, with the fields of the CLI's
``-o json``; errors are those of :mod:`netlab.errors`, with the CLI's exit
codes. The CLI (netlab.cli) is built on this package; the pytest plugin
(netlab.pytest_plugin) too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers (``X as X``: re-exported)
    from netlab.api.lab import LAB_ENV as LAB_ENV
    from netlab.api.lab import Lab as Lab
    from netlab.api.lab import selected_name as selected_name
    from netlab.api.results import BreakResult as BreakResult
    from netlab.api.results import CniCall as CniCall
    from netlab.api.results import CniLog as CniLog
    from netlab.api.results import ContainerInfo as ContainerInfo
    from netlab.api.results import DownResult as DownResult
    from netlab.api.results import ImpairmentInfo as ImpairmentInfo
    from netlab.api.results import Impairments as Impairments
    from netlab.api.results import ImpairResult as ImpairResult
    from netlab.api.results import Inspection as Inspection
    from netlab.api.results import LabInfo as LabInfo
    from netlab.api.results import NftTableInfo as NftTableInfo
    from netlab.api.results import NodeInfo as NodeInfo
    from netlab.api.results import PodInfo as PodInfo
    from netlab.api.results import ProbeReport as ProbeReport
    from netlab.api.results import ProbeResult as ProbeResult
    from netlab.api.results import ServiceInfo as ServiceInfo
    from netlab.api.results import Status as Status
    from netlab.api.results import Trace as Trace
    from netlab.api.results import UpResult as UpResult
    from netlab.api.jsonio import from_json as from_json
    from netlab.api.jsonio import to_json as to_json
    from netlab.api.topology import TopologyInput as TopologyInput
    from netlab.api.topology import load as load
    from netlab.api.topology import load_running as load_running
    from netlab.api.running import labs as labs
    from netlab.errors import ApplyFailed as ApplyFailed
    from netlab.errors import CannotRun as CannotRun
    from netlab.errors import ChecksFailed as ChecksFailed
    from netlab.errors import EnvironmentNotReady as EnvironmentNotReady
    from netlab.errors import LabBusy as LabBusy
    from netlab.errors import NetlabError as NetlabError
    from netlab.errors import TopologyError as TopologyError
    from netlab.errors import NetnsGone as NetnsGone
    from netlab.errors import UsageError as UsageError
    from netlab.lab.rollback import Interrupted as Interrupted
    from netlab.realize.state_errors import StateCorrupt as StateCorrupt
    from netlab.realize.state_errors import StateGone as StateGone
    from netlab.realize.state_errors import StateNewer as StateNewer

# Each name and the module that holds it, imported on first use: `netlab validate` reads
# topologies through netlab.api.topology without loading the kernel, probe and trace code.
_WHERE = {
    "Lab": "netlab.api.lab", "selected_name": "netlab.api.lab", "LAB_ENV": "netlab.api.lab",
    "labs": "netlab.api.running", "load": "netlab.api.topology", "load_running": "netlab.api.topology",
    "TopologyInput": "netlab.api.topology",
    **{name: "netlab.api.results" for name in (
        "UpResult", "DownResult", "BreakResult", "Status", "LabInfo", "ProbeReport", "ProbeResult", "Trace",
        "Inspection", "ImpairResult", "Impairments", "ImpairmentInfo",
        "PodInfo", "NodeInfo", "ServiceInfo", "ContainerInfo", "NftTableInfo", "CniLog", "CniCall")},
    "to_json": "netlab.api.jsonio", "from_json": "netlab.api.jsonio",
    **{name: "netlab.errors" for name in (
        "NetlabError", "TopologyError", "UsageError", "EnvironmentNotReady", "ApplyFailed", "ChecksFailed",
        "LabBusy", "NetnsGone", "CannotRun")},
    "Interrupted": "netlab.lab.up",  # Ctrl-C, SIGTERM or SIGHUP during up, rolled back: a KeyboardInterrupt
    "StateCorrupt": "netlab.realize.state_errors",  # a lab's state file that is not one: down(force=True) takes it down
    "StateGone": "netlab.realize.state_errors",  # status of a lab list shows gone: down() forgets its state
    "StateNewer": "netlab.realize.state_errors",  # a StateCorrupt: a state of a later format, a newer netlab's
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'netlab.api' has no attribute {name!r}")
    from netlab.api.words import stopped  # Ctrl-C as a model's validator is built on import: KeyboardInterrupt

    with stopped():
        module = importlib.import_module(_WHERE[name])
    return getattr(module, name)


def __dir__() -> list[str]:
    """The public names (``__all__``, loaded on first use) beside the module's own: ``dir(netlab.api)`` gave the
    latter alone (Any, TYPE_CHECKING, importlib), and ``help(netlab.api)``, whose pydoc finds members through dir()
    and keeps the ``__all__`` ones, listed ``__getattr__`` alone. dir() loads nothing; help() loads each name."""
    return sorted(set(globals()) | set(__all__))
